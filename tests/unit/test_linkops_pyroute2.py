"""The pyroute2 LinkOps below the kernel boundary we can reach here.

* parsing ``IFLA_VFINFO_LIST`` through pyroute2's own codec (bytes encoded, then decoded);
* the real kernel's answers, in a network namespace with a veth pair (veth has no VFs and no
  ``ndo_set_vf_*``: reads give no VFs, writes get EOPNOTSUPP);
* the MLNX_OFED sysfs fallback and the VF driver rebind, against a temp ``/sys`` tree and a
  netlink stand-in that refuses GUIDs the way a kernel without ``ndo_set_vf_guid`` does.

Real VFs are exercised in tests/vm/test_linkops_real_kernel.py.
"""

from __future__ import annotations

import errno
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

from vfkeeper.agent.linkops import (
    LinkState,
    PfNotFoundError,
    VfAttributeNotSupportedError,
    VfConfig,
    VfRebindError,
    VfState,
    Vlan,
)
from vfkeeper.agent.linkops.privileged import _VlanListMsg
from vfkeeper.agent.linkops.pyroute2_impl import Pyroute2LinkOps, parse_link


def encoded_link(index: int, num_vfs: int, infos: list[list[tuple[str, Any]]]) -> Any:
    """An RTM_NEWLINK answer as the kernel would send it, through pyroute2's encoder/decoder."""
    msg = ifinfmsg()
    msg["index"] = index
    msg["attrs"] = [
        ("IFLA_IFNAME", "pf0"),
        ("IFLA_NUM_VF", num_vfs),
        ("IFLA_VFINFO_LIST", {"attrs": [("IFLA_VF_INFO", {"attrs": a}) for a in infos]}),
    ]
    msg.encode()
    decoded = ifinfmsg(msg.data)
    decoded.decode()
    return decoded


def vf_info(vf: int, mac: str = "00:00:00:00:00:00", **extra: Any) -> list[tuple[str, Any]]:
    attrs: list[tuple[str, Any]] = [
        ("IFLA_VF_MAC", {"vf": vf, "mac": mac}),
        ("IFLA_VF_VLAN", {"vf": vf, "vlan": 0, "qos": 0}),
        ("IFLA_VF_RATE", {"vf": vf, "min_tx_rate": 0, "max_tx_rate": 0}),
        ("IFLA_VF_SPOOFCHK", {"vf": vf, "spoofchk": 0xFFFFFFFF}),
        ("IFLA_VF_TRUST", {"vf": vf, "trust": 0xFFFFFFFF}),
        ("IFLA_VF_LINK_STATE", {"vf": vf, "link_state": 0}),
    ]
    by_name = dict(attrs)
    by_name.update(extra)
    return list(by_name.items())


def test_vfinfo_is_read_as_the_kernel_encodes_it() -> None:
    full = vf_info(
        0,
        "02:11:22:33:44:55",
        IFLA_VF_VLAN={"vf": 0, "vlan": 100, "qos": 3},
        IFLA_VF_VLAN_LIST={
            "attrs": [("IFLA_VF_VLAN_INFO", {"vf": 0, "vlan": 100, "qos": 3, "proto": 0x88A8})]
        },
        IFLA_VF_RATE={"vf": 0, "min_tx_rate": 10, "max_tx_rate": 500},
        IFLA_VF_SPOOFCHK={"vf": 0, "spoofchk": 0},
        IFLA_VF_TRUST={"vf": 0, "trust": 1},
        IFLA_VF_LINK_STATE={"vf": 0, "link_state": 2},
        IFLA_VF_IB_NODE_GUID={"vf": 0, "ib_node_guid": "00:02:c9:03:00:a1:b2:c3"},
        IFLA_VF_IB_PORT_GUID={"vf": 0, "ib_port_guid": "ff:ff:ff:ff:ff:ff:ff:ff"},
    )
    vfs = parse_link("pf0", encoded_link(3, 3, [full, vf_info(1)]))

    assert vfs[0] == VfState(
        "pf0",
        0,
        mac="02:11:22:33:44:55",
        vlan=Vlan(100, 3, "802.1ad"),
        spoofchk=False,
        trust=True,
        min_tx_rate=10,
        max_tx_rate=500,
        node_guid="0x0002c90300a1b2c3",
        port_guid="0xffffffffffffffff",
        link_state=LinkState.DISABLE,
    )
    # 0xffffffff: the driver did not fill spoofchk/trust in; no GUIDs: not an InfiniBand PF
    assert (vfs[1].spoofchk, vfs[1].trust, vfs[1].node_guid) == (None, None, None)
    # the kernel counts 3 VFs but described 2 (driver without ndo_get_vf_config for VF 2)
    assert vfs[2] == VfState("pf0", 2)


