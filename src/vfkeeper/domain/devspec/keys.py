"""Spec keys: one small class per key, found through :data:`REGISTRY`.

A key class parses its value once (raising :class:`ValueProblem` with what is allowed) and
binds to a host, giving a :class:`Predicate`. Adding a key is adding one class here and one
line to the registry. Nova's keys come first; the extension keys (``extension = True``) follow
the selectors of the Kubernetes SR-IOV device plugin and are only active in vfkeeper's own
dialect — Nova treats those names as plain tags, and so does vfkeeper when reading nova.conf.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from vfkeeper.domain.devspec.device import DeviceView, HostView, canonical_address, split_address
from vfkeeper.domain.devspec.errors import SpecHostError
from vfkeeper.domain.devspec.predicates import (
    AddressPredicate,
    Custom,
    Equals,
    Never,
    OneOf,
    Predicate,
)
from vfkeeper.domain.devspec.values import (
    ANY,
    ExactField,
    Fields,
    ValueProblem,
    hex_id,
    lenient_bool,
    parse_glob,
    parse_regex,
)


@dataclass(frozen=True)
class BindContext:
    """What a key may look at when it binds: the host, and the other keys of its spec."""

    host: HostView
    siblings: Mapping[str, SpecKey]
    spec_index: int
    source: str


class SpecKey(ABC):
    """A parsed spec key."""

    name: ClassVar[str]
    extension: ClassVar[bool] = False
    stays_tag: ClassVar[bool] = False
    """The value is also one of the device's tags (Nova keeps it among the tags)."""

    shown: str = ""

    @classmethod
    @abstractmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        """The key's value → a key, or ``None`` when the value asks for nothing."""

    @abstractmethod
    def bind(self, ctx: BindContext) -> Predicate: ...


# --- Nova's keys ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VendorIdKey(SpecKey):
    name: ClassVar[str] = "vendor_id"
    wanted: str
    shown: str = ""

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        wanted = hex_id(value, strip=True, what="vendor_id")
        return None if wanted == ANY else cls(wanted, f"vendor_id {wanted}")

    def bind(self, ctx: BindContext) -> Predicate:
        return Equals(self.name, "vendor_id", self.wanted)


@dataclass(frozen=True)
class ProductIdKey(SpecKey):
    name: ClassVar[str] = "product_id"
    wanted: str
    shown: str = ""

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        wanted = hex_id(value, strip=False, what="product_id")
        return None if wanted == ANY else cls(wanted, f"product_id {wanted}")

    def bind(self, ctx: BindContext) -> Predicate:
        return Equals(self.name, "product_id", self.wanted)


@dataclass(frozen=True)
class AddressKey(SpecKey):
    """``address``: a glob string or an object of regular expressions."""

    name: ClassVar[str] = "address"
    fields: Fields
    single: str | None
    shown: str = ""

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        if not value:
            if value is not None and value != "":
                warn(f"address {value!r} is empty, so it matches every address (as in Nova)")
            return None
        if isinstance(value, str):
            fields, single = parse_glob(value)
            return cls(fields, single, f"address '{value}'")
        if isinstance(value, dict):
            unknown = sorted(set(value) - {"domain", "bus", "slot", "function"})
            if unknown:
                warn(f"address keys {unknown} are ignored (as in Nova); "
                     "the keys are domain, bus, slot and function")
            fields, single = parse_regex(value)
            return cls(fields, single, f"address regex {value}")
        raise ValueProblem(
            f"expected a string or an object, got {type(value).__name__} {value!r}",
            "Use a glob such as '0000:3b:00.*' or an object of regular expressions such as "
            '{"bus": "3b", "function": "[1-7]"}.',
            nova_error="PciDeviceWrongAddressFormat",
        )

    def bind(self, ctx: BindContext) -> Predicate:
        expand = self.single is not None and ctx.host.is_sriov_pf(self.single)
        return AddressPredicate(self.name, self.fields, expand, self.shown)


