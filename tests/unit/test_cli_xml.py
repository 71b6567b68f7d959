import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.cli.main import build_app
from vfkeeper.sim import simulate_host

VF = "0000:03:10.1"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(build_app(), ["xml", *args])
    return result.exit_code, result.stdout, result.stderr


def test_interface_hw_veb_direct() -> None:
    code, out, _ = run(
        "interface", "--vnic-type", "direct", "--vif-type", "hw_veb", "--pci-slot", VF,
        "--mac", "FA:16:3E:11:22:33", "--vlan", "100",
    )
    assert code == 0
    el = ET.fromstring(out)
    assert el.attrib == {"type": "hostdev", "managed": "yes"}
    assert el.find("source/address").get("slot") == "0x10"  # type: ignore[union-attr]
    assert el.find("mac").get("address") == "fa:16:3e:11:22:33"  # type: ignore[union-attr]
    assert el.find("vlan/tag").get("id") == "100"  # type: ignore[union-attr]


def test_interface_macvtap_802_1qbh() -> None:
    code, out, _ = run(
        "interface", "--vnic-type", "macvtap", "--vif-type", "802.1qbh", "--pci-slot", VF,
        "--netdev", "enic0v1", "--profileid", "pp-web",
    )
    assert code == 0
    el = ET.fromstring(out)
    assert el.get("type") == "direct"
    assert el.find("source").get("dev") == "enic0v1"  # type: ignore[union-attr]
    assert el.find("virtualport/parameters").get("profileid") == "pp-web"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("vif_type", "vnic_type", "addr"),
    [("hostdev_physical", "direct-physical", "0000:03:00.0"), ("ib_hostdev", "direct", VF)],
)
def test_interface_plain_hostdevs(vif_type: str, vnic_type: str, addr: str) -> None:
    code, out, _ = run(
        "interface", "--vnic-type", vnic_type, "--vif-type", vif_type, "--pci-slot", addr
    )
    assert code == 0
    el = ET.fromstring(out)
    assert el.tag == "hostdev"
    assert el.find("source/address").get("function") == "0x" + addr[-1]  # type: ignore[union-attr]


def test_interface_on_a_hostdev_network_needs_no_pci_slot() -> None:
    code, out, _ = run(
        "interface", "--vnic-type", "direct", "--vif-type", "hw_veb",
        "--hostdev-network", "physnet1", "--mac", "fa:16:3e:11:22:33",
    )
    assert code == 0
    assert ET.fromstring(out).find("source").get("network") == "physnet1"  # type: ignore[union-attr]


def test_interface_with_failover_prints_virtio_then_vf() -> None:
    code, out, _ = run(
        "interface", "--vnic-type", "direct", "--vif-type", "hw_veb", "--pci-slot", VF,
        "--mac", "fa:16:3e:11:22:33", "--failover-bridge", "br-ex",
    )
    assert code == 0
    first, second = ET.fromstring(f"<x>{out}</x>")
    assert first.find("teaming").get("type") == "persistent"  # type: ignore[union-attr]
    assert second.find("teaming").get("persistent") == "ua-failover0"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--vnic-type", "macvtap", "--vif-type", "hw_veb", "--pci-slot", VF],
            "netdev is required",
        ),
        (
            ["--vnic-type", "direct", "--vif-type", "hostdev_physical", "--pci-slot", VF],
            "use vnic_type 'direct-physical'",
        ),
        (
            ["--vnic-type", "direct", "--vif-type", "hw_veb", "--pci-slot", VF, "--vlan", "4095"],
            "invalid VLAN id 4095: expected 1-4094",
        ),
        (
            ["--vnic-type", "direct", "--vif-type", "hw_veb", "--pci-slot", VF, "--vlan", "0"],
            "leave it unset for a flat",
        ),
        (
            ["--vnic-type", "direct", "--vif-type", "802.1qbh", "--pci-slot", VF],
            "profileid is required",
        ),
        (["--vnic-type", "direct", "--vif-type", "hw_veb"], "pci_address is required"),
        (
            ["--vnic-type", "direct", "--vif-type", "hw_veb", "--pci-slot", "0000:03:10.9"],
            "invalid PCI address",
        ),
        (
            ["--vnic-type", "direct", "--vif-type", "ib_hostdev", "--pci-slot", VF,
             "--mac", "fa:16:3e:00:00:01"],
            "mac cannot be set",
        ),
    ],
)
def test_invalid_interface_exits_2_with_the_reason_on_stderr(args: list[str], message: str) -> None:
    code, out, err = run("interface", *args)
    assert code == 2
    assert out == ""  # nothing half-written
    assert err.startswith("Error: ") and message in err


