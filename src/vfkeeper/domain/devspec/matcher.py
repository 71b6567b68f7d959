"""The compiled spec set and its host-bound matcher.

Matching evaluates all specs of the set at once with bitmasks: bit *i* of a mask says "spec *i*
still matches". Each key's answer depends on one small attribute of the device (a vendor ID, a
bus number, a parent address...), so it is computed once per distinct value and memoised; a
device then costs a handful of dict look-ups and ANDs whatever the number of specs, and the
first match is the lowest bit left. :meth:`HostMatcher.explain` walks the same predicates one by
one, so the fast path and the explanation cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from operator import attrgetter
from typing import Any

from vfkeeper.domain.devspec.device import DeviceView, HostView
from vfkeeper.domain.devspec.explain import Explanation, KeyVerdict, Match, SpecVerdict
from vfkeeper.domain.devspec.keys import BindContext
from vfkeeper.domain.devspec.predicates import AddressPredicate, Never, Predicate, ValuePredicate
from vfkeeper.domain.devspec.spec import CompiledSpec, SpecEntry, compile_entries

MaskFn = Callable[[DeviceView], int]


def _value_mask(attr: str, items: list[tuple[int, list[ValuePredicate]]], absent: int) -> MaskFn:
    memo: dict[Any, int] = {}
    get = attrgetter(attr)

    def mask(dev: DeviceView) -> int:
        value = get(dev)
        found = memo.get(value)
        if found is None:
            found = absent
            for bit, preds in items:
                if all(p.test(value) for p in preds):
                    found |= bit
            memo[value] = found
        return found

    return mask


def _address_mask(items: list[tuple[int, AddressPredicate]], absent: int) -> MaskFn:
    field_memos: list[dict[str, int]] = [{}, {}, {}, {}]
    parent_memo: dict[str | None, int] = {None: 0}

    def field_mask(pos: int, value: str) -> int:
        memo = field_memos[pos]
        found = memo.get(value)
        if found is None:
            found = 0
            for bit, pred in items:
                if pred.fields[pos].ok(value):
                    found |= bit
            memo[value] = found
        return found

    def parent_mask(parent: str | None) -> int:
        found = parent_memo.get(parent)
        if found is None:
            found = 0
            for bit, pred in items:
                if pred.parent_ok(parent):
                    found |= bit
            parent_memo[parent] = found
        return found

    def mask(dev: DeviceView) -> int:
        own = (field_mask(0, dev.domain) & field_mask(1, dev.bus) & field_mask(2, dev.slot)
               & field_mask(3, dev.func))
        return absent | own | parent_mask(dev.parent_addr)

    return mask


def _generic_mask(items: list[tuple[int, list[Predicate]]], absent: int) -> MaskFn:
    def mask(dev: DeviceView) -> int:
        found = absent
        for bit, preds in items:
            if all(p.accepts(dev) for p in preds):
                found |= bit
        return found

    return mask


class HostMatcher:
    """A spec set bound to one host. Build one per host inventory; it is cheap."""

    def __init__(self, specs: Sequence[CompiledSpec], host: HostView) -> None:
        self.specs = tuple(specs)
        self.host = host
        self.bound = [bind_spec(spec, host) for spec in self.specs]
        self._matches = [Match(s.index, s.tags) for s in self.specs]
        self._start, self._masks = self._compile()

    def _compile(self) -> tuple[int, list[MaskFn]]:
        full = (1 << len(self.specs)) - 1
        start = full
        values: dict[str, list[tuple[int, list[ValuePredicate]]]] = {}
        address: list[tuple[int, AddressPredicate]] = []
        generic: list[tuple[int, list[Predicate]]] = []
        for i, preds in enumerate(self.bound):
            bit = 1 << i
            if any(isinstance(p, Never) for p in preds):
                start &= ~bit
            address.extend((bit, p) for p in preds if isinstance(p, AddressPredicate))
            by_attr: dict[str, list[ValuePredicate]] = {}
            for p in preds:
                if isinstance(p, ValuePredicate):
                    by_attr.setdefault(p.attr, []).append(p)
            for attr, group in by_attr.items():
                values.setdefault(attr, []).append((bit, group))
            others = [p for p in preds
                      if not isinstance(p, AddressPredicate | ValuePredicate | Never)]
            if others:
                generic.append((bit, others))
        masks: list[MaskFn] = []
        if address:
            masks.append(_address_mask(address, full & ~_bits(address)))
        masks.extend(_value_mask(attr, items, full & ~_bits(items))
                     for attr, items in values.items())
        if generic:
            masks.append(_generic_mask(generic, full & ~_bits(generic)))
        return start, masks

    def first_index(self, dev: DeviceView) -> int:
        """Index of the first spec matching ``dev``, or -1."""
        found = self._start
        for mask in self._masks:
            found &= mask(dev)
            if not found:
                return -1
        return (found & -found).bit_length() - 1

    def match(self, dev: DeviceView) -> Match | None:
        index = self.first_index(dev)
        return self._matches[index] if index >= 0 else None

    def matches(self) -> Iterator[tuple[DeviceView, Match | None]]:
        """Every device of the host with its match, in inventory order."""
        for dev in self.host.devices:
            yield dev, self.match(dev)

    def explain(self, dev: DeviceView) -> Explanation:
        verdicts: list[SpecVerdict] = []
        winner: int | None = None
        for spec, preds in zip(self.specs, self.bound, strict=True):
            keys = tuple(KeyVerdict(p.key, p.accepts(dev), p.explain(dev)) for p in preds)
            matched = all(k.ok for k in keys)
            verdicts.append(SpecVerdict(spec.index, spec.source, spec.raw, matched, keys,
                                        winner if matched else None))
            if matched and winner is None:
                winner = spec.index
        match = self._matches[winner] if winner is not None else None
        return Explanation(dev.address, describe_device(dev), tuple(verdicts), match)


def bind_spec(spec: CompiledSpec, host: HostView) -> list[Predicate]:
    """The spec's predicates on this host; raises :class:`SpecHostError`."""
    ctx = BindContext(host, {k.name: k for k in spec.keys}, spec.index, spec.source)
    return [k.bind(ctx) for k in spec.keys]