@dataclass(frozen=True)
class DevnameKey(SpecKey):
    """``devname``: the function that owns this netdev on the host; a PF includes its VFs."""

    name: ClassVar[str] = "devname"
    netdev: str
    shown: str = ""

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        if not value:
            return None
        if not isinstance(value, str):
            warn(f"devname {value!r} is not a string; it is read as '{value}' (as in Nova)")
        return cls(str(value), f"devname '{value}'")

    def bind(self, ctx: BindContext) -> Predicate:
        dev = ctx.host.by_netdev.get(self.netdev)
        if dev is None:
            return Never(self.name, f"no netdev '{self.netdev}' on this host, so the spec matches "
                         "nothing (Nova ignores it too); a renamed interface, or a VF bound to "
                         "vfio-pci, has no such netdev — use an address instead")
        fields: Fields = tuple(ExactField(f) for f in split_address(dev.address))  # type: ignore[assignment]
        return AddressPredicate(self.name, fields, dev.sriov_pf,
                                f"devname '{self.netdev}' (= {dev.address})")


@dataclass(frozen=True)
class RemoteManagedKey(SpecKey):
    """``remote_managed``: true means only VFs whose card shows a VPD serial number match."""

    name: ClassVar[str] = "remote_managed"
    stays_tag: ClassVar[bool] = True
    shown: str = "remote_managed true"

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        return cls() if lenient_bool(value) else None

    def bind(self, ctx: BindContext) -> Predicate:
        self._check_pf(ctx)
        return Custom(self.name, "card_serial_number", bool,
                      lambda d: f"needs a card serial number in the VPD, device has "
                                f"{d.card_serial_number!r}")

    def _fail(self, ctx: BindContext, problem: str, fix: str, nova_error: str) -> SpecHostError:
        return SpecHostError(spec_index=ctx.spec_index, source=ctx.source, key=self.name,
                             problem=problem, fix=fix, nova_error=nova_error)

    def _check_pf(self, ctx: BindContext) -> None:
        where = ctx.siblings.get("devname") or ctx.siblings.get("address")
        if isinstance(where, DevnameKey):
            self._check_devname(ctx, where)
        elif isinstance(where, AddressKey) and where.single and ctx.host.is_sriov_pf(where.single):
            raise self._fail(
                ctx, f"remote_managed=true with an address naming PF {where.single}",
                "Nova cannot check this form and fails (PciDeviceNotFoundById); name the VFs "
                "instead (e.g. vendor_id + the VF product_id), or use devname with the VF "
                "product_id", "PciDeviceNotFoundById")

    def _check_devname(self, ctx: BindContext, key: DevnameKey) -> None:
        dev = ctx.host.by_netdev.get(key.netdev)
        if dev is None:
            raise self._fail(
                ctx, f"remote_managed=true but there is no netdev '{key.netdev}' on this host",
                "Fix the devname, or name the devices by address",
                "PciDeviceRemoteManagedNotPresent")
        if not dev.sriov_pf:
            return
        vendor = getattr(ctx.siblings.get("vendor_id"), "wanted", ANY)
        product = getattr(ctx.siblings.get("product_id"), "wanted", ANY)
        vf_product = ctx.host.vf_product_id(dev.address)
        vendor_ok = vendor in (ANY, dev.vendor_id)
        if vf_product is not None and product == vf_product and vendor_ok:
            return
        if product in (ANY, dev.product_id) and vendor_ok:
            raise self._fail(
                ctx, f"remote_managed=true on PF {dev.address} ({key.netdev}): PFs cannot be "
                "remote-managed", f"Add \"product_id\": \"{vf_product or '<VF product id>'}\" "
                "so that the spec names the PF's VFs", "PciDeviceInvalidPFRemoteManaged")
        if vf_product is None:
            return  # the PF shows no VFs here, so the VF product ID cannot be checked
        raise self._fail(
            ctx, f"vendor_id {vendor} / product_id {product} are not the VF IDs of PF "
            f"{dev.address} ({dev.vendor_id}:{vf_product})",
            "Use the VF's product_id", "PciConfigInvalidSpec")


# --- extension keys (vfkeeper's own dialect) -------------------------------------------------