def test_802_1ad_requests_carry_the_kernels_full_struct() -> None:
    plain = ifinfmsg()  # compile pyroute2's own table first, as any earlier request would
    plain["attrs"] = []
    plain.encode()
    msg = _VlanListMsg()
    msg["index"] = 3
    info = {"vf": 1, "vlan": 7, "qos": 0, "proto": 0x88A8}
    vlist = ("IFLA_VF_VLAN_LIST", {"attrs": [("IFLA_VF_VLAN_INFO", info)]})
    msg["attrs"] = [("IFLA_VFINFO_LIST", {"attrs": [("IFLA_VF_INFO", {"attrs": [vlist]})]})]
    msg.encode()
    data = bytes(msg.data)
    at = data.index(bytes.fromhex("0c00"), 16) + 2  # IFLA_VF_VLAN_LIST, then its first NLA
    assert int.from_bytes(data[at : at + 2], "little") == 4 + 16  # header + sizeof(struct)


# --- the real kernel, in a throwaway network namespace -----------------------------------------
@pytest.fixture
def veth_ns() -> Iterator[tuple[Any, int]]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create a network namespace")
    from pyroute2 import NetNS, netns

    name = f"vfk-{uuid.uuid4().hex[:8]}"
    netns.create(name)
    try:
        with NetNS(name) as ns:
            ns.link("add", ifname="v0", kind="veth", peer="v1")
            yield ns, int(ns.link("get", ifname="v0")[0]["index"])
    finally:
        netns.remove(name)


def test_a_netdev_without_vfs_lists_none_and_a_missing_one_is_typed(
    veth_ns: tuple[Any, int],
) -> None:
    ops = Pyroute2LinkOps(netlink=veth_ns[0])
    assert ops.list_vfs("v0") == ()
    with pytest.raises(PfNotFoundError) as missing:
        ops.list_vfs("enoent0")
    assert missing.value.pf == "enoent0"


class _ClaimsVfs:
    """Answers reads as if the PF had VFs; sends every write to the real kernel."""

    def __init__(self, real: Any, index: int, num_vfs: int) -> None:
        self.real = real
        self.answer = encoded_link(index, num_vfs, [vf_info(i) for i in range(num_vfs)])

    def link(self, command: str, **kwargs: Any) -> Any:
        if command == "get":
            return [self.answer]
        return self.real.link(command, **kwargs)

    def close(self) -> None:
        pass


@pytest.mark.parametrize(
    "config",
    [VfConfig(mac="02:00:00:00:00:01"), VfConfig(trust=True), VfConfig(max_tx_rate=10)],
    ids=["mac", "trust", "max_tx_rate"],
)
def test_the_kernels_refusal_becomes_a_typed_error(
    veth_ns: tuple[Any, int], config: VfConfig
) -> None:
    ns, index = veth_ns
    ops = Pyroute2LinkOps(netlink=_ClaimsVfs(ns, index, 2))
    with pytest.raises(VfAttributeNotSupportedError) as refused:
        ops.set_vf("v0", 1, config)
    (attr,) = config.attrs()
    assert (refused.value.pf, refused.value.vf_index, refused.value.attribute) == ("v0", 1, attr)
    assert refused.value.errno == errno.EOPNOTSUPP


# --- the MLNX_OFED sysfs fallback ---------------------------------------------------------------
PF_ADDR, VF_ADDR = "0000:03:00.0", "0000:03:00.1"


class _NoGuidNetlink:
    """A kernel whose IPoIB PF reports no VF GUIDs and refuses to set them (EOPNOTSUPP)."""

    def __init__(self) -> None:
        self.sets: list[dict[str, Any]] = []

    def link(self, command: str, **kwargs: Any) -> Any:
        if command == "get":
            return [encoded_link(7, 1, [vf_info(0)])]
        self.sets.append(kwargs["vf"])
        raise NetlinkError(errno.EOPNOTSUPP, "Operation not supported")

    def close(self) -> None:
        pass


