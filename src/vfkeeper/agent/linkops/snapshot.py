"""Snapshot before change, restore on release: VF programming with a policy.

:func:`apply` reads the VF, changes only the attributes that differ from what is wanted, and
records each changed attribute's value from *before* the change in a :class:`VfSnapshot`.
:func:`restore` writes exactly those recorded values back (those the VF does not already have),
and nothing else: a VF that an operator tuned by hand before vfkeeper got it goes back to that
tuning. :func:`originals` is the one computation of "the original value of what would change",
used by :func:`apply` and by the agent, which journals it before it programs the VF.

Policy (docs/vf-programming.md): an attribute is **required** or **best-effort**.

* A required attribute the driver refuses fails the whole apply: what this apply already
  changed is put back first (nothing half-written), then the typed refusal is raised.
* A best-effort attribute the driver refuses *as unsupported or out of range* is skipped, and
  the refusal is returned in :attr:`ApplyResult.skipped` for the caller to report. Busy and
  permission errors are never skipped: retrying or fixing privileges is the answer there.

Restoring a GUID whose recorded value is unset (``None``, or zero) writes all-ones, the value
the kernel and the Mellanox tools take as "clear".
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from vfkeeper.agent.linkops.errors import (
    LinkOpsError,
    RestoreIncompleteError,
    VfAttributeNotSupportedError,
    VfRefusedError,
    VfValueRejectedError,
)
from vfkeeper.agent.linkops.protocol import (
    GUID_ATTRS,
    ZERO_MAC,
    LinkOps,
    LinkState,
    VfAttr,
    VfConfig,
    VfState,
    Vlan,
)
from vfkeeper.domain.guid import GUID_CLEAR, parse_guid


class Requirement(StrEnum):
    REQUIRED = "required"
    BEST_EFFORT = "best-effort"


Policy = Mapping[VfAttr, Requirement]

DEFAULT_POLICY: Policy = MappingProxyType(
    {
        VfAttr.MAC: Requirement.REQUIRED,
        VfAttr.VLAN: Requirement.REQUIRED,
        VfAttr.NODE_GUID: Requirement.REQUIRED,
        VfAttr.PORT_GUID: Requirement.REQUIRED,
        VfAttr.SPOOFCHK: Requirement.REQUIRED,
        VfAttr.TRUST: Requirement.REQUIRED,
        VfAttr.MIN_TX_RATE: Requirement.BEST_EFFORT,
        VfAttr.MAX_TX_RATE: Requirement.BEST_EFFORT,
        VfAttr.LINK_STATE: Requirement.BEST_EFFORT,
    }
)
"""What the agent uses: addressing and isolation (MAC, VLAN, GUIDs, spoof check, trust) are
required; rate limits and forced link state are best-effort."""

STRICT_POLICY: Policy = MappingProxyType({attr: Requirement.REQUIRED for attr in VfAttr})
"""Everything required: what ``vfkeeper vf set`` uses, since an operator asked for each value."""

_SKIPPABLE = (VfAttributeNotSupportedError, VfValueRejectedError)


@dataclass(frozen=True, slots=True)
class VfSnapshot:
    """The values a VF had before vfkeeper changed them; only changed attributes are set."""

    pf: str
    vf_index: int
    original: VfConfig = field(default_factory=VfConfig)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for the agent to persist across restarts."""
        orig: dict[str, Any] = {}
        for attr, value in self.original.items():
            if isinstance(value, Vlan):
                orig[attr.value] = {"id": value.id, "qos": value.qos, "proto": value.proto}
            else:
                orig[attr.value] = str(value) if isinstance(value, LinkState) else value
        return {"pf": self.pf, "vf_index": self.vf_index, "original": orig}

    def adding(self, other: VfSnapshot) -> VfSnapshot:
        """This snapshot plus the attributes only ``other`` records: a value recorded first
        (here) stays the original."""
        merged = dict(other.original.items()) | dict(self.original.items())
        pairs = ((a, merged[a]) for a in VfAttr if a in merged)
        return VfSnapshot(self.pf, self.vf_index, VfConfig.of(pairs))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VfSnapshot:
        orig = dict(data.get("original", {}))
        if "vlan" in orig:
            orig["vlan"] = Vlan(**orig["vlan"])
        if "link_state" in orig:
            orig["link_state"] = LinkState(orig["link_state"])
        return cls(str(data["pf"]), int(data["vf_index"]), VfConfig(**orig))