def _as_list(value: Any, what: str, example: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise ValueProblem(f"{what} is an empty list", f"Give at least one value, e.g. {example}.")
    return items


def _strings(value: Any, what: str, example: str) -> list[str]:
    items = _as_list(value, what, example)
    if not all(isinstance(x, str) and x.strip() for x in items):
        raise ValueProblem(f"{what} must be a string or a list of non-empty strings",
                           f"For example {example}.")
    return [x.strip() for x in items]


def parse_vf_ranges(text: str, what: str) -> frozenset[int]:
    """``0-3,7`` → {0, 1, 2, 3, 7}."""
    found: set[int] = set()
    allowed = "VF ranges are comma-separated indexes or a-b ranges, e.g. 'ens1f0#0-3,7'."
    for part in text.split(","):
        lo_text, dash, hi_text = part.strip().partition("-")
        try:
            lo = int(lo_text)
            hi = int(hi_text) if dash else lo
        except ValueError:
            raise ValueProblem(f"{what}: '{part}' is not a VF index or range", allowed) from None
        if lo < 0 or hi < lo or hi - lo > 65535:
            raise ValueProblem(f"{what}: range '{part}' is empty or negative", allowed)
        found.update(range(lo, hi + 1))
    return frozenset(found)


def _family_test(targets: Mapping[str, frozenset[int] | None]) -> Callable[[Any], bool]:
    def test(family: tuple[str, int | None]) -> bool:
        if family[0] not in targets:
            return False
        ranges = targets[family[0]]
        return ranges is None or family[1] in ranges

    return test


@dataclass(frozen=True)
class _FamilyKey(SpecKey):
    """Shared parsing of ``NAME`` / ``NAME#ranges`` selectors of a PF and its VFs."""

    extension: ClassVar[bool] = True
    selectors: tuple[tuple[str, frozenset[int] | None], ...]
    shown: str = ""

    @classmethod
    def _selectors(cls, value: Any, example: str) -> tuple[tuple[str, frozenset[int] | None], ...]:
        out: list[tuple[str, frozenset[int] | None]] = []
        for item in _strings(value, cls.name, example):
            head, hash_, ranges = item.partition("#")
            out.append((head.strip(), parse_vf_ranges(ranges, item) if hash_ else None))
        return tuple(out)

    def _predicate(self, resolved: Mapping[str, frozenset[int] | None], missing: list[str],
                   ) -> Predicate:
        shown = self.shown

        def describe(dev: DeviceView) -> str:
            pf, idx = dev.family
            note = f"; not on this host: {', '.join(missing)}" if missing else ""
            what = f"VF #{idx} of PF {pf}" if dev.parent_addr else f"function {pf}"
            return f"{shown}; device is {what}{note}"

        return Custom(self.name, "family", _family_test(resolved), describe)

    @staticmethod
    def _merge(into: dict[str, frozenset[int] | None], addr: str,
               ranges: frozenset[int] | None) -> None:
        old = into.get(addr, frozenset())
        into[addr] = None if ranges is None or old is None else old | ranges


@dataclass(frozen=True)
class PfNamesKey(_FamilyKey):
    """``pf_names``: PFs by netdev name, with all their VFs or ``#``-selected ones."""

    name: ClassVar[str] = "pf_names"

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        sel = cls._selectors(value, '["ens1f0", "ens1f1#0-3,7"]')
        return cls(sel, f"pf_names {[n + ('#…' if r else '') for n, r in sel]}")

    def bind(self, ctx: BindContext) -> Predicate:
        resolved: dict[str, frozenset[int] | None] = {}
        missing: list[str] = []
        for name, ranges in self.selectors:
            dev = ctx.host.by_netdev.get(name)
            if dev is None:
                missing.append(name)
            else:
                self._merge(resolved, dev.address, ranges)
        return self._predicate(resolved, missing)


@dataclass(frozen=True)
class RootDevicesKey(_FamilyKey):
    """``root_devices``: PFs by PCI address, with all their VFs or ``#``-selected ones."""

    name: ClassVar[str] = "root_devices"

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        sel = cls._selectors(value, '["0000:3b:00.0#0-7"]')
        out = []
        for addr, ranges in sel:
            canon = canonical_address(addr)
            if canon is None:
                raise ValueProblem(f"'{addr}' is not a full PCI address",
                                   "Use 'dddd:bb:ss.f', optionally with '#ranges', e.g. "
                                   "'0000:3b:00.0#0-7'.")
            out.append((canon, ranges))
        return cls(tuple(out), f"root_devices {[a for a, _ in out]}")

    def bind(self, ctx: BindContext) -> Predicate:
        resolved: dict[str, frozenset[int] | None] = {}
        missing = [a for a, _ in self.selectors if a not in ctx.host.by_address]
        for addr, ranges in self.selectors:
            self._merge(resolved, addr, ranges)
        return self._predicate(resolved, missing)


@dataclass(frozen=True)
class DriversKey(SpecKey):
    name: ClassVar[str] = "drivers"
    extension: ClassVar[bool] = True
    drivers: frozenset[str] = field(default_factory=frozenset)
    shown: str = ""

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        items = _strings(value, cls.name, '["mlx5_core", "iavf"]')
        return cls(frozenset(items), f"drivers {sorted(items)}")

    def bind(self, ctx: BindContext) -> Predicate:
        return OneOf(self.name, "driver", frozenset(self.drivers), str(sorted(self.drivers)))


@dataclass(frozen=True)
class LinkTypesKey(SpecKey):
    name: ClassVar[str] = "link_types"
    extension: ClassVar[bool] = True
    types: frozenset[str] = field(default_factory=frozenset)
    shown: str = ""

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        items = _strings(value, cls.name, '["infiniband"]')
        bad = [x for x in items if x not in ("ethernet", "infiniband")]
        if bad:
            raise ValueProblem(f"unknown link type(s) {bad}",
                               "The link types are 'ethernet' and 'infiniband'.")
        return cls(frozenset(items), f"link_types {sorted(items)}")

    def bind(self, ctx: BindContext) -> Predicate:
        return OneOf(self.name, "link_type", frozenset(self.types), str(sorted(self.types)))


@dataclass(frozen=True)
class NumaNodesKey(SpecKey):
    name: ClassVar[str] = "numa_nodes"
    extension: ClassVar[bool] = True
    nodes: frozenset[int] = field(default_factory=frozenset)
    shown: str = ""

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        items = _as_list(value, cls.name, "[0, 1]")
        if not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in items):
            raise ValueProblem("numa_nodes must be a number or a list of numbers >= 0",
                               "For example [0] or [0, 1].")
        return cls(frozenset(items), f"numa_nodes {sorted(items)}")

    def bind(self, ctx: BindContext) -> Predicate:
        return OneOf(self.name, "numa_node", frozenset(self.nodes), str(sorted(self.nodes)))


