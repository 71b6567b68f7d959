"""Host discovery: one pass over ``/sys`` → an immutable :class:`HostInventory`.

For each PCI function listed in ``sys/bus/pci/devices`` the scan lists the function's
directory once, then reads only the entries that listing shows (kernel
``Documentation/ABI/testing/sysfs-bus-pci``): ``class``, ``vendor``, ``device``,
``subsystem_vendor``, ``subsystem_device``, ``sriov_totalvfs``/``sriov_numvfs``/``sriov_vf_device``,
the ``physfn``, ``virtfnN``, ``driver`` and ``iommu_group`` links, ``numa_node``, a PF's ``vpd``,
``net/`` and ``infiniband/``. No path is read twice, and nothing is read lazily later; the
attributes of one directory are read in one batch (:meth:`Scan.attrs`).

Robustness: a missing, unreadable or malformed attribute leaves its field null and adds a
:class:`ScanWarning` naming the path. A function whose directory cannot be listed (dangling bus
link, permission) or that disappears during the scan is left out with a warning saying so.
Non-network functions (class not ``0x02xxxx``) are read only when ``include_all`` is set.
Last, the inventory is made one the controller accepts (:mod:`vfkeeper.agent.conform`): what
breaks its rules is nulled or left out, with a warning.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from vfkeeper.agent import parse, vpd
from vfkeeper.agent.conform import conform
from vfkeeper.agent.errors import SysfsMissingError, SysfsReadError
from vfkeeper.agent.ib import read_ib_device, read_vf_admin_guids
from vfkeeper.agent.netdev import bus_info, read_netdevs
from vfkeeper.agent.scan import Attr, Scan
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.domain.inventory import (
    Device,
    DevType,
    HostInventory,
    IbDevice,
    LinkType,
    Netdev,
)

T = TypeVar("T")

NETWORK_CLASS_PREFIX = "0x02"
"""PCI base class 0x02: network controllers (0x0200 Ethernet, 0x0207 InfiniBand, 0x0280 other)."""

_CLASS_LINK_TYPES: dict[str, LinkType] = {"0x0200": "ethernet", "0x0207": "infiniband"}
_VANISHED = "the device vanished during the scan (hot-unplug, or VFs being removed); left out"
_LINK_LAYERS: dict[str, LinkType] = {"InfiniBand": "infiniband", "Ethernet": "ethernet"}
_PCI_ATTRS = (
    Attr("vendor", parse.hex_id, "vendor_id"),
    Attr("device", parse.hex_id, "product_id"),
    Attr("subsystem_vendor", parse.hex_id, "subsystem_vendor_id"),
    Attr("subsystem_device", parse.hex_id, "subsystem_device_id"),
    Attr("numa_node", parse.numa_node, "numa_node", optional=True),
    Attr("sriov_totalvfs", parse.decimal, "sriov_totalvfs", optional=True),
    Attr("sriov_vf_device", parse.vf_device_id, "sriov_vf_device", optional=True),
)
_NUMVFS = Attr("sriov_numvfs", parse.decimal, "sriov_numvfs")
_NUMVFS_OPTIONAL = _NUMVFS._replace(optional=True)


@dataclass
class _Function:
    """What the scan read of one function, before VFs are tied to their PFs."""

    address: str
    dev_dir: str
    is_network: bool
    entries: set[str] = field(default_factory=set)
    """The names the function's directory listed: only these are read."""
    fields: dict[str, Any] = field(default_factory=dict)
    physfn: str | None = None
    virtfns: dict[int, str] = field(default_factory=dict)
    has_sriov_dir: bool = False


def discover(
    reader: SysfsReader, *, hostname: str | None = None, include_all: bool = False
) -> HostInventory:
    """Scan the host ``reader`` reads. Raises :class:`~vfkeeper.agent.errors.SysfsRootError`
    when the root has no PCI listing; every other problem becomes a warning."""
    scan = Scan(reader)
    addresses = reader.pci_addresses()
    found: dict[str, _Function] = {}
    for address in addresses:
        fn = _scan_function(scan, address, include_all)
        if fn is not None:
            found[address] = fn
    vf_indexes = _vf_indexes(scan, found, set(addresses))
    devices = tuple(_device(scan, fn, found, vf_indexes) for fn in found.values())
    return conform(HostInventory(
        hostname=hostname or reader.hostname() or socket.gethostname(),
        devices=devices,
        warnings=tuple(scan.warnings),
    ), reader.pci_devices_dir)