def _bits(items: Sequence[tuple[int, Any]]) -> int:
    out = 0
    for bit, _ in items:
        out |= bit
    return out


def describe_device(dev: DeviceView) -> str:
    parts = [dev.dev_type, f"vendor_id {dev.vendor_id}", f"product_id {dev.product_id}"]
    if dev.parent_addr:
        parts.append(f"VF #{dev.vf_index} of PF {dev.parent_addr}")
    elif dev.sriov_pf:
        parts.append("SR-IOV PF")
    parts.append(f"driver {dev.driver or '-'}")
    parts.append(f"netdevs {', '.join(dev.netdevs) or '-'}")
    if dev.numa_node is not None:
        parts.append(f"NUMA node {dev.numa_node}")
    if dev.link_type:
        parts.append(dev.link_type)
    return ", ".join(parts)


class DeviceSpecSet:
    """An ordered list of compiled specs. Parse once; bind to each host you match against."""

    def __init__(self, specs: Sequence[CompiledSpec]) -> None:
        self.specs = tuple(specs)

    @classmethod
    def parse(cls, entries: Sequence[SpecEntry | str | Mapping[str, Any] | Sequence[Any]],
              *, extensions: bool = True, host: HostView | None = None) -> DeviceSpecSet:
        """Compile entries. ``extensions=False`` reads them exactly as Nova does (vfkeeper's
        extension keys are then plain tags); raises :class:`InvalidDeviceSpec`. With ``host``,
        each spec is also bound to that host as soon as it is parsed, so the first error
        raised (:class:`InvalidDeviceSpec` or :class:`SpecHostError`) is the one Nova's
        nova-compute would stop on."""
        if host is None:
            return cls(compile_entries(entries, extensions))

        def check(spec: CompiledSpec) -> None:
            bind_spec(spec, host)

        return cls(compile_entries(entries, extensions, check))

    def __len__(self) -> int:
        return len(self.specs)

    def __iter__(self) -> Iterator[CompiledSpec]:
        return iter(self.specs)

    def __add__(self, other: DeviceSpecSet) -> DeviceSpecSet:
        shifted = [replace(s, index=s.index + len(self.specs)) for s in other.specs]
        return DeviceSpecSet([*self.specs, *shifted])

    @property
    def warnings(self) -> list[tuple[int, str]]:
        return [(s.index, w) for s in self.specs for w in s.warnings]

    def bind(self, host: HostView) -> HostMatcher:
        """Resolve host-dependent parts (devnames, which addresses are SR-IOV PFs); raises
        :class:`SpecHostError` when a spec cannot be used on this host."""
        return HostMatcher(self.specs, host)


__all__ = ["DeviceSpecSet", "HostMatcher", "describe_device"]
