"""The subnet-manager interface and the values it speaks.

A **partition** is a 15-bit PKey (``0x0001``-``0x7ffe``; ``0x7fff`` is the default partition,
and the top bit of a port's table entry is membership, never part of the key) with members:
port GUIDs, each a ``full`` or ``limited`` member. Limited members of one partition cannot
talk to each other, only to full members.

Changes go in batches (:class:`ChangeSet`): a backend applies a whole batch at once — for
OpenSM one file write and one reload for any number of boots — and either all of it takes
effect or none of it does.

Values are frozen and validated when built: a bad PKey or GUID never reaches an SM.
GUIDs are vfkeeper's canonical form (``0x`` + 16 lowercase hex digits,
:func:`vfkeeper.domain.guid.format_guid`); a backend converts at its boundary (UFM writes them
bare).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Protocol

from vfkeeper.domain.errors import InvalidValueError
from vfkeeper.domain.guid import parse_guid
from vfkeeper.sm.errors import InvalidPartitionError

Membership = Literal["full", "limited"]
MEMBERSHIPS: tuple[Membership, ...] = ("full", "limited")

PKEY_MIN = 0x0001
PKEY_MAX = 0x7FFE
DEFAULT_PKEY = 0x7FFF
"""The default partition: always there, managed by the SM, never by vfkeeper."""


def check_pkey(pkey: int) -> int:
    """``pkey`` if it is a partition vfkeeper may manage; else :class:`InvalidPartitionError`."""
    if isinstance(pkey, bool) or not isinstance(pkey, int):
        raise InvalidPartitionError(f"PKey {pkey!r} is not a number",
                                    "give the 15-bit partition key, e.g. 0x0a01")
    if pkey & 0x8000:
        raise InvalidPartitionError(
            f"PKey {pkey:#06x} has the membership bit (0x8000) set",
            f"give the partition {pkey & 0x7FFF:#06x} and the membership separately")
    if pkey == DEFAULT_PKEY:
        raise InvalidPartitionError("PKey 0x7fff is the default partition",
                                    "the SM manages it; use a PKey from 0x0001 to 0x7ffe")
    if not PKEY_MIN <= pkey <= PKEY_MAX:
        raise InvalidPartitionError(f"PKey {pkey:#x} is outside 0x0001-0x7ffe",
                                    "use a PKey from 0x0001 to 0x7ffe")
    return pkey


_CANONICAL = re.compile(r"0x[0-9a-f]{16}")
_NOT_PORTS = frozenset({"0x0000000000000000", "0xffffffffffffffff"})


def canonical_guid(guid: str) -> str:
    """A port GUID in vfkeeper's form; zero and all-ones are refused (neither is a port)."""
    if isinstance(guid, str) and _CANONICAL.fullmatch(guid) and guid not in _NOT_PORTS:
        return guid  # already canonical: the common case, for 10,000s of members at a time
    try:
        return str(parse_guid(guid, allow_zero=False, allow_clear=False))
    except InvalidValueError as exc:
        raise InvalidPartitionError(f"port GUID {guid!r}: {exc.expected}",
                                    "give the port's GUID, e.g. 0x0002c90300a1b2c3") from exc


def _members(members: Mapping[str, Membership]) -> Mapping[str, Membership]:
    out: dict[str, Membership] = {}
    for guid, membership in members.items():
        if membership not in MEMBERSHIPS:
            raise InvalidPartitionError(f"membership {membership!r} of {guid}",
                                        "use full or limited")
        out[canonical_guid(guid)] = membership
    return MappingProxyType(dict(sorted(out.items())))


@dataclass(frozen=True, slots=True)
class Partition:
    """One partition as an SM holds it."""

    pkey: int
    members: Mapping[str, Membership] = field(default_factory=dict)
    """Port GUID → membership."""
    ipoib: bool = True
    """An IPoIB broadcast group exists for it (``ipoib`` in partitions.conf, ``ip_over_ib``
    in UFM)."""
    operator_owned: bool = False
    """Defined outside vfkeeper (an OpenSM base file, a PKey UFM had before vfkeeper): read,
    never changed."""
    name: str | None = None

    def __post_init__(self) -> None:
        check_pkey(self.pkey)
        object.__setattr__(self, "members", _members(self.members))


