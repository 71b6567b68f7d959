"""Discovery on a real kernel's sysfs: QEMU's emulated Intel 82576 (igb) with real VFs.

Runs inside the VM guest (see conftest.py and docs/testing.md). The fake trees of the unit tests
are modelled on what a kernel shows; these tests check that model against the kernel itself:
``physfn``/``virtfnN`` links, ``sriov_*`` attributes, driver links and netdevs made by igb/igbvf.
"""

from __future__ import annotations

import errno
import json
import subprocess
from collections.abc import Callable

import pytest
import vm_guest

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.domain.inventory import Device

pytestmark = pytest.mark.vm

INTEL = "8086"
I82576_PF = "10c9"  # what QEMU's igb device emulates (hw/net/igb: E1000_DEV_ID_82576)
I82576_VF = "10ca"  # its VF (E1000_DEV_ID_82576_VF)
IGB_TOTAL_VFS = 7  # QEMU's igb offers 7 of the 82576's 8 VFs


def ip_link_mac(netdev: str) -> str:
    """The MAC as iproute2 shows it (netlink), to hold discovery's sysfs read against."""
    out = subprocess.run(
        ["ip", "-json", "link", "show", "dev", netdev], capture_output=True, text=True, check=True
    ).stdout
    return str(json.loads(out)[0]["address"])


def sysfs_mac(netdev: str) -> str:
    return (vm_guest.SYS / "class/net" / netdev / "address").read_text().strip()


def assert_netdevs_match_kernel(device: Device) -> None:
    names = vm_guest.netdevs(device.address)
    assert [n.name for n in device.netdevs] == names
    assert names, f"{device.address} has no netdev"
    for netdev in device.netdevs:
        assert netdev.mac == sysfs_mac(netdev.name) == ip_link_mac(netdev.name)


def test_discovery_reports_the_igb_pf_and_each_vf_as_the_kernel_made_them(
    igb_pf: str, igb_vfs: Callable[[int], list[str]]
) -> None:
    vf_addresses = igb_vfs(4)

    inventory = discover(SysfsReader("/"))

    devices = inventory.by_address()
    pf = devices[igb_pf]
    assert (pf.vendor_id, pf.product_id) == (INTEL, I82576_PF)
    assert pf.driver == "igb"
    assert pf.dev_type == "type-PF"
    assert (pf.sriov_totalvfs, pf.sriov_numvfs) == (IGB_TOTAL_VFS, 4)
    assert (pf.parent_addr, pf.vf_index) == (None, None)
    assert pf.class_code == "0x020000"
    assert pf.link_type == "ethernet"
    assert_netdevs_match_kernel(pf)

    vfs = inventory.vfs_of(igb_pf)
    assert [vf.address for vf in vfs] == vf_addresses
    for index, vf in enumerate(vfs):
        link = vm_guest.pci_dir(igb_pf) / f"virtfn{index}"
        assert link.resolve().name == vf.address
        assert (vf.vendor_id, vf.product_id) == (INTEL, I82576_VF)
        assert vf.driver == "igbvf"
        assert vf.dev_type == "type-VF"
        assert vf.parent_addr == igb_pf
        assert vf.vf_index == index
        assert vf.sriov_totalvfs is None
        assert_netdevs_match_kernel(vf)
    macs = [n.mac for vf in vfs for n in vf.netdevs]
    assert len(set(macs)) == len(macs), f"VF MACs are not distinct: {macs}"
    assert not [w for w in inventory.warnings if igb_pf in w.path], inventory.warnings


def test_numvfs_change_without_going_through_zero_is_refused_and_discovery_shows_the_old_count(
    igb_pf: str, igb_vfs: Callable[[int], list[str]]
) -> None:
    igb_vfs(2)

    with pytest.raises(OSError) as refused:
        vm_guest.write_numvfs(igb_pf, 3)

    assert refused.value.errno == errno.EBUSY
    inventory = discover(SysfsReader("/"))
    assert inventory.by_address()[igb_pf].sriov_numvfs == 2
    assert [vf.vf_index for vf in inventory.vfs_of(igb_pf)] == [0, 1]


def test_discovery_without_vfs_shows_a_pf_with_none(igb_pf: str) -> None:
    inventory = discover(SysfsReader("/"))

    pf = inventory.by_address()[igb_pf]
    assert pf.dev_type == "type-PF"
    assert pf.sriov_numvfs == 0
    assert inventory.vfs_of(igb_pf) == []