def ofed_host(tmp_path: Path, vf_driver: str | None = "mlx5_core") -> Path:
    sys = tmp_path / "sys"
    devices = sys / "bus/pci/devices"
    pf, vf = devices / PF_ADDR, devices / VF_ADDR
    for d in (pf / "sriov/0", vf, sys / "class/net", sys / "bus/pci/drivers/mlx5_core"):
        d.mkdir(parents=True, exist_ok=True)
    (sys / "class/net/ib0").mkdir()
    (sys / "class/net/ib0/device").symlink_to(pf)
    (pf / "virtfn0").symlink_to(vf)
    for name, text in (("node", "00:00:00:00:00:00:00:00\n"), ("port", "00:00:00:00:00:00:00:00\n"),
                       ("policy", "Down\n")):  # fmt: skip
        (pf / "sriov/0" / name).write_text(text)
    for name in ("bind", "unbind"):
        (sys / "bus/pci/drivers/mlx5_core" / name).write_text("")
    if vf_driver:
        (sys / "bus/pci/drivers" / vf_driver).mkdir(exist_ok=True)
        (vf / "driver").symlink_to(sys / "bus/pci/drivers" / vf_driver)
    return sys


def test_guids_fall_back_to_the_sriov_files_then_the_vf_is_rebound(tmp_path: Path) -> None:
    sys = ofed_host(tmp_path)
    netlink = _NoGuidNetlink()
    ops = Pyroute2LinkOps(netlink=netlink, root=str(tmp_path))

    ops.set_vf("ib0", 0, VfConfig(node_guid="0x0002c90300a1b2c3", port_guid="0x0002c90300a1b2c4"))

    assert [list(s) for s in netlink.sets] == [["vf", "ib_node_guid"], ["vf", "ib_port_guid"]]
    sriov = sys / "bus/pci/devices" / PF_ADDR / "sriov/0"
    assert (sriov / "node").read_text() == "00:02:c9:03:00:a1:b2:c3"
    assert (sriov / "port").read_text() == "00:02:c9:03:00:a1:b2:c4"
    drivers = sys / "bus/pci/drivers/mlx5_core"
    assert (drivers / "unbind").read_text() == VF_ADDR
    assert (drivers / "bind").read_text() == VF_ADDR
    # and they read back from the same files, since netlink carries none
    vf = ops.get_vf("ib0", 0)
    assert (vf.node_guid, vf.port_guid) == ("0x0002c90300a1b2c3", "0x0002c90300a1b2c4")


def test_link_state_falls_back_to_the_policy_file(tmp_path: Path) -> None:
    sys = ofed_host(tmp_path)
    ops = Pyroute2LinkOps(netlink=_NoGuidNetlink(), root=str(tmp_path))
    ops.set_vf("ib0", 0, VfConfig(link_state=LinkState.AUTO))
    assert (sys / "bus/pci/devices" / PF_ADDR / "sriov/0/policy").read_text() == "Follow"


@pytest.mark.parametrize("vf_driver", ["vfio-pci", None])
def test_vfio_bound_or_unbound_vfs_are_not_rebound(tmp_path: Path, vf_driver: str | None) -> None:
    sys = ofed_host(tmp_path, vf_driver)
    ops = Pyroute2LinkOps(netlink=_NoGuidNetlink(), root=str(tmp_path))
    ops.set_vf("ib0", 0, VfConfig(node_guid="0x0002c90300a1b2c3"))
    assert (sys / "bus/pci/drivers/mlx5_core/unbind").read_text() == ""


def test_a_failed_rebind_says_how_to_finish_it(tmp_path: Path) -> None:
    sys = ofed_host(tmp_path)
    (sys / "bus/pci/drivers/mlx5_core/bind").unlink()
    ops = Pyroute2LinkOps(netlink=_NoGuidNetlink(), root=str(tmp_path))
    with pytest.raises(VfRebindError) as failed:
        ops.set_vf("ib0", 0, VfConfig(port_guid="0x0002c90300a1b2c4"))
    assert (failed.value.pci_address, failed.value.driver) == (VF_ADDR, "mlx5_core")
    assert f"echo {VF_ADDR} > /sys/bus/pci/drivers/mlx5_core/bind" in str(failed.value)


def test_without_sriov_files_the_netlink_refusal_stands(tmp_path: Path) -> None:
    ops = Pyroute2LinkOps(netlink=_NoGuidNetlink(), root=str(tmp_path))  # an empty host root
    with pytest.raises(VfAttributeNotSupportedError) as refused:
        ops.set_vf("ib0", 0, VfConfig(node_guid="0x1"))
    assert refused.value.attribute == "node_guid"
