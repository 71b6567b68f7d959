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
from vfkeeper.agent.scan import Scan
from vfkeeper.domain.inventory import IbDevice, IbPort, VfAdminGuids


def _numbered(names: list[str]) -> list[tuple[int, str]]:
    return sorted((int(n), n) for n in names if n.isdigit())


def read_ib_device(scan: Scan, ib_dir: str, name: str) -> IbDevice:
    """``ib_dir`` is ``<pci function>/infiniband/<name>``."""
    node_guid = scan.parsed(f"{ib_dir}/node_guid", parse.sysfs_guid, f"infiniband {name} node_guid")
    sys_image_guid = scan.parsed(
        f"{ib_dir}/sys_image_guid", parse.sysfs_guid, f"infiniband {name} sys_image_guid"
    )
    ports_dir = f"{ib_dir}/ports"
    names = scan.listdir(ports_dir, f"infiniband {name} ports") or []
    ports = tuple(
        _read_port(scan, f"{ports_dir}/{entry}", number, name)
        for number, entry in _numbered(names)
    )
    return IbDevice(name=name, node_guid=node_guid, sys_image_guid=sys_image_guid, ports=ports)


def _read_port(scan: Scan, port_dir: str, number: int, dev: str) -> IbPort:
    what = f"infiniband {dev} port {number}"
    link_layer = scan.text(f"{port_dir}/link_layer", f"{what} link_layer")
    return IbPort(
        number=number,
        state=scan.text(f"{port_dir}/state", f"{what} state"),
        phys_state=scan.text(f"{port_dir}/phys_state", f"{what} phys_state"),
        link_layer=link_layer,
        rate=scan.text(f"{port_dir}/rate", f"{what} rate"),
        lid=scan.parsed(f"{port_dir}/lid", parse.lid, f"{what} lid"),
        port_guid=scan.parsed(f"{port_dir}/gids/0", parse.gid_port_guid, f"{what} port_guid"),
        # iWARP devices have no PKey table; every InfiniBand port has one.
        pkeys=_read_pkeys(scan, f"{port_dir}/pkeys", what, optional=link_layer != "InfiniBand"),
    )


def _read_pkeys(scan: Scan, pkeys_dir: str, what: str, *, optional: bool) -> tuple[str, ...]:
    """The non-zero entries of a PKey table, in index order. Tables are large (128 entries on
    mlx5, nearly all 0x0000) and read for every port, so this loop stays lean."""
    names = scan.listdir(pkeys_dir, f"{what} pkeys", optional=optional)
    if names is None:
        return ()
    read, keys = scan.reader.read, []
    for index, entry in _numbered(names):
        path = f"{pkeys_dir}/{entry}"
        try:
            raw = read(path)
        except SysfsReadError as exc:
            scan.failed(exc, f"{what} pkey index {index}")
            continue
        if raw == "0x0000":
            continue
        value = scan.parse(path, raw, parse.pkey, f"{what} pkey index {index}")
        if value:
            keys.append(f"0x{value:04x}")
    return tuple(keys)


def read_vf_admin_guids(scan: Scan, pf_dir: str, vf_index: int) -> VfAdminGuids:
    """``<pf_dir>/sriov/<vf_index>/{node,port,policy}`` (mlx5; callers check ``sriov`` exists).
    ``port`` and ``policy`` exist only in InfiniBand mode."""
    base = f"{pf_dir}/sriov/{vf_index}"
    what = f"VF {vf_index} admin"
    return VfAdminGuids(
        node_guid=scan.parsed(f"{base}/node", parse.byte_guid, f"{what} node_guid"),
        port_guid=scan.parsed(f"{base}/port", parse.byte_guid, f"{what} port_guid",
                              optional=True),
        policy=scan.text(f"{base}/policy", f"{what} policy", optional=True),
    )
