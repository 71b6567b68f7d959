"""The only code in linkops that changes a host. Few, small, together, plain arguments.

* :func:`netlink_set_vf` — one ``RTM_NEWLINK`` on the PF carrying one VF attribute.
* :func:`write_sriov_file` — the MLNX_OFED sysfs fallback:
  ``<root>/sys/class/net/<pf>/device/sriov/<vf>/{node,port,policy}``.
* :func:`rebind_driver` — unbind and bind a VF's driver so that new GUIDs take effect.

Errors are the kernel's: ``NetlinkError`` (with ``.code``) and ``OSError``; the caller turns
them into typed errors because only it knows which attribute and value they concern.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal, Protocol

SriovFile = Literal["node", "port", "policy"]


class NetlinkSocket(Protocol):
    """The part of ``pyroute2.IPRoute`` linkops uses."""

    def link(self, command: str, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


def netlink_set_vf(netlink: NetlinkSocket, ifindex: int, spec: Mapping[str, Any]) -> None:
    """``ip link set <ifindex> vf …``; ``spec`` is pyroute2's VF dict (``{"vf": 0, "mac": …}``)."""
    netlink.link("set", index=ifindex, vf=_deep_copy(spec))  # pyroute2 pops from what it gets


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
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
