"""The rules a host inventory must meet beyond its types (``docs/inventory-schema.md``).

:func:`problems` lists every way an inventory breaks them, each with the pydantic-style
location of the bad value (``("devices", 3, "netdevs", 0, "name")``) and what is wrong. The
controller refuses an inventory with any problem (``PUT /v1/hosts/{name}/inventory`` → 422
listing them); discovery runs the same function on what it found and leaves out or nulls each
bad piece with a warning, so that an agent never sends what the controller refuses.

Per value: PCI addresses in the kernel's canonical form, ids in lowercase hex, NUMA nodes and
VF indexes within what Linux can have, netdev names as the kernel allows them (and without
quotes), GUIDs and PKeys in the inventory's forms, no text a database cannot store. Across the
document: each address once; a VF names its PF (``parent_addr``), which is a PF of the same
inventory; a PF's VFs have distinct indexes; only VFs have a parent or an index.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Final

from vfkeeper.domain.inventory import Device, HostInventory, IbDevice, Netdev
from vfkeeper.domain.text import INT32_MAX, Loc, Problem, json_problems, text_problem

HOSTNAME_MAX: Final = 255
"""As ``hosts.name`` holds it."""
MAX_NUMA_NODE: Final = 1023
"""Linux has at most ``MAX_NUMNODES`` = 1 << ``CONFIG_NODES_SHIFT`` (at most 10) nodes."""
MAX_VFS: Final = 0xFFFF
"""``sriov_totalvfs`` is the 16-bit TotalVFs field of the SR-IOV capability."""
MAX_VF_INDEX: Final = MAX_VFS - 1
IFNAMSIZ: Final = 16
"""The kernel's interface-name buffer: at most 15 bytes and the terminating NUL."""
PCI_ADDRESS: Final = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[01][0-9a-f]\.[0-7]")
PCI_ADDRESS_FORM: Final = ("a PCI address dddd:bb:ss.f in lowercase hex, slot at most 1f and "
                           "function at most 7 (0000:03:00.1)")

Check = Callable[[Any], str | None]


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _pattern(regex: str, expected: str) -> Check:
    compiled = re.compile(regex)

    def check(value: Any) -> str | None:
        if isinstance(value, str) and compiled.fullmatch(value):
            return None
        return f"{_shown(value)} is not {expected}"

    return check


def _between(low: int, high: int, what: str = "") -> Check:
    def check(value: Any) -> str | None:
        if low <= value <= high:
            return None
        return f"{value} is outside {low}-{high}{what}"

    return check


def _text(max_length: int) -> Check:
    def check(value: Any) -> str | None:
        if len(value) > max_length:
            return f"is {len(value)} characters long, more than {max_length}"
        return text_problem(value) or (None if value else "is empty")

    return check


def netdev_name_problem(name: str) -> str | None:
    """Why ``name`` is not an interface name the kernel (``dev_valid_name``) allows, or one of
    those vfkeeper refuses anyway (with a quote or a control character), or ``None``."""
    problem = text_problem(name)
    if problem:
        return problem
    size = len(name.encode())
    if not 0 < size < IFNAMSIZ:
        return f"is {size} bytes long; an interface name has 1 to {IFNAMSIZ - 1}"
    if name in (".", ".."):
        return f"{name!r} cannot be an interface name"
    bad = sorted({ch for ch in name if ch in "/:'\"`\\" or ch.isspace()})
    if bad:
        return f"{_shown(name)} contains {' '.join(map(repr, bad))}, which an interface name " \
               "cannot (the kernel refuses '/', ':' and white space; vfkeeper quotes too)"
    return None


def _netdev_name(value: Any) -> str | None:
    return netdev_name_problem(value)


_PCI: Final = _pattern(PCI_ADDRESS.pattern, PCI_ADDRESS_FORM)
_HEX4: Final = _pattern(r"[0-9a-f]{4}", "4 lowercase hex digits (15b3)")
_GUID: Final = _pattern(r"0x[0-9a-f]{16}", "0x and 16 lowercase hex digits (0x0002c90300a1b2c3)")
_PKEY: Final = _pattern(r"0x[0-9a-f]{4}", "0x and 4 lowercase hex digits (0xffff)")
_COUNT: Final = _between(0, INT32_MAX)
_SHORT: Final = _text(64)

DEVICE: Final[Mapping[str, Check]] = {
    "address": _PCI, "parent_addr": _PCI,
    "vendor_id": _HEX4, "product_id": _HEX4, "subsystem_vendor_id": _HEX4,
    "subsystem_device_id": _HEX4, "sriov_vf_device": _HEX4,
    "class_code": _pattern(r"0x[0-9a-f]{6}", "0x and 6 lowercase hex digits (0x020000)"),
    "vf_index": _between(0, MAX_VF_INDEX), "sriov_totalvfs": _between(0, MAX_VFS),
    "sriov_numvfs": _between(0, MAX_VFS),
    "numa_node": _between(0, MAX_NUMA_NODE, " (null means no NUMA affinity)"),
    "iommu_group": _COUNT, "driver": _SHORT, "bus_info": _SHORT, "vpd_serial": _text(255),
}
NETDEV: Final[Mapping[str, Check]] = {
    "name": _netdev_name,
    "mac": _pattern(r"[0-9a-f]{2}(?::[0-9a-f]{2}){0,31}", "colon-separated lowercase hex bytes"),
    "mtu": _COUNT, "operstate": _SHORT, "speed_mbps": _COUNT, "dev_port": _COUNT,
}
IB_DEVICE: Final[Mapping[str, Check]] = {"name": _SHORT, "node_guid": _GUID,
                                         "sys_image_guid": _GUID}
