"""The InfiniBand part of discovery: a PCI function's RDMA device (``infiniband/<dev>``) with its
ports, GUIDs and PKey tables, and a VF's administrative GUIDs as mlx5 exposes them on its PF.

Formats (kernel ``Documentation/ABI/stable/sysfs-class-infiniband``; mlx5 ``sriov_sysfs.c``):
``node_guid`` / ``sys_image_guid`` are four groups of 4 hex digits; ``ports/N/state`` and
``phys_state`` are ``"4: ACTIVE"`` / ``"5: LinkUp"``; ``lid`` is ``0x`` hex; ``gids/0`` is a
full GID whose low 64 bits are the port GUID; ``pkeys/K`` is ``0x%04x``, one file per table
entry, unused entries ``0x0000``; ``<pf>/sriov/<vf>/{node,port}`` are eight colon-separated
bytes and ``policy`` is ``Down``, ``Up`` or ``Follow``.
"""

from __future__ import annotations

from vfkeeper.agent import parse
from vfkeeper.agent.errors import SysfsReadError
from vfkeeper.agent.scan import Attr, Scan
from vfkeeper.domain.inventory import IbDevice, IbPort, VfAdminGuids

_DEVICE_ATTRS = (
    Attr("node_guid", parse.sysfs_guid, "node_guid"),
    Attr("sys_image_guid", parse.sysfs_guid, "sys_image_guid"),
)
_PORT_ATTRS = (
    Attr("state", None, "state"),
    Attr("phys_state", None, "phys_state"),
    Attr("link_layer", None, "link_layer"),
    Attr("rate", None, "rate"),
    Attr("lid", parse.lid, "lid"),
    Attr("gids/0", parse.gid_port_guid, "port_guid"),
)
_ADMIN_ATTRS = (
    Attr("node", parse.byte_guid, "node_guid"),
    Attr("port", parse.byte_guid, "port_guid", optional=True),  # InfiniBand mode only
    Attr("policy", None, "policy", optional=True),  # InfiniBand mode only
)
_NO_PKEY = "0x0000"


def _numbered(names: list[str]) -> list[tuple[int, str]]:
    return sorted((int(n), n) for n in names if n.isdigit())


def read_ib_device(scan: Scan, ib_dir: str, name: str) -> IbDevice:
    """``ib_dir`` is ``<pci function>/infiniband/<name>``."""
    node_guid, sys_image_guid = scan.attrs(ib_dir, _DEVICE_ATTRS, f"infiniband {name} ")
    ports_dir = f"{ib_dir}/ports"
    names = scan.listdir(ports_dir, f"infiniband {name} ports") or []
    ports = tuple(
        _read_port(scan, f"{ports_dir}/{entry}", number, name)
        for number, entry in _numbered(names)
    )
    return IbDevice(name=name, node_guid=node_guid, sys_image_guid=sys_image_guid, ports=ports)


def _read_port(scan: Scan, port_dir: str, number: int, dev: str) -> IbPort:
    what = f"infiniband {dev} port {number}"
    state, phys_state, link_layer, rate, lid, port_guid = scan.attrs(
        port_dir, _PORT_ATTRS, what + " ")
    return IbPort(
        number=number, state=state, phys_state=phys_state, link_layer=link_layer, rate=rate,
        lid=lid, port_guid=port_guid,
        # iWARP devices have no PKey table; every InfiniBand port has one.
        pkeys=_read_pkeys(scan, f"{port_dir}/pkeys", what, optional=link_layer != "InfiniBand"),
    )


def _read_pkeys(scan: Scan, pkeys_dir: str, what: str, *, optional: bool) -> tuple[str, ...]:
    """The non-zero entries of a PKey table, in index order. Tables are large (128 entries on
    mlx5, nearly all 0x0000) and read for every port: one batch read through the directory's
    descriptor, and an unused entry costs one comparison."""
    names = scan.listdir(pkeys_dir, f"{what} pkeys", optional=optional)
    if not names:
        return ()
    entries = [n for n in names if n.isdigit()]
    entries.sort(key=int)
    keys = []
    for entry, raw in zip(entries, scan.reader.read_many(pkeys_dir, entries), strict=True):
        if raw == _NO_PKEY:
            continue
        field = f"{what} pkey index {entry}"
        if isinstance(raw, SysfsReadError):
            scan.failed(raw, field)
            continue
        value = scan.parse(f"{pkeys_dir}/{entry}", raw, parse.pkey, field)
        if value:
            keys.append(f"0x{value:04x}")
    return tuple(keys)


def read_vf_admin_guids(scan: Scan, pf_dir: str, vf_index: int) -> VfAdminGuids:
    """``<pf_dir>/sriov/<vf_index>/{node,port,policy}`` (mlx5; callers check ``sriov`` exists).
    ``port`` and ``policy`` exist only in InfiniBand mode."""
    node_guid, port_guid, policy = scan.attrs(
        f"{pf_dir}/sriov/{vf_index}", _ADMIN_ATTRS, f"VF {vf_index} admin ")
    return VfAdminGuids(node_guid=node_guid, port_guid=port_guid, policy=policy)
