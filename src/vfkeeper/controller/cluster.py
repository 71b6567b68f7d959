"""The controller's scheduling view: one cached :class:`~vfkeeper.scheduler.ClusterView` per
controller process, refreshed from the hosts that changed.

Every change to what a host offers bumps its ``generation`` in the same transaction (inventory
PUT, device-spec change, enable/disable, an agent coming back to life, claims and releases).
Before each decision the cache reads every host's ``(generation, last seen, enabled)`` in one
cheap query and re-reads devices and allocations only of hosts whose generation moved. Agent
liveness is not cached: it is evaluated at decision time from ``last_seen_at`` and the clock.

The cache only *proposes* placements. Correctness comes from the claim transaction, which
re-checks freeness under the host's lock (:mod:`vfkeeper.controller.claims`); a stale view
costs a retry, never a double allocation. Several controller processes each keep their own
cache on one database.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.hosts import agent_alive
from vfkeeper.controller.views import SCHEDULABLE, device_groups
from vfkeeper.scheduler import (
    ClusterView,
    HostView,
    InstanceRequest,
    NoValidHost,
    Placement,
    PoolView,
    apply_placement,
    schedule,
)
from vfkeeper.store.database import Database
from vfkeeper.store.models import Allocation, Device, Host


def host_view(host: Any, devices: list[Device], in_use: set[int], alive: bool) -> HostView:
    """``host`` (a :class:`Host` or a row with its columns) as the scheduler sees it. Only VF
    and PF pools are offered: no port asks for a plain PCI device."""
    pools = []
    for key, group in device_groups(devices, in_use).items():
        physnet, dev_type, parent, numa, vendor, product, tags = key
        if dev_type in SCHEDULABLE:
            pools.append(PoolView(physnet, dev_type,  # type: ignore[arg-type]
                                  numa, vendor, product, parent, len(group.free),
                                  len(group.devices), tags))
    return HostView(host.name, tuple(pools), enabled=host.enabled, agent_alive=alive,
                    disabled_reason=host.disabled_reason,
                    agent_last_seen=None if alive else host.last_seen_at)


class SchedulingCache:
    """The cached cluster view of one controller process. Thread-safe: refresh and decision
    run under one lock (a decision takes tens of microseconds)."""

    def __init__(self, db: Database, agent_timeout_s: float) -> None:
        self._db = db
        self._timeout_s = agent_timeout_s
        self._lock = threading.Lock()
        self._cluster = ClusterView()
        self._generations: dict[str, int] = {}
        self.reloads = 0
        """Host views rebuilt from device rows so far (for tests and benchmarks)."""

    def schedule(self, request: InstanceRequest, now: datetime,
                 exclude: Iterable[str] = ()) -> Placement | NoValidHost:
        """Refresh the hosts that changed, then decide."""
        with self._lock:
            self._refresh(now)
            return schedule(request, self._cluster, exclude=exclude)

    def claimed(self, placement: Placement, generation: int) -> None:
        """Our claim moved ``placement.host`` to ``generation``. If the cached view was the
        state just before it, apply the placement instead of re-reading the host later."""
        with self._lock:
            view = self._cluster.get(placement.host)
            if view is None or self._generations.get(placement.host) != generation - 1:
                return
            self._cluster.upsert(apply_placement(view, placement))
            self._generations[placement.host] = generation

    def _refresh(self, now: datetime) -> None:
        with self._db.read() as s:
            # generations first, devices after: a view is never older than its generation
            rows = s.execute(select(Host.id, Host.name, Host.generation, Host.enabled,
                                    Host.disabled_reason, Host.last_seen_at)).all()
            names = {r.name for r in rows}
            for name in [n for n in self._generations if n not in names]:
                self._cluster.remove(name)
                del self._generations[name]
            changed = [r for r in rows if self._generations.get(r.name) != r.generation]
            if changed:
                self._reload(s, changed, now)
        for r in rows:
            view = self._cluster.get(r.name)
            alive = agent_alive(r.last_seen_at, now, self._timeout_s)
            if view is not None and view.agent_alive != alive:
                self._cluster.upsert(dataclasses.replace(
                    view, agent_alive=alive, agent_last_seen=None if alive else r.last_seen_at))

    def _reload(self, s: Session, rows: list[Any], now: datetime) -> None:
        ids = [r.id for r in rows]
        devices: dict[int, list[Device]] = {i: [] for i in ids}
        for chunk in _chunks(ids, 500):
            for device in s.scalars(select(Device).where(Device.host_id.in_(chunk))):
                devices[device.host_id].append(device)
        in_use: set[int] = set()
        for chunk in _chunks(ids, 500):
            in_use.update(s.scalars(select(Allocation.device_id)
                                    .where(Allocation.host_id.in_(chunk))))
        for r in rows:
            alive = agent_alive(r.last_seen_at, now, self._timeout_s)
            self._cluster.upsert(host_view(r, devices[r.id], in_use, alive))
            self._generations[r.name] = r.generation
        self.reloads += len(rows)


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    return (items[i:i + size] for i in range(0, len(items), size))