@dataclass(frozen=True, slots=True)
class SmView:
    """Everything an SM says it has (vfkeeper's partitions and the operator's)."""

    partitions: Mapping[int, Partition] = field(default_factory=dict)
    managed_outside: bool = False
    """True when the backend cannot see membership at all (``none``): the view is empty
    because vfkeeper is not told, not because the SM has no partitions. A reconciler must not
    read it as "every GUID is missing"."""

    def members_of(self, pkey: int) -> Mapping[str, Membership]:
        part = self.partitions.get(pkey)
        return part.members if part is not None else MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """One batch of changes. ``ensure``: PKeys that must exist (created empty if missing);
    ``add``: PKey → GUID → membership (a GUID already a member with another membership is
    changed to this one); ``remove``: PKey → GUIDs to take out (absent ones are ignored)."""

    ensure: frozenset[int] = frozenset()
    add: Mapping[int, Mapping[str, Membership]] = field(default_factory=dict)
    remove: Mapping[int, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ensure", frozenset(check_pkey(p) for p in self.ensure))
        object.__setattr__(self, "add", MappingProxyType(
            {check_pkey(p): _members(m) for p, m in self.add.items() if check_pkey(p) and m}))
        object.__setattr__(self, "remove", MappingProxyType(
            {check_pkey(p): frozenset(canonical_guid(g) for g in gs)
             for p, gs in self.remove.items() if check_pkey(p) and gs}))
        both = [(p, g) for p, gs in self.remove.items() for g in gs if g in self.add.get(p, {})]
        if both:
            pkey, guid = both[0]
            raise InvalidPartitionError(f"{guid} is both added to and removed from {pkey:#06x}",
                                        "a batch either adds or removes a GUID, not both")

    def __bool__(self) -> bool:
        return bool(self.ensure or self.add or self.remove)

    @property
    def pkeys(self) -> frozenset[int]:
        return self.ensure | set(self.add) | set(self.remove)


@dataclass(frozen=True, slots=True)
class ApplyResult:
    """What a backend did with a batch. ``differences``: where the SM, read back after the
    change, does not show what the batch asked (empty when it does, or when the backend cannot
    read back: ``verified`` is then False)."""

    verified: bool
    differences: tuple[str, ...] = ()


def differences(changes: ChangeSet, view: SmView) -> tuple[str, ...]:
    """Where ``view`` (an SM read back after applying ``changes``) does not show what
    ``changes`` asked, one sentence each, in a stable order; empty when it shows all of it."""
    out: list[str] = [f"partition {pkey:#06x} is missing after it was created"
                      for pkey in sorted(changes.ensure | set(changes.add))
                      if pkey not in view.partitions]
    for pkey, wanted in sorted(changes.add.items()):
        have = view.members_of(pkey)
        for guid, membership in wanted.items():
            got = have.get(guid)
            if got is None:
                out.append(f"{guid} is not a member of partition {pkey:#06x} "
                           f"(asked: {membership})")
            elif got != membership:
                out.append(f"{guid} is a {got} member of partition {pkey:#06x}, "
                           f"asked: {membership}")
    for pkey, guids in sorted(changes.remove.items()):
        have = view.members_of(pkey)
        out.extend(f"{guid} is still a member of partition {pkey:#06x} after its removal"
                   for guid in sorted(guids) if guid in have)
    return tuple(out)


class SubnetManager(Protocol):
    """An SM backend: read what the SM has, apply a batch of changes."""

    @property
    def name(self) -> str:
        """``opensm``, ``ufm`` or ``none`` (shown to operators)."""
        ...

    def read(self) -> SmView:
        """Every partition the SM has, with its members.

        Raises :class:`~vfkeeper.sm.errors.SmUnavailableError` when the SM cannot be asked."""
        ...

    def apply(self, changes: ChangeSet) -> ApplyResult:
        """Apply ``changes`` as one batch: all of it or none of it.

        Raises :class:`~vfkeeper.sm.errors.SmRefusedError` (the SM's own words, verbatim) or
        :class:`~vfkeeper.sm.errors.SmUnavailableError`; refuses to touch an operator-owned
        partition with :class:`~vfkeeper.sm.errors.OperatorPartitionError`."""
        ...

