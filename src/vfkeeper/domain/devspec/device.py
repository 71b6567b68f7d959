"""The device view that specs match against, and the host view that binds specs to one host.

A :class:`DeviceView` is built once per device (from the host inventory, or from a Nova-style
device dict) and holds every attribute a spec key looks at, already normalised, so that matching
never parses strings. A :class:`HostView` indexes one host's devices by address and by netdev
name: everything Nova would read from the live ``/sys`` of the compute host (which netdev
belongs to which function, which function is an SR-IOV PF) comes from here instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from vfkeeper.domain.devspec.errors import InvalidDeviceRecord
from vfkeeper.domain.inventory import Device, HostInventory

_ADDRESS = re.compile(r"^([0-9a-fA-F]{4}):([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])$")
_HEX_ID = re.compile(r"^(?:0[xX])?([0-9a-fA-F]{1,4})$")
_DEV_TYPES = ("type-PF", "type-VF", "type-PCI")
_LINK_TYPES = ("ethernet", "infiniband")
_PKEY_PARTITION = 0x7FFF


class DeviceView(NamedTuple):
    """One PCI function as the matcher sees it (immutable). Addresses are canonical
    ``dddd:bb:ss.f``. Build it with :meth:`build`, which fills the derived fields."""

    address: str
    vendor_id: str | None
    product_id: str | None
    dev_type: str
    parent_addr: str | None
    vf_index: int | None
    driver: str | None
    numa_node: int | None
    netdevs: tuple[str, ...]
    link_type: str | None
    pkeys: frozenset[int]
    """Partition numbers (PKey without the full-membership bit) of the device's IB ports."""
    card_serial_number: str | None
    sriov_pf: bool
    """True when the function can have VFs (``sriov_totalvfs > 0``): what makes Nova expand
    a spec naming it to its VFs."""
    domain: str
    bus: str
    slot: str
    func: str
    family: tuple[str, int | None]
    """``(PF address, VF index)`` for a VF, ``(own address, None)`` otherwise."""

    @classmethod
    def build(
        cls, address: str, vendor_id: str | None, product_id: str | None, dev_type: str, *,
        parent_addr: str | None = None, vf_index: int | None = None, driver: str | None = None,
        numa_node: int | None = None, netdevs: tuple[str, ...] = (),
        link_type: str | None = None, pkeys: frozenset[int] = frozenset(),
        card_serial_number: str | None = None, sriov_pf: bool = False,
    ) -> DeviceView:
        domain, bus, slot, func = split_address(address)
        family = (parent_addr, vf_index) if parent_addr else (address, None)
        return cls(address, vendor_id, product_id, dev_type, parent_addr, vf_index, driver,
                   numa_node, netdevs, link_type, pkeys, card_serial_number, sriov_pf,
                   domain, bus, slot, func, family)


def split_address(address: str) -> tuple[str, str, str, str]:
    """``dddd:bb:ss.f`` → its four fields (the address must be canonical)."""
    return address[:4], address[5:7], address[8:10], address[11:]


@lru_cache(maxsize=4096)
def canonical_address(text: str) -> str | None:
    """A full PCI address in canonical (lowercase) form, or ``None`` if ``text`` is not one."""
    m = _ADDRESS.match(text.strip())
    if not m or int(m.group(3), 16) > 0x1F:
        return None
    return text.strip().lower()


def view_of(dev: Device) -> DeviceView:
    """The matcher's view of one inventory device."""
    pkeys: set[int] = set()
    if dev.infiniband is not None:
        for port in dev.infiniband.ports:
            pkeys.update(int(p, 16) & _PKEY_PARTITION for p in port.pkeys)
    if dev.sriov_totalvfs is not None:
        sriov_pf = dev.sriov_totalvfs > 0
    else:
        sriov_pf = dev.dev_type == "type-PF"
    return DeviceView.build(
        dev.address, dev.vendor_id, dev.product_id, dev.dev_type,
        parent_addr=dev.parent_addr,
        vf_index=dev.vf_index,
        driver=dev.driver,
        numa_node=dev.numa_node,
        netdevs=tuple(n.name for n in dev.netdevs),
        link_type=dev.link_type,
        pkeys=frozenset(pkeys),
        sriov_pf=sriov_pf,
    )


@lru_cache(maxsize=1024)
def _hex4(text: str) -> str | None:
    m = _HEX_ID.match(text)
    return f"{int(m.group(1), 16):04x}" if m else None


