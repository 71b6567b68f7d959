"""Device specs: cluster-wide, with optional per-host overrides (an override replaces the
cluster's specs on that host). Any change re-applies the specs to the hosts it affects, which
recomputes their assignable devices and pools.

A change that would take away a device that is in use keeps the allocation, marks the device
with a ``problem``, and lists it in the response (Nova deleted in-use device rows on a
whitelist typo).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import InvalidInputError
from vfkeeper.controller.fields import Physnet, column_length, invalid, require_storable
from vfkeeper.controller.hosts import Assignment, Matcher, get_host, sync_devices
from vfkeeper.domain import inventory as inv
from vfkeeper.domain.devspec import (
    CompiledSpec,
    DeviceSpecSet,
    HostMatcher,
    HostView,
    InvalidDeviceSpec,
    SpecHostError,
    view_of,
)
from vfkeeper.domain.text import Loc, Problem, clip, json_problems, printable
from vfkeeper.store.models import DeviceSpecSet as SpecRow
from vfkeeper.store.models import Host, utcnow

CLUSTER = "*"
SPEC_PROBLEM_MAX = column_length(Host.spec_problem)
MAX_ENTRIES = 1024
"""Entries one PUT may carry: far more than a cluster needs (specs are matched by bitmasks, one
bit per spec)."""


class SpecEntries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[dict[str, Any] | str | list[Any]] = Field(
        max_length=MAX_ENTRIES,
        description="Nova [pci] device_spec entries: JSON objects, or the JSON strings "
                    "nova.conf holds. Each spec's physical_network must be a network's "
                    "physical network name.")


TUNNELLED = (
    "is null, which in Nova means devices for tunnelled (VXLAN, Geneve, GRE) networks; vfkeeper "
    "has no tunnelled networks (every network names a physical network), so it could never "
    "hand these devices out: name the physical network they are wired to, or leave them out")
_PHYSNET = TypeAdapter(Physnet)


def _loc(spec: CompiledSpec) -> Loc:
    return ("entries", spec.entry) if spec.item is None else ("entries", spec.entry, spec.item)


def physnet_problem(spec: CompiledSpec) -> Problem | None:
    """A spec selects devices for one physical network: its ``physical_network`` must be a
    name a network can have. (Nova also takes null, tunnelled networks, and no value at all,
    PCI passthrough without a network; neither means anything to vfkeeper, whose devices
    serve networks only, and such devices would silently be in no pool.)"""
    loc = (*_loc(spec), "physical_network")
    if "physical_network" not in spec.raw:
        return Problem(loc, "is missing; name the physical network the devices are wired to "
                            "(the physical_network of the networks their ports are on)")
    value = spec.raw["physical_network"]
    if value is None:
        return Problem(loc, TUNNELLED)
    if not isinstance(value, str):
        return Problem(loc, f"is {type(value).__name__} {printable(repr(value))[:60]}, not a "
                            "string; give the physical network's name")
    try:
        _PHYSNET.validate_python(value)
    except ValidationError as exc:
        return Problem(loc, exc.errors()[0]["msg"].removeprefix("Value error, "))
    return None


def parse_entries(entries: Sequence[Any]) -> DeviceSpecSet:
    """The spec set, or a 422 naming the bad entry, key or value: any value no database
    stores, anything Nova refuses, a ``physical_network`` that is no network's name."""
    require_storable(list(entries), "entries")
    try:
        parsed = DeviceSpecSet.parse(entries)
    except InvalidDeviceSpec as exc:
        raise InvalidInputError(
            f"entries[{exc.entry}]", str(exc),
            {"entry": exc.entry, "key": exc.key, "problem": exc.problem,
             "allowed": exc.allowed},
        ) from exc
    problems = [p for spec in parsed.specs for p in
                (*json_problems(dict(spec.raw), _loc(spec)), physnet_problem(spec)) if p]
    if problems:
        raise invalid(problems, "fix the spec; nothing was changed")
    return parsed


def _tag_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