@dataclass(frozen=True, slots=True)
class ApplyResult:
    snapshot: VfSnapshot
    changed: tuple[VfAttr, ...] = ()
    unchanged: tuple[VfAttr, ...] = ()
    """Already at the wanted value: not written, not recorded."""
    skipped: tuple[VfRefusedError, ...] = ()
    """Best-effort attributes the driver refused; report them."""


def _unset_as_clear(guid: str) -> int:
    """Zero ("never set") and all-ones ("cleared") both mean no administrative GUID."""
    parsed = parse_guid(guid)
    return GUID_CLEAR.value if parsed.is_zero else parsed.value


def differs(current: VfState, attr: VfAttr, wanted: object) -> bool:
    """Whether setting ``attr`` to ``wanted`` would change the VF. An attribute the driver
    does not report always differs; an unset GUID (zero) is the same as a cleared one."""
    have = current.value(attr)
    if attr in GUID_ATTRS and isinstance(have, str) and isinstance(wanted, str):
        return _unset_as_clear(have) != _unset_as_clear(wanted)
    return bool(have != wanted)


_UNREPORTED: dict[VfAttr, object] = {
    VfAttr.MAC: ZERO_MAC,
    VfAttr.VLAN: Vlan(),
    VfAttr.NODE_GUID: GUID_CLEAR.canonical,
    VfAttr.PORT_GUID: GUID_CLEAR.canonical,
    VfAttr.SPOOFCHK: True,
    VfAttr.TRUST: False,
    VfAttr.LINK_STATE: LinkState.AUTO,
    VfAttr.MIN_TX_RATE: 0,
    VfAttr.MAX_TX_RATE: 0,
}
"""What to record for an attribute the driver does not report: the value that clears it
(all-ones for GUIDs) or the kernel drivers' default."""


def _recorded(attr: VfAttr, value: object) -> object:
    if value is None:
        return _UNREPORTED[attr]
    if attr in GUID_ATTRS and parse_guid(str(value)).is_zero:
        return GUID_CLEAR.canonical
    return value


def originals(current: VfState, wanted: VfConfig) -> VfSnapshot:
    """The original value of every attribute of ``wanted`` that differs from ``current``: what
    :func:`apply` records for the attributes it changes. The agent journals this *before* it
    programs the VF (so a crash mid-apply loses no original), and :func:`apply` computes its
    snapshot with this same function, keeping only what it really changed."""
    pairs = [(a, _recorded(a, current.value(a))) for a, v in wanted.items()
             if differs(current, a, v)]  # fmt: skip
    return VfSnapshot(current.pf, current.index, VfConfig.of(pairs))


def _only(snapshot: VfSnapshot, attrs: Iterable[VfAttr]) -> VfSnapshot:
    keep = set(attrs)
    pairs = [(a, v) for a, v in snapshot.original.items() if a in keep]
    return VfSnapshot(snapshot.pf, snapshot.vf_index, VfConfig.of(pairs))


def _merge(changed: VfSnapshot, previous: VfSnapshot | None, current: VfState,
           skipped: Iterable[VfAttr]) -> VfSnapshot:  # fmt: skip
    """``changed`` plus what ``previous`` recorded: the first recorded value wins. A recorded
    attribute the driver refused now and that still has its recorded value was never changed
    (the record was written before the refusal was known): it is dropped, so the snapshot
    holds exactly what was changed and restoring it never asks the driver for what it refuses."""
    if previous is None:
        return changed
    refused = set(skipped)
    kept = [(a, v) for a, v in previous.original.items()
            if a not in refused or differs(current, a, v)]  # fmt: skip
    return VfSnapshot(previous.pf, previous.vf_index, VfConfig.of(kept)).adding(changed)