class _Record:
    """Reads one Nova-style device dict, raising :class:`InvalidDeviceRecord` on bad fields."""

    def __init__(self, index: int, raw: Mapping[str, Any]) -> None:
        self.index = index
        self.raw = raw

    def fail(self, name: str, problem: str) -> InvalidDeviceRecord:
        return InvalidDeviceRecord(
            index=self.index, field=name, value=self.raw.get(name), problem=problem
        )

    def address(self, name: str, *, required: bool) -> str | None:
        value = self.raw.get(name)
        if value is None and not required:
            return None
        canon = canonical_address(value) if isinstance(value, str) else None
        if canon is None:
            raise self.fail(name, "expected a full PCI address 'dddd:bb:ss.f' (slot <= 1f)")
        return canon

    def hex_id(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None:
            return None
        canon = _hex4(value) if isinstance(value, str) else None
        if canon is None:
            raise self.fail(name, "expected up to 4 hex digits such as '8086' or '0x8086'")
        return canon

    def optional_int(self, name: str) -> int | None:
        value = self.raw.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < -1:
            raise self.fail(name, "expected a whole number")
        return None if value == -1 else value

    def optional_str(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is not None and not isinstance(value, str):
            raise self.fail(name, "expected a string")
        return value

    def choice(self, name: str, allowed: Sequence[str], default: str | None) -> str | None:
        value = self.raw.get(name, default)
        if value is not None and value not in allowed:
            raise self.fail(name, f"expected one of {', '.join(allowed)}")
        return value  # type: ignore[no-any-return]

    def names(self) -> tuple[str, ...]:
        value = self.raw.get("netdevs", self.raw.get("ifname", self.raw.get("devname")))
        if value is None:
            return ()
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(x, str) and x for x in items):
            raise self.fail("netdevs", "expected a netdev name or a list of netdev names")
        return tuple(items)

    def pkeys(self) -> frozenset[int]:
        value = self.raw.get("pkeys")
        if value is None or value == []:
            return frozenset()
        ok = isinstance(value, list) and all(isinstance(p, str) for p in value)
        try:
            parsed = [int(p, 16) for p in value] if ok else []
        except ValueError:
            ok = False
        if not ok or any(not 0 <= p <= 0xFFFF for p in parsed):
            raise self.fail("pkeys", "expected a list of 16-bit hex PKeys such as '0x8001'")
        return frozenset(p & _PKEY_PARTITION for p in parsed)

    def serial(self) -> str | None:
        caps = self.raw.get("capabilities")
        vpd = caps.get("vpd") if isinstance(caps, Mapping) else None
        nested = vpd.get("card_serial_number") if isinstance(vpd, Mapping) else None
        value = self.raw.get("card_serial_number", nested)
        return None if value is None else str(value)


def view_of_record(raw: Mapping[str, Any], index: int = 0) -> DeviceView:
    """The matcher's view of a Nova-style device dict (what libvirt reports to Nova):
    ``address``, ``vendor_id``, ``product_id``, ``dev_type``, ``parent_addr``; optionally
    ``vf_index``, ``driver``, ``numa_node``, ``netdevs`` (or ``ifname``/``devname``),
    ``link_type``, ``pkeys``, ``sriov_totalvfs``, ``card_serial_number`` (or
    ``capabilities.vpd.card_serial_number``). IDs are normalised to 4 lowercase hex digits."""
    if not isinstance(raw, Mapping):
        raise InvalidDeviceRecord(index=index, field="", value=raw, problem="expected an object")
    rec = _Record(index, raw)
    dev_type = rec.choice("dev_type", _DEV_TYPES, "type-PCI") or "type-PCI"
    parent = rec.address("parent_addr", required=False)
    totalvfs = rec.optional_int("sriov_totalvfs")
    return DeviceView.build(
        rec.address("address", required=True) or "", rec.hex_id("vendor_id"),
        rec.hex_id("product_id"), dev_type,
        parent_addr=parent,
        vf_index=rec.optional_int("vf_index"),
        driver=rec.optional_str("driver"),
        numa_node=rec.optional_int("numa_node"),
        netdevs=rec.names(),
        link_type=rec.choice("link_type", _LINK_TYPES, None),
        pkeys=rec.pkeys(),
        card_serial_number=rec.serial(),
        sriov_pf=(totalvfs > 0) if totalvfs is not None else dev_type == "type-PF",
    )


class HostView:
    """One host's devices, indexed for spec binding and matching."""

    def __init__(self, devices: Iterable[DeviceView], hostname: str = "") -> None:
        self.hostname = hostname
        self.devices: tuple[DeviceView, ...] = tuple(devices)
        self.by_address: dict[str, DeviceView] = {}
        self.by_netdev: dict[str, DeviceView] = {}
        for dev in self.devices:
            self.by_address[dev.address] = dev
            for name in dev.netdevs:
                self.by_netdev.setdefault(name, dev)

    @classmethod
    def from_inventory(cls, inventory: HostInventory) -> HostView:
        return cls((view_of(d) for d in inventory.devices), inventory.hostname)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], hostname: str = "") -> HostView:
        return cls((view_of_record(r, i) for i, r in enumerate(records)), hostname)

    def is_sriov_pf(self, address: str) -> bool:
        dev = self.by_address.get(address)
        return dev is not None and dev.sriov_pf

    def vf_product_id(self, pf_address: str) -> str | None:
        """The product ID the PF's VFs show (Nova reads ``sriov_vf_device``; the inventory
        shows the VFs themselves). ``None`` when the PF has no VFs on this host."""
        for dev in self.devices:
            if dev.parent_addr == pf_address and dev.product_id:
                return dev.product_id
        return None