def _scan_function(scan: Scan, address: str, include_all: bool) -> _Function | None:
    reader = scan.reader
    try:
        dev_dir = reader.device_dir(address)
        entries = set(reader.listdir(dev_dir))
    except SysfsReadError as exc:
        _unlisted(scan, f"{reader.pci_devices_dir}/{address}", exc)
        return None
    mark, missing = len(scan.warnings), scan.missing
    fn = _read_function(scan, address, dev_dir, entries, include_all)
    if scan.missing > missing and not reader.is_dir(dev_dir):
        del scan.warnings[mark:]
        scan.warn(dev_dir, _VANISHED)
        return None
    return fn


def _unlisted(scan: Scan, link: str, exc: SysfsReadError) -> None:
    if scan.reader.is_dangling_link(link):
        scan.warn(link, f"dangling symlink: {exc.path} does not exist; device left out")
    elif isinstance(exc, SysfsMissingError):
        scan.warn(link, _VANISHED)
    else:
        scan.warn(exc.path, f"cannot list the device ({exc.reason}); device left out")


def _attr(
    scan: Scan, fn: _Function, name: str, parser: Callable[[str], T], what: str,
    *, optional: bool = False,
) -> T | None:
    path = f"{fn.dev_dir}/{name}"
    if name not in fn.entries:
        if not optional:
            scan.warn(path, f"missing; {what} is null")
        return None
    return scan.parsed(path, parser, what)


def _read_function(
    scan: Scan, address: str, dev_dir: str, entries: set[str], include_all: bool
) -> _Function | None:
    fn = _Function(address=address, dev_dir=dev_dir, is_network=False, entries=entries)
    class_code = _attr(scan, fn, "class", parse.class_code, "class_code")
    fn.is_network = (
        class_code.startswith(NETWORK_CLASS_PREFIX)
        if class_code is not None
        else bool(entries & {"net", "infiniband"})
    )
    if not (fn.is_network or include_all):
        return None
    f = fn.fields
    f["class_code"] = class_code
    # sriov_numvfs must exist on an SR-IOV capable function (one with sriov_totalvfs)
    _read_attrs(scan, fn, (*_PCI_ATTRS,
                           _NUMVFS if "sriov_totalvfs" in entries else _NUMVFS_OPTIONAL))
    _read_sriov(scan, fn, entries)
    _read_links(scan, fn, entries)
    netdevs = read_netdevs(scan, dev_dir, entries)
    f["netdevs"] = netdevs
    f["bus_info"] = bus_info(address, entries) if netdevs else None
    f["infiniband"] = _read_infiniband(scan, dev_dir, entries)
    return fn


def _read_attrs(scan: Scan, fn: _Function, wanted: tuple[Attr, ...]) -> None:
    """Read, in one batch, the attributes the function's directory lists; an absent one is
    null (and a warning unless it is optional)."""
    listed = []
    for attr in wanted:
        if attr.name in fn.entries:
            listed.append(attr)
        else:
            fn.fields[attr.field] = None
            if not attr.optional:
                scan.warn(f"{fn.dev_dir}/{attr.name}", f"missing; {attr.field} is null")
    for attr, value in zip(listed, scan.attrs(fn.dev_dir, listed), strict=True):
        fn.fields[attr.field] = value


def _read_sriov(scan: Scan, fn: _Function, entries: set[str]) -> None:
    """A PF's ``virtfnN`` links (each VF's index, read once here rather than per VF), its
    mlx5 ``sriov/`` directory, and the card serial number in its VPD."""
    fn.has_sriov_dir = "sriov" in entries
    for entry in entries:
        if entry.startswith("virtfn") and entry[6:].isdigit():
            target = scan.link(f"{fn.dev_dir}/{entry}", f"VF {entry[6:]} address")
            if target is not None:
                fn.virtfns[int(entry[6:])] = target
    is_pf = "sriov_totalvfs" in entries and "physfn" not in entries
    fn.fields["vpd_serial"] = _vpd_serial(scan, fn.dev_dir) if is_pf and "vpd" in entries else None


