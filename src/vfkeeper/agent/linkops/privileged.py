"""The only code in linkops that changes a host. Few, small, together, plain arguments.

* :func:`netlink_set_vf` — one ``RTM_NEWLINK`` on the PF carrying one VF attribute.
* :func:`netlink_set_vf_vlan_list` — the same for a VLAN with a protocol (802.1ad).
* :func:`write_sriov_file` — the MLNX_OFED sysfs fallback:
  ``<root>/sys/class/net/<pf>/device/sriov/<vf>/{node,port,policy}``.
* :func:`rebind_driver` — unbind and bind a VF's driver so that new GUIDs take effect.

Errors are the kernel's: ``NetlinkError`` (with ``.code``) and ``OSError``; the caller turns
them into typed errors because only it knows which attribute and value they concern.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pyroute2 import AsyncIPRoute
from pyroute2.netlink import NLM_F_ACK, NLM_F_REQUEST, nla
from pyroute2.netlink.rtnl import RTM_NEWLINK
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

SriovFile = Literal["node", "port", "policy"]


class NetlinkSocket(Protocol):
    """The part of ``pyroute2.IPRoute`` linkops uses."""

    def link(self, command: str, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


def netlink_set_vf(netlink: NetlinkSocket, ifindex: int, spec: Mapping[str, Any]) -> None:
    """``ip link set <ifindex> vf …``; ``spec`` is pyroute2's VF dict (``{"vf": 0, "mac": …}``)."""
    netlink.link("set", index=ifindex, vf=_deep_copy(spec))  # pyroute2 pops from what it gets


_OWN_TABLE = "_nlmsg_base__compiled_nla"
"""pyroute2 compiles a message class's NLA table once and stores it on the class; a subclass
inherits the parent's compiled table unless it says it has not compiled its own yet."""


class _VlanListMsg(ifinfmsg):  # type: ignore[misc]
    """``ifinfmsg`` whose ``IFLA_VF_VLAN_INFO`` is the kernel's full 16-byte struct.

    pyroute2 0.9 packs ``struct ifla_vf_vlan_info`` in 14 bytes (no tail padding); kernels with
    the 2024 fix to ``do_setvfinfo`` (Debian's 6.1.0-5x among them) check
    ``nla_len >= sizeof(struct ifla_vf_vlan_info)`` and answer EINVAL, so every 802.1ad
    request would read as a bad value (seen on igb, which really answers EPROTONOSUPPORT, as
    ``ip link`` shows)."""

    vars()[_OWN_TABLE] = False

    class vflist(ifinfmsg.vflist):  # type: ignore[misc]
        vars()[_OWN_TABLE] = False

        class vfinfo(ifinfmsg.vflist.vfinfo):  # type: ignore[misc]
            vars()[_OWN_TABLE] = False

            class vf_vlist(ifinfmsg.vflist.vfinfo.vf_vlist):  # type: ignore[misc]
                vars()[_OWN_TABLE] = False

                class ivvi(nla):  # type: ignore[misc]
                    fields = (
                        ("vf", "I"),
                        ("vlan", "I"),
                        ("qos", "I"),
                        ("proto", ">H"),
                        ("__pad", "H"),
                    )


def netlink_set_vf_vlan_list(ifindex: int, vf: int, *, vlan: int, qos: int, proto: int) -> None:
    """``ip link set <ifindex> vf <vf> vlan <vlan> qos <qos> proto <proto>``.

    Sent on its own short-lived socket in the caller's network namespace: pyroute2 0.9's sync
    ``IPRoute.nlm_request`` cannot send a hand-built message (it fails on a missing status key
    before sending), its async core can. Not for use from inside a running event loop."""
    msg = _VlanListMsg()
    msg["index"] = ifindex
    info = {"vf": vf, "vlan": vlan, "qos": qos, "proto": proto}
    vlist = ("IFLA_VF_VLAN_LIST", {"attrs": [("IFLA_VF_VLAN_INFO", info)]})
    msg["attrs"] = [("IFLA_VFINFO_LIST", {"attrs": [("IFLA_VF_INFO", {"attrs": [vlist]})]})]
    asyncio.run(_request(msg, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK))


async def _request(msg: Any, msg_type: int, msg_flags: int) -> None:
    async with AsyncIPRoute() as netlink:
        async for _ in await netlink.nlm_request(msg, msg_type=msg_type, msg_flags=msg_flags):
            pass


def _deep_copy(spec: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (_deep_copy(v) if isinstance(v, Mapping) else v) for k, v in spec.items()}


def sriov_file(root: str, pf: str, vf_index: int, name: SriovFile) -> str:
    return os.path.join(root, "sys/class/net", pf, "device/sriov", str(vf_index), name)


def write_sriov_file(root: str, pf: str, vf_index: int, name: SriovFile, text: str) -> None:
    _write(sriov_file(root, pf, vf_index, name), text)


def rebind_driver(root: str, pci_address: str, driver: str) -> None:
    """Unbind ``pci_address`` from ``driver`` and bind it again."""
    drivers = os.path.join(root, "sys/bus/pci/drivers", driver)
    _write(os.path.join(drivers, "unbind"), pci_address)
    _write(os.path.join(drivers, "bind"), pci_address)


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC)  # as `echo VALUE > path` opens it
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