class SpecMatcher:
    """A spec set bound to one host's inventory."""

    def __init__(self, matcher: HostMatcher) -> None:
        self._matcher = matcher

    def assign(self, device: inv.Device) -> Assignment | None:
        match = self._matcher.match(view_of(device))
        if match is None:
            return None
        physnet = match.tags.get("physical_network")
        if not isinstance(physnet, str) or not physnet:
            return None  # tunnelled (null) or untagged devices serve no physical network
        tags = {k: _tag_text(v) for k, v in match.tags.items() if k != "physical_network"}
        return Assignment(physnet, tags)


class NoMatch:
    def assign(self, device: inv.Device) -> Assignment | None:
        return None


def entries_for(session: Session, host: str) -> list[Any]:
    rows = {r.scope: r.entries for r in session.scalars(
        select(SpecRow).where(SpecRow.scope.in_([CLUSTER, host])))}
    return list(rows.get(host, rows.get(CLUSTER, [])))


def bind(entries: Sequence[Any], inventory: inv.HostInventory) -> tuple[Matcher, str | None]:
    """The matcher for one host, or no matcher and the reason the specs cannot apply there."""
    try:
        return SpecMatcher(parse_entries(entries).bind(HostView.from_inventory(inventory))), None
    except SpecHostError as exc:
        return NoMatch(), str(exc)


def matcher_for(session: Session, host: Host, inventory: inv.HostInventory) -> Matcher:
    """The specs in force on ``host``; records on the host why they cannot apply, if so."""
    matcher, problem = bind(entries_for(session, host.name), inventory)
    host.spec_problem = None if problem is None else clip(problem, SPEC_PROBLEM_MAX)
    return matcher


def reapply(session: Session, host: Host) -> list[dict[str, Any]]:
    """Re-apply the specs in force to one host's stored inventory."""
    if host.inventory is None:
        return []
    inventory = inv.HostInventory.model_validate(host.inventory)
    host.generation += 1
    return sync_devices(session, host, inventory, matcher_for(session, host, inventory))


def _report(session: Session, hosts: Sequence[Host]) -> dict[str, Any]:
    kept: list[dict[str, Any]] = []
    for host in hosts:
        kept.extend(reapply(session, host))
    session.flush()
    return {
        "recomputed_hosts": [h.name for h in hosts],
        "in_use_devices_kept": kept,
        "host_problems": {h.name: h.spec_problem for h in hosts if h.spec_problem},
    }


def _store(session: Session, scope: str, entries: list[Any]) -> None:
    row = session.scalar(select(SpecRow).where(SpecRow.scope == scope).with_for_update())
    if row is None:
        session.add(SpecRow(scope=scope, entries=entries, updated_at=utcnow()))
    else:
        row.entries = entries
        row.updated_at = utcnow()


def set_cluster_specs(session: Session, entries: list[Any]) -> dict[str, Any]:
    parse_entries(entries)
    _store(session, CLUSTER, entries)
    overridden = set(session.scalars(select(SpecRow.scope).where(SpecRow.scope != CLUSTER)))
    hosts = [h for h in session.scalars(select(Host).order_by(Host.name).with_for_update())
             if h.name not in overridden]
    return {"scope": "cluster", "entries": entries, **_report(session, hosts)}


def set_host_specs(session: Session, name: str, entries: list[Any] | None) -> dict[str, Any]:
    """Set (or with ``None`` remove) host ``name``'s override."""
    host = get_host(session, name, lock=True)
    if entries is None:
        row = session.scalar(select(SpecRow).where(SpecRow.scope == name))
        if row is not None:
            session.delete(row)
            session.flush()
    else:
        parse_entries(entries)
        _store(session, name, entries)
    return {"scope": name, "entries": entries_for(session, name), **_report(session, [host])}


def all_specs(session: Session) -> dict[str, Any]:
    rows: Mapping[str, list[Any]] = {r.scope: r.entries for r in session.scalars(select(SpecRow))}
    return {"cluster": rows.get(CLUSTER, []),
            "overrides": {k: v for k, v in sorted(rows.items()) if k != CLUSTER}}