def _vpd_serial(scan: Scan, dev_dir: str) -> str | None:
    path = f"{dev_dir}/vpd"
    try:
        data = scan.reader.read_binary(path)
    except SysfsReadError as exc:
        scan.failed(exc, "vpd_serial")
        return None
    try:
        return vpd.serial_number(data)
    except ValueError as exc:
        scan.warn(path, f"malformed VPD ({exc}); vpd_serial is null")
        return None


def _read_links(scan: Scan, fn: _Function, entries: set[str]) -> None:
    if "physfn" in entries:
        fn.physfn = scan.link(f"{fn.dev_dir}/physfn", "parent_addr")
    fn.fields["driver"] = (
        scan.link(f"{fn.dev_dir}/driver", "driver") if "driver" in entries else None
    )
    group = None
    if "iommu_group" in entries:
        path = f"{fn.dev_dir}/iommu_group"
        name = scan.link(path, "iommu_group")
        group = None if name is None else scan.parse(path, name, parse.group_number, "iommu_group")
    fn.fields["iommu_group"] = group


def _read_infiniband(scan: Scan, dev_dir: str, entries: set[str]) -> IbDevice | None:
    if "infiniband" not in entries:
        return None
    ib_root = f"{dev_dir}/infiniband"
    names = sorted(scan.listdir(ib_root, "infiniband") or [])
    if not names:
        return None
    if len(names) > 1:
        scan.warn(ib_root, f"{len(names)} RDMA devices ({', '.join(names)}); only "
                  f"{names[0]} is reported")
    return read_ib_device(scan, f"{ib_root}/{names[0]}", names[0])


def _vf_indexes(
    scan: Scan, found: dict[str, _Function], on_bus: set[str]
) -> dict[str, tuple[str, int]]:
    """VF address → (PF address, N of the PF's ``virtfnN`` link that points at it)."""
    indexes: dict[str, tuple[str, int]] = {}
    for pf in found.values():
        for index, vf_address in sorted(pf.virtfns.items()):
            if vf_address not in on_bus:
                scan.warn(f"{pf.dev_dir}/virtfn{index}", f"points to {vf_address}, which the PCI "
                          "bus does not list; that VF is missing from the inventory")
            indexes[vf_address] = (pf.address, index)
    return indexes


def _dev_type(fn: _Function) -> DevType:
    if fn.physfn is not None:
        return "type-VF"
    if (fn.fields["sriov_totalvfs"] or 0) > 0 or fn.virtfns:
        return "type-PF"
    return "type-PCI"


def _link_type(fields: dict[str, Any]) -> LinkType | None:
    netdevs: tuple[Netdev, ...] = fields["netdevs"]
    for netdev in netdevs:
        if netdev.link_type is not None:
            return netdev.link_type
    ib: IbDevice | None = fields["infiniband"]
    if ib is not None and ib.ports and ib.ports[0].link_layer in _LINK_LAYERS:
        return _LINK_LAYERS[ib.ports[0].link_layer]
    class_code: str | None = fields["class_code"]
    return None if class_code is None else _CLASS_LINK_TYPES.get(class_code[:6])


def _device(
    scan: Scan, fn: _Function, found: dict[str, _Function],
    vf_indexes: dict[str, tuple[str, int]],
) -> Device:
    dev_type = _dev_type(fn)
    vf_index = None
    admin = None
    if dev_type == "type-VF":
        listed = vf_indexes.get(fn.address)
        if listed is not None and listed[0] == fn.physfn:
            vf_index = listed[1]
        else:
            scan.warn(f"{fn.dev_dir}/physfn", f"no virtfnN link of PF {fn.physfn} points at "
                      "this VF; vf_index is null")
        pf = found.get(fn.physfn or "")
        if pf is not None and pf.has_sriov_dir and vf_index is not None:
            admin = read_vf_admin_guids(scan, pf.dev_dir, vf_index)
    return Device(
        address=fn.address,
        dev_type=dev_type,
        parent_addr=fn.physfn,
        vf_index=vf_index,
        link_type=_link_type(fn.fields),
        vf_admin_guids=admin,
        is_network=fn.is_network,
        **fn.fields,
    )