def _program(
    ops: LinkOps, pf: str, vf_index: int, pairs: list[tuple[VfAttr, object]]
) -> Iterator[tuple[list[tuple[VfAttr, object]], VfRefusedError | None]]:
    """Set ``pairs`` in as few ``set_vf`` calls as refusals allow (each call reads the PF once).

    ``set_vf`` applies in order and stops at the first refusal, so the pairs before the refused
    one are set; this yields ``(set pairs, refusal)`` chunks and goes on after each refusal."""
    while pairs:
        try:
            ops.set_vf(pf, vf_index, VfConfig.of(pairs))
        except VfRefusedError as refused:
            at = [a.value for a, _ in pairs].index(refused.attribute)
            yield pairs[:at], refused
            pairs = pairs[at + 1 :]
            continue
        yield pairs, None
        return


def apply(
    ops: LinkOps,
    pf: str,
    vf_index: int,
    wanted: VfConfig,
    *,
    policy: Policy = DEFAULT_POLICY,
    previous: VfSnapshot | None = None,
) -> ApplyResult:
    """Program ``wanted`` onto a VF, recording originals; see the module docstring.

    ``previous`` is the snapshot of an earlier apply to the same VF, or the one the agent
    journaled before this apply (:func:`originals`): values it recorded stay the originals, so a
    re-apply never forgets them; of its attributes the driver refused now, those still at their
    recorded value are dropped (they were never changed).
    """
    current = ops.get_vf(pf, vf_index)
    before = originals(current, wanted)
    todo = [(a, v) for a, v in wanted.items() if a in before.original.attrs()]
    changed: list[VfAttr] = []
    skipped: list[VfRefusedError] = []
    for done, refused in _program(ops, pf, vf_index, todo):
        changed.extend(attr for attr, _ in done)
        if refused is None:
            continue
        attr = VfAttr(refused.attribute)
        if isinstance(refused, _SKIPPABLE) and policy.get(attr) is Requirement.BEST_EFFORT:
            skipped.append(refused)
            continue
        _roll_back(ops, _only(before, changed), refused)
        raise refused
    unchanged = tuple(a for a in wanted.attrs() if a not in dict(todo))
    refused_attrs = (VfAttr(r.attribute) for r in skipped)
    snapshot = _merge(_only(before, changed), previous, current, refused_attrs)
    return ApplyResult(snapshot, tuple(changed), unchanged, tuple(skipped))


def _roll_back(ops: LinkOps, partial: VfSnapshot, cause: LinkOpsError) -> None:
    try:
        restore(ops, partial)
    except RestoreIncompleteError as incomplete:
        raise incomplete from cause


def restore(ops: LinkOps, snapshot: VfSnapshot) -> None:
    """Write back every recorded value the VF does not have now (one already back, or never
    changed, is not written: restoring twice is restoring once, and the driver is never asked
    for a value it already shows). Each attribute is tried even if the driver refuses another;
    then :class:`RestoreIncompleteError` lists what could not be restored."""
    failures: list[LinkOpsError] = []
    restored: list[str] = []
    current = ops.get_vf(snapshot.pf, snapshot.vf_index)
    pairs = [(a, v) for a, v in snapshot.original.items() if differs(current, a, v)]
    for done, refused in _program(ops, snapshot.pf, snapshot.vf_index, pairs):
        restored.extend(a.value for a, _ in done)
        if refused is not None:
            failures.append(refused)
    if failures:
        raise RestoreIncompleteError(snapshot.pf, snapshot.vf_index, failures, restored)