IB_PORT: Final[Mapping[str, Check]] = {
    "number": _between(1, 255), "state": _SHORT, "phys_state": _SHORT, "link_layer": _SHORT,
    "rate": _SHORT, "port_guid": _GUID, "lid": _between(0, 0xFFFF),
}
VF_ADMIN_GUIDS: Final[Mapping[str, Check]] = {"node_guid": _GUID, "port_guid": _GUID,
                                              "policy": _SHORT}


def _fields(obj: Any, rules: Mapping[str, Check], loc: Loc) -> Iterator[Problem]:
    for name, check in rules.items():
        value = getattr(obj, name)
        if value is not None:
            problem = check(value)
            if problem:
                yield Problem((*loc, name), problem)


def _infiniband(ib: IbDevice, loc: Loc) -> Iterator[Problem]:
    yield from _fields(ib, IB_DEVICE, loc)
    for p, port in enumerate(ib.ports):
        yield from _fields(port, IB_PORT, (*loc, "ports", p))
        for k, pkey in enumerate(port.pkeys):
            problem = _PKEY(pkey)
            if problem:
                yield Problem((*loc, "ports", p, "pkeys", k), problem)


def _netdevs(netdevs: tuple[Netdev, ...], loc: Loc) -> Iterator[Problem]:
    for n, netdev in enumerate(netdevs):
        yield from _fields(netdev, NETDEV, (*loc, "netdevs", n))


def _device(device: Device, loc: Loc) -> Iterator[Problem]:
    yield from _fields(device, DEVICE, loc)
    yield from _netdevs(device.netdevs, loc)
    if device.infiniband is not None:
        yield from _infiniband(device.infiniband, (*loc, "infiniband"))
    if device.vf_admin_guids is not None:
        yield from _fields(device.vf_admin_guids, VF_ADMIN_GUIDS, (*loc, "vf_admin_guids"))


def _family(device: Device, loc: Loc, by_address: Mapping[str, Device]) -> str | None:
    """What is wrong with the device's place among the PFs and VFs (at ``loc`` +
    ``parent_addr``), or ``None``."""
    parent = device.parent_addr
    if device.dev_type != "type-VF":
        return None if parent is None else \
            f"only a VF has a parent_addr, and this is a {device.dev_type}; leave it null"
    if parent is None:
        return "a VF must name its PF; a VF whose PF is unknown cannot be handed out"
    pf = by_address.get(parent)
    if pf is None:
        return f"names PF {parent}, which is not in this inventory; send the PF with its VFs"
    if pf.dev_type != "type-PF":
        return f"names {parent}, which is a {pf.dev_type}, not a PF"
    return None


def _document(inventory: HostInventory) -> Iterator[Problem]:
    """The rules across devices: each address once, a VF's PF in the inventory, VF indexes
    unique per PF, only VFs with an index."""
    by_address = {d.address: d for d in reversed(inventory.devices)}  # the first one wins
    first: dict[str, int] = {}
    indexes: dict[tuple[str, int], int] = {}
    for i, device in enumerate(inventory.devices):
        loc: Loc = ("devices", i)
        other = first.setdefault(device.address, i)
        if other != i:
            yield Problem((*loc, "address"), f"{device.address} is also devices[{other}]; "
                          "each PCI function is listed once")
        problem = _family(device, loc, by_address)
        if problem:
            yield Problem((*loc, "parent_addr"), problem)
        if device.vf_index is not None and device.dev_type != "type-VF":
            yield Problem((*loc, "vf_index"), "only a VF has a vf_index; leave it null")
        elif device.vf_index is not None and device.parent_addr is not None:
            other = indexes.setdefault((device.parent_addr, device.vf_index), i)
            if other != i:
                yield Problem((*loc, "vf_index"), f"VF #{device.vf_index} of PF "
                              f"{device.parent_addr} is also devices[{other}]")


def problems(inventory: HostInventory, *, limit: int = 50) -> list[Problem]:
    """Every way ``inventory`` breaks the rules (at most ``limit``), in document order."""
    found = json_problems(inventory.model_dump(mode="json"), limit=limit)
    hostname = _text(HOSTNAME_MAX)(inventory.hostname)
    if hostname:
        found.append(Problem(("hostname",), hostname))
    for i, device in enumerate(inventory.devices):
        found.extend(_device(device, ("devices", i)))
    found.extend(_document(inventory))
    unique = {p.loc: p for p in reversed(found)}  # one problem per value: the first found
    return sorted(unique.values(), key=_order)[:limit]


def _order(problem: Problem) -> list[str]:
    """Document order: devices[2] before devices[10]."""
    return [f"{x:09d}" if isinstance(x, int) else x for x in problem.loc]
