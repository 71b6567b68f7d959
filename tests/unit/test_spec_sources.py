"""Spec sources: nova.conf (oslo.config's reading), OpenNebula VF maps, vfkeeper's TOML."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vfkeeper.config import (
    NovaConfError,
    TomlConfigError,
    VfMapError,
    load_spec_set,
    parse_nova_conf,
    parse_vf_map,
    read_vf_maps,
)
from vfkeeper.domain.devspec import DeviceSpecSet, InvalidDeviceSpec

NOVA_CONF = """\
[DEFAULT]
debug = True
# the old name, still honoured
pci_passthrough_whitelist = {"vendor_id": "8086", "product_id": "10fb"}
transport_url = rabbit://nova:secret@ctl:5672/

[PCI]
alias = {"vendor_id": "8086", "product_id": "10fb", "device_type": "type-VF", "name": "a1"}
device_spec = {"devname": "ens1f0",
    "physical_network": "physnet1"}
; a comment
passthrough_whitelist = [{"address": "*:5e:00.*", "physical_network": null},
\t{"address": {"bus": "86", "function": "[1-7]"}, "physical_network": "physnet2"}]
device_spec : {"vendor_id": "15b3", "product_id": "101e", "remote_managed": "true"}

[libvirt]
virt_type = kvm
"""


def test_nova_conf_gives_every_name_in_oslo_order_with_continuations() -> None:
    entries = parse_nova_conf(NOVA_CONF, "/etc/nova/nova.conf")
    assert [e.source for e in entries] == [
        "/etc/nova/nova.conf:4 [DEFAULT] pci_passthrough_whitelist",
        "/etc/nova/nova.conf:12 [pci] passthrough_whitelist",
        "/etc/nova/nova.conf:9 [pci] device_spec",
        "/etc/nova/nova.conf:14 [pci] device_spec",
    ]
    assert entries[2].value == '{"devname": "ens1f0",\n"physical_network": "physnet1"}'
    specs = DeviceSpecSet.parse(entries, extensions=False)
    assert len(specs) == 5
    assert specs.specs[1].tags == {"physical_network": None}
    assert specs.specs[4].tags == {"remote_managed": "true"}


def test_nova_conf_quotes_and_empty_values_like_oslo() -> None:
    entries = parse_nova_conf('[pci]\ndevice_spec = \'{"vendor_id": "8086"}\'\ndevice_spec =\n')
    assert [e.value for e in entries] == ['{"vendor_id": "8086"}', ""]
    with pytest.raises(InvalidDeviceSpec, match=r"entry #1 \(nova.conf:3 \[pci\] device_spec\)"):
        DeviceSpecSet.parse(entries, extensions=False)


@pytest.mark.parametrize(("text", "fragment"), [
    ("device_spec = {}\n", "assignment before any [section]"),
    ("[pci\n", "invalid section header"),
    ("[pci]\n  continued\n", "unexpected continuation line"),
    ("[pci]\njust words\n", "no ':' or '=' in assignment"),
])
def test_nova_conf_syntax_errors_name_the_line(text: str, fragment: str) -> None:
    with pytest.raises(NovaConfError, match=re.escape(fragment)) as info:
        parse_nova_conf(text, "n.conf")
    assert info.value.line is not None and str(info.value).startswith(f"n.conf:{info.value.line}")


def test_opennebula_vf_map_directory(tmp_path: Path) -> None:
    maps = tmp_path / "vf_maps"
    maps.mkdir()
    (maps / "ib0").write_text("0x05 0x00 0x01\n0x05 0x00 0x02\n0x05 0x01 0x00\n")
    (maps / "ib0_ofed").write_text("device 0\nport   1\n")
    (maps / "ens2f0").write_text("0x81 0x10 0x1\n")
    entries = read_vf_maps(maps, {"ib0": "fabric-a"})
    specs = DeviceSpecSet.parse(entries)
    assert [(s.raw["address"], s.tags["physical_network"]) for s in specs] == [
        ("0000:81:10.1", "ens2f0"),
        ("0000:05:00.1", "fabric-a"), ("0000:05:00.2", "fabric-a"), ("0000:05:01.0", "fabric-a"),
    ]


@pytest.mark.parametrize(("text", "fragment"), [
    ("0x05 0x00\n", "expected 3 fields, found 2"),
    ("0x05 0x20 0x01\n", "slot '0x20' is not a hex number from 0x0 to 0x1f"),
    ("05 00 01\n", "bus '05' is not a hex number"),
    ("\n", "the map lists no VF"),
])
def test_opennebula_vf_map_errors(text: str, fragment: str) -> None:
    with pytest.raises(VfMapError, match=re.escape(fragment)):
        parse_vf_map(text, "ib0", "vf_maps/ib0")


def test_toml_config_tables_json_strings_and_imports_in_order(tmp_path: Path) -> None:
    (tmp_path / "nova.conf").write_text('[pci]\ndevice_spec = {"vendor_id": "8086"}\n')
    (tmp_path / "maps").mkdir()
    (tmp_path / "maps" / "ib0").write_text("0x05 0x00 0x01\n")
    cfg = tmp_path / "vfkeeper.toml"
    cfg.write_text(
        'device_spec = [\n'
        '  { devname = "ens1f0", physical_network = "physnet1", drivers = ["mlx5_core"] },\n'
        '  \'{"vendor_id": "15b3", "product_id": "101e", "physical_network": null}\',\n'
        ']\n'
        '[device_spec_import]\n'
        'nova_conf = "nova.conf"\n'
        'opennebula_vf_maps = "maps"\n'
        'opennebula_physnets = { ib0 = "fabric-a" }\n'
    )
    specs = load_spec_set(config=cfg)
    assert [s.source.rsplit("/", 1)[-1] for s in specs] == [
        "vfkeeper.toml device_spec[0]", "vfkeeper.toml device_spec[1]",
        "nova.conf:2 [pci] device_spec", "ib0"]
    assert specs.specs[0].key("drivers") is not None
    assert specs.specs[1].tags == {"physical_network": None}
    assert [s.index for s in specs] == [0, 1, 2, 3]
    assert specs.specs[3].tags == {"physical_network": "fabric-a"}


@pytest.mark.parametrize(("text", "fragment"), [
    ("device_spec = 5\n", "'device_spec' must be an array"),
    ("device_spec = [5]\n", "device_spec[0] is a int"),
    ("[device_spec_import]\nnova = 'x'\n", "unknown keys in [device_spec_import]"),
    ("device_spec = [\n", "is not valid TOML"),
])
def test_toml_config_errors(tmp_path: Path, text: str, fragment: str) -> None:
    cfg = tmp_path / "v.toml"
    cfg.write_text(text)
    with pytest.raises(TomlConfigError, match=re.escape(fragment)):
        load_spec_set(config=cfg)
