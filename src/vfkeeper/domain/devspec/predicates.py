"""Bound predicates: what one spec key asks of a device on one particular host.

Two shapes let the matcher evaluate all specs of a set at once (see ``matcher.py``):

* :class:`ValuePredicate` — the answer depends on one attribute of the device (``vendor_id``,
  ``driver``, ``family``...). The matcher memoises answers per attribute value.
* :class:`AddressPredicate` — Nova's address test: the device's own address fields match, or
  (when the spec names an SR-IOV PF) its parent's address does.

Any other :class:`Predicate` works too; it is simply evaluated device by device.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from vfkeeper.domain.devspec.device import DeviceView, split_address
from vfkeeper.domain.devspec.values import Fields, fields_match


class Predicate(ABC):
    """A bound test of one spec key."""

    key: str

    @abstractmethod
    def accepts(self, dev: DeviceView) -> bool: ...

    @abstractmethod
    def explain(self, dev: DeviceView) -> str:
        """One line: what the key wants and what the device has."""


class ValuePredicate(Predicate):
    """A test of one device attribute; ``attr`` names it."""

    attr: str

    @abstractmethod
    def test(self, value: Any) -> bool: ...

    def accepts(self, dev: DeviceView) -> bool:
        return self.test(getattr(dev, self.attr))


@dataclass(frozen=True, slots=True)
class Never(Predicate):
    """Matches nothing, and says why."""

    key: str
    reason: str

    def accepts(self, dev: DeviceView) -> bool:
        return False

    def explain(self, dev: DeviceView) -> str:
        return self.reason


@dataclass(frozen=True, slots=True)
class Equals(ValuePredicate):
    """``device.<attr> == wanted`` (for vendor and product IDs)."""

    key: str
    attr: str
    wanted: str

    def test(self, value: Any) -> bool:
        return bool(value == self.wanted)

    def explain(self, dev: DeviceView) -> str:
        return f"wants {self.wanted}, device has {getattr(dev, self.attr)}"


@dataclass(frozen=True, slots=True)
class OneOf(ValuePredicate):
    """``device.<attr>`` is one of a set of values."""

    key: str
    attr: str
    allowed: frozenset[Hashable]
    shown: str

    def test(self, value: Any) -> bool:
        return value in self.allowed

    def explain(self, dev: DeviceView) -> str:
        return f"wants one of {self.shown}, device has {getattr(dev, self.attr)}"


@dataclass(frozen=True, slots=True)
class Custom(ValuePredicate):
    """A test written as a function of one attribute."""

    key: str
    attr: str
    fn: Callable[[Any], bool]
    describe: Callable[[DeviceView], str]

    def test(self, value: Any) -> bool:
        return self.fn(value)

    def explain(self, dev: DeviceView) -> str:
        return self.describe(dev)


@dataclass(frozen=True, slots=True)
class AddressPredicate(Predicate):
    """Nova's address rule. ``expand`` is set when the spec names an SR-IOV PF of this host:
    then a device whose parent is that PF matches as well."""

    key: str
    fields: Fields
    expand: bool
    shown: str

    def own_ok(self, dev: DeviceView) -> bool:
        return fields_match(self.fields, (dev.domain, dev.bus, dev.slot, dev.func))

    def parent_ok(self, parent: str | None) -> bool:
        return bool(self.expand and parent and fields_match(self.fields, split_address(parent)))

    def accepts(self, dev: DeviceView) -> bool:
        return self.parent_ok(dev.parent_addr) or self.own_ok(dev)

    def explain(self, dev: DeviceView) -> str:
        tests = ", ".join(
            f"{n} {t.describe()}" for n, t in zip(("domain", "bus", "slot", "function"),
                                                   self.fields, strict=True)
        )
        if self.parent_ok(dev.parent_addr):
            return (f"{self.shown} names PF {dev.parent_addr}, and the device is one of its VFs "
                    f"(a spec naming a PF also matches its VFs)")
        if self.own_ok(dev):
            return f"{self.shown} ({tests}) matches {dev.address}"
        extra = ""
        if dev.parent_addr and not self.expand:
            extra = "; the spec does not name an SR-IOV PF of this host, so VFs are not included"
        elif dev.parent_addr:
            extra = f"; nor does its PF {dev.parent_addr}"
        return f"{self.shown} ({tests}) does not match {dev.address}{extra}"