@dataclass(frozen=True)
class PkeysKey(SpecKey):
    """``pkeys``: InfiniBand functions whose port PKey table holds one of these partitions.
    The full-membership bit is ignored: ``0x8001`` and ``0x0001`` are partition 1."""

    name: ClassVar[str] = "pkeys"
    extension: ClassVar[bool] = True
    partitions: frozenset[int] = field(default_factory=frozenset)
    shown: str = ""

    @classmethod
    def parse(cls, value: Any, warn: Callable[[str], None]) -> SpecKey | None:
        parts: set[int] = set()
        for item in _as_list(value, cls.name, '["0x8001"]'):
            try:
                number = int(item, 16) if isinstance(item, str) else -1
            except ValueError:
                number = -1
            if not 0 <= number <= 0xFFFF:
                raise ValueProblem(f"'{item}' is not a 16-bit hex PKey",
                                   "Write PKeys as hex strings, e.g. \"0x8001\" or \"0x7fff\".")
            parts.add(number & 0x7FFF)
        return cls(frozenset(parts), f"pkeys {[f'0x{p:04x}' for p in sorted(parts)]}")

    def bind(self, ctx: BindContext) -> Predicate:
        wanted = self.partitions
        shown = self.shown
        return Custom(self.name, "pkeys", lambda ps: bool(wanted & ps),
                      lambda d: f"{shown}, device partitions "
                                f"{[f'0x{p:04x}' for p in sorted(d.pkeys)] or 'none'}")


REGISTRY: dict[str, type[SpecKey]] = {
    cls.name: cls
    for cls in (
        AddressKey, DevnameKey, VendorIdKey, ProductIdKey, DriversKey, PfNamesKey,
        RootDevicesKey, LinkTypesKey, PkeysKey, NumaNodesKey, RemoteManagedKey,
    )
}
"""Every key in evaluation (and explanation) order."""

NOVA_POPPED = ("vendor_id", "product_id", "devname", "address")
"""The keys Nova takes out of a spec; everything else is a tag."""
