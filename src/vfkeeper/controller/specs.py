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

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import InvalidInputError
from vfkeeper.controller.hosts import Assignment, Matcher, get_host, sync_devices
from vfkeeper.domain import inventory as inv
from vfkeeper.domain.devspec import (
    DeviceSpecSet,
    HostMatcher,
    HostView,
    InvalidDeviceSpec,
    SpecHostError,
    view_of,
)
from vfkeeper.store.models import DeviceSpecSet as SpecRow
from vfkeeper.store.models import Host, utcnow

CLUSTER = "*"


class SpecEntries(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entries: list[dict[str, Any] | str | list[Any]] = Field(
        description="Nova [pci] device_spec entries: JSON objects, or the JSON strings "
                    "nova.conf holds.")


def parse_entries(entries: Sequence[Any]) -> DeviceSpecSet:
    try:
        return DeviceSpecSet.parse(entries)
    except InvalidDeviceSpec as exc:
        raise InvalidInputError(
            f"entries[{exc.entry}]", str(exc),
            {"entry": exc.entry, "key": exc.key, "problem": exc.problem,
             "allowed": exc.allowed},
        ) from exc


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
    host.spec_problem = problem
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
