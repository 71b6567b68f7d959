"""``vfkeeper spec check`` and ``vfkeeper pools`` through the CLI runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vfkeeper.cli.main import build_app

PF = "0000:3b:00.0"
DEVICES: list[dict[str, Any]] = [
    {"address": "0000:00:19.0", "vendor_id": "8086", "product_id": "15b7",
     "dev_type": "type-PCI", "netdevs": ["eno1"]},
    {"address": PF, "vendor_id": "15b3", "product_id": "1017", "dev_type": "type-PF",
     "netdevs": ["ens1f0"], "numa_node": 0},
    {"address": "0000:3b:00.2", "vendor_id": "15b3", "product_id": "1018", "dev_type": "type-VF",
     "parent_addr": PF, "vf_index": 0, "numa_node": 0},
    {"address": "0000:3b:00.3", "vendor_id": "15b3", "product_id": "1018", "dev_type": "type-VF",
     "parent_addr": PF, "vf_index": 1, "numa_node": 0},
]


@pytest.fixture
def devices(tmp_path: Path) -> Path:
    path = tmp_path / "devices.json"
    path.write_text(json.dumps(DEVICES))
    return path


def run(*args: str) -> Any:
    return CliRunner().invoke(build_app(), list(args))


def test_json_output_is_exactly_the_documented_list_in_input_order(devices: Path) -> None:
    result = run("spec", "check", "--devices", str(devices), "--json",
                 "--spec", '{"devname": "ens1f0", "product_id": "1018", "physical_network": "p1"}',
                 "--spec", '{"vendor_id": "8086", "physical_network": null}')
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {"address": "0000:00:19.0", "matched": True, "spec_index": 1,
         "tags": {"physical_network": None}},
        {"address": PF, "matched": False, "spec_index": None, "tags": None},
        {"address": "0000:3b:00.2", "matched": True, "spec_index": 0,
         "tags": {"physical_network": "p1"}},
        {"address": "0000:3b:00.3", "matched": True, "spec_index": 0,
         "tags": {"physical_network": "p1"}},
    ]


def test_table_output_lists_every_device(devices: Path) -> None:
    result = run("spec", "check", "--devices", str(devices), "--spec", '{"address": "*:3b:"}')
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["ADDRESS", "TYPE", "IDS", "PARENT", "MATCH", "TAGS"]
    assert lines[1].split()[:5] == ["0000:00:19.0", "type-PCI", "8086:15b7", "-", "no"]
    assert lines[2].split()[4:6] == ["spec", "#0"]
    assert "3 of 4 devices assignable" in lines[-1]


def test_explain_names_the_deciding_key(devices: Path) -> None:
    result = run("spec", "check", "--devices", str(devices), "--explain", PF,
                 "--spec", '{"devname": "ens1f0", "product_id": "1018"}')
    assert result.exit_code == 0
    assert "no match — deciding key: product_id" in result.stdout
    assert "NO  product_id: wants 1018, device has 1017" in result.stdout


def test_explain_json(devices: Path) -> None:
    result = run("spec", "check", "--devices", str(devices), "--explain", "0000:3B:00.2",
                 "--json", "--spec", '{"vendor_id": "8086"}', "--spec", f'{{"address": "{PF}"}}')
    doc = json.loads(result.stdout)
    assert [s["deciding_key"] for s in doc["specs"]] == ["vendor_id", None]
    assert (doc["matched"], doc["spec_index"]) == (True, 1)


def test_invalid_spec_exits_2_naming_entry_and_key(devices: Path) -> None:
    result = run("spec", "check", "--devices", str(devices), "--spec", '{"vendor_id": "8086"}',
                 "--spec", '{"address": "0000:3b:00.9"}')
    assert result.exit_code == 2
    assert ("Error: device spec entry #1 (--spec #1): key 'address': function '9' is greater "
            "than the maximum 7") in result.stderr


def test_spec_from_file_and_nova_conf(devices: Path, tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('[{"vendor_id": "8086", "physical_network": "x"}]')
    (tmp_path / "nova.conf").write_text('[pci]\ndevice_spec = {"devname": "ens1f0"}\n')
    result = run("spec", "check", "--devices", str(devices), "--json",
                 "--spec", f"@{tmp_path / 's.json'}", "--nova-conf", str(tmp_path / "nova.conf"))
    assert [r["spec_index"] for r in json.loads(result.stdout)] == [0, 1, 1, 1]


def test_bad_device_record_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"address": "3b:00.0"}]))
    result = run("spec", "check", "--devices", str(path), "--spec", "{}")
    assert result.exit_code == 2
    assert "device #0: field 'address'" in result.stderr


def test_needs_exactly_one_device_source() -> None:
    result = run("spec", "check", "--spec", "{}")
    assert result.exit_code == 2
    assert "--sysfs-root PATH or --devices FILE.json" in result.stderr


def test_sysfs_root_uses_discovery(tmp_path: Path) -> None:
    from vfkeeper.sim import simulate_host

    simulate_host(tmp_path, "cx5-eth", 1, 2)
    result = run("spec", "check", "--sysfs-root", str(tmp_path), "--json",
                 "--spec", '{"pf_names": ["enp3s0f0#1"], "physical_network": "p"}')
    assert result.exit_code == 0, result.output
    assert [(r["address"], r["matched"]) for r in json.loads(result.stdout)] == [
        ("0000:03:00.0", False), ("0000:03:00.1", False), ("0000:03:00.2", True)]


def test_pools_json_with_in_use(devices: Path) -> None:
    result = run("pools", "--devices", str(devices), "--json", "--in-use", "0000:3b:00.2",
                 "--spec", '{"devname": "ens1f0", "physical_network": "p1"}')
    assert result.exit_code == 0, result.output
    pools = json.loads(result.stdout)
    assert [(p["dev_type"], p["total"], p["free"]) for p in pools] == [
        ("type-PF", 1, 0), ("type-VF", 2, 1)]


def test_pools_table(devices: Path) -> None:
    result = run("pools", "--devices", str(devices), "--spec",
                 '{"vendor_id": "8086", "physical_network": null, "trusted": "true"}')
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["PHYSNET", "IDS", "NUMA", "TYPE", "PARENT", "TAGS", "TOTAL",
                                "FREE"]
    assert lines[1].split()[0] == "(tunnelled)" and lines[1].split()[-2:] == ["1", "1"]