def test_unknown_vif_type_is_a_usage_error() -> None:
    code, _, _ = run("interface", "--vnic-type", "direct", "--vif-type", "ovs", "--pci-slot", VF)
    assert code == 2


def test_network_with_one_pf() -> None:
    code, out, _ = run("network", "--name", "physnet1", "--pf", "ens1f0")
    assert code == 0
    net = ET.fromstring(out)
    assert net.findtext("name") == "physnet1"
    assert net.find("forward").attrib == {"mode": "hostdev", "managed": "yes"}  # type: ignore[union-attr]
    assert [p.get("dev") for p in net.findall("forward/pf")] == ["ens1f0"]


def test_network_with_vf_addresses() -> None:
    code, out, _ = run("network", "--name", "pool", "--vf", VF, "--vf", "0000:04:10.1")
    assert code == 0
    assert len(ET.fromstring(out).findall("forward/address")) == 2


def test_network_over_several_pfs_lists_their_vfs_from_discovery(tmp_path: Path) -> None:
    simulate_host(tmp_path, "x710", 2, 3)
    inventory = discover(SysfsReader(tmp_path))
    pfs = [d for d in inventory.devices if d.dev_type == "type-PF"]
    names = [pf.netdevs[0].name for pf in pfs]
    code, out, err = run("network", "--name", "physnet1", "--pf", names[0], "--pf", names[1],
                         "--sysfs-root", str(tmp_path))
    assert code == 0, err
    net = ET.fromstring(out)
    assert net.findall("forward/pf") == []  # libvirt allows one <pf>: the VFs stand instead
    listed = {
        f"{int(a.get('domain', '0'), 16):04x}:{int(a.get('bus', '0'), 16):02x}:"
        f"{int(a.get('slot', '0'), 16):02x}.{int(a.get('function', '0'), 16)}"
        for a in net.findall("forward/address")
    }
    assert listed == {vf.address for pf in pfs for vf in inventory.vfs_of(pf.address)}
    assert len(listed) == 6


def test_network_over_an_unknown_pf_names_it(tmp_path: Path) -> None:
    simulate_host(tmp_path, "x710", 1, 2)
    code, out, err = run("network", "--name", "physnet1", "--pf", "nope0", "--pf", "nope1",
                         "--sysfs-root", str(tmp_path))
    assert code == 2 and out == ""
    assert "--pf nope0: no SR-IOV PF has the interface 'nope0'" in err


def test_network_over_a_pf_without_vfs_says_to_create_them(tmp_path: Path) -> None:
    simulate_host(tmp_path, "x710", 2, 0)
    names = [d.netdevs[0].name for d in discover(SysfsReader(tmp_path)).devices
             if d.dev_type == "type-PF"]
    code, _, err = run("network", "--name", "n", "--pf", names[0], "--pf", names[1],
                       "--sysfs-root", str(tmp_path))
    assert code == 2
    assert "has no VFs (sriov_numvfs is 0)" in err


def test_empty_network_exits_2() -> None:
    code, out, err = run("network", "--name", "physnet1")
    assert code == 2 and out == ""
    assert "is empty" in err
