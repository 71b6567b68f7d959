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

A boot refreshes and decides inside its own claim transaction (the ``session`` passed to
:meth:`SchedulingCache.schedule`), so it reads no more than it must and pays one transaction.
Hosts this process is claiming on right now are *busy*: the scheduler passes over them while
another host fits (``schedule(..., avoid=...)``), so concurrent boots land on different hosts
instead of queueing on one host's row lock. On SQLite, whose writers take turns anyway, the
boots of one process take turns on a lock (:meth:`SchedulingCache.turn`): handing a lock over
is immediate, while SQLite's busy handler sleeps 1 to 100 ms between tries.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.orm import Session

from vfkeeper.controller.agent_state import reconcile_problem
from vfkeeper.controller.hosts import agent_alive
from vfkeeper.controller.views import (
    DEVICE_COLUMNS,
    SCHEDULABLE,
    DeviceFacts,
    DeviceRow,
    device_groups,
)
from vfkeeper.scheduler import (
    ClusterView,
    HostView,
    InstanceRequest,
    InvalidHostViewError,
    NoValidHost,
    Placement,
    PoolView,
    apply_placement,
    schedule,
)
from vfkeeper.store.agent_models import HostActual
from vfkeeper.store.database import Database
from vfkeeper.store.models import Allocation, Device, DeviceRelease, Host

_IS_SILENT = or_(Host.last_seen_at.is_(None), Host.last_seen_at < bindparam("cutoff"))
_FINGERPRINT = select(func.count(), func.coalesce(func.sum(Host.generation), 0),
                      func.coalesce(func.max(Host.id), 0), func.count().filter(_IS_SILENT))
_SILENT = select(Host.id, Host.last_seen_at).where(_IS_SILENT)
"""Built once: building a statement costs more than running these on SQLite."""


def host_view(host: Any, devices: Sequence[DeviceFacts], in_use: set[int], alive: bool,
              problem: str | None = None, *, releasing: set[int] | None = None) -> HostView:
    """``host`` (a :class:`Host` or a row with its columns) as the scheduler sees it. Only VF
    and PF pools are offered: no port asks for a plain PCI device. ``problem``: why its agent
    cannot reconcile it (:func:`~vfkeeper.controller.agent_state.reconcile_problem`).
    ``releasing``: its devices not given back yet (counted, never free)."""
    pools = []
    for key, group in device_groups(devices, in_use, releasing or set()).items():
        physnet, dev_type, parent, numa, vendor, product, tags = key
        if dev_type in SCHEDULABLE:
            pools.append(PoolView(physnet, dev_type,  # type: ignore[arg-type]
                                  numa, vendor, product, parent, len(group.free),
                                  len(group.devices), tags, releasing=len(group.releasing)))
    return HostView(host.name, tuple(pools), enabled=host.enabled, agent_alive=alive,
                    disabled_reason=host.disabled_reason,
                    agent_last_seen=None if alive else host.last_seen_at,
                    agent_problem=problem)


class SchedulingCache:
    """The cached cluster view of one controller process. Thread-safe: refresh and decision
    run under one lock (a decision takes tens of microseconds)."""

    def __init__(self, db: Database, agent_timeout_s: float) -> None:
        self._db = db
        self._timeout_s = agent_timeout_s
        self._lock = threading.Lock()
        self._turns = threading.Lock() if db.is_sqlite else None
        self._busy: Counter[str] = Counter()
        """Host name -> claims of this process on it not settled yet."""
        self._cluster = ClusterView()
        self._generations: dict[int, int] = {}
        """Host id -> the generation its cached view reflects."""
        self._names: dict[int, str] = {}
        self._ids: dict[str, int] = {}
        self._silent: dict[int, datetime | None] = {}
        """Hosts whose agent counted as dead at the last refresh -> when it was last seen."""
        self._fingerprint = (-1, -1, -1)
        self._dirty = False
        """Some host's generation is unknown (-1): compare generations even if the fingerprint
        did not move."""
        """(hosts, sum of generations, highest id) at the last refresh: generations only grow,
        so while it is unchanged no host changed and the per-host query is skipped."""
        self.reloads = 0
        """Host views rebuilt from device rows so far (for tests and benchmarks)."""

    @contextmanager
    def turn(self) -> Iterator[None]:
        """On SQLite, one boot of this process at a time (see the module's docstring);
        elsewhere nothing."""
        if self._turns is None:
            yield
            return
        with self._turns:
            yield

    def schedule(self, request: InstanceRequest, now: datetime, *,
                 session: Session | None = None, exclude: Iterable[str] = ()
                 ) -> Placement | NoValidHost:
        """Refresh the hosts that changed (reading through ``session``, the caller's
        transaction, if given), then decide, passing over busy hosts while another fits. A
        placement makes its host busy until :meth:`settle`."""
        with self._lock:
            if session is None:
                with self._db.read() as s:
                    self._refresh(s, now)
            else:
                self._refresh(session, now)
            result = schedule(request, self._cluster, exclude=exclude, avoid=self._busy)
            if isinstance(result, Placement):
                self._busy[result.host] += 1
            return result

    def settle(self, placement: Placement, generation: int | None) -> None:
        """The claim of ``placement`` is over: committed, moving its host to ``generation``
        (see :meth:`claimed`), or not (``None``). Either way the host is no longer busy."""
        with self._lock:
            self._busy[placement.host] -= 1
            if self._busy[placement.host] <= 0:
                del self._busy[placement.host]
        if generation is not None:
            self.claimed(placement, generation)

    def claimed(self, placement: Placement, generation: int) -> None:
        """Our claim moved ``placement.host`` to ``generation``. If the cached view was the
        state just before it, apply the placement instead of re-reading the host later."""
        with self._lock:
            view = self._cluster.get(placement.host)
            host_id = self._ids.get(placement.host)
            if view is None or host_id is None or self._generations[host_id] != generation - 1:
                return
            try:
                self._cluster.upsert(apply_placement(view, placement))
            except InvalidHostViewError:  # never fail a committed boot over the cache
                self._generations[host_id] = -1
                self._dirty = True
                return
            self._generations[host_id] = generation
            count, total, top = self._fingerprint
            self._fingerprint = (count, total + 1, top)  # our own bump, and only it

    def _refresh(self, s: Session, now: datetime) -> None:
        cutoff = now - timedelta(seconds=self._timeout_s)
        conn = s.connection()
        # generations first, devices after: a view is never older than its generation
        count, total, top, silent_count = conn.execute(_FINGERPRINT, {"cutoff": cutoff}).one()
        fingerprint = (int(count), int(total), int(top))
        if fingerprint != self._fingerprint or self._dirty:
            self._dirty = False
            self._sync_generations(s, now)
            self._fingerprint = fingerprint
        silent: dict[int, datetime | None] = {} if not silent_count else {
            host_id: seen for host_id, seen in conn.execute(_SILENT, {"cutoff": cutoff})}
        for host_id in self._silent.keys() | silent.keys():
            name = self._names.get(host_id)
            view = self._cluster.get(name) if name is not None else None
            alive = host_id not in silent
            if view is not None and view.agent_alive != alive:
                self._cluster.upsert(dataclasses.replace(
                    view, agent_alive=alive, agent_last_seen=silent.get(host_id)))
        self._silent = silent

    def _sync_generations(self, s: Session, now: datetime) -> None:
        """Forget removed hosts; re-read the hosts whose generation moved."""
        generations = dict(s.execute(select(Host.id, Host.generation)).all())
        for host_id in [i for i in self._names if i not in generations]:
            name = self._names.pop(host_id)
            self._cluster.remove(name)
            del self._generations[host_id], self._ids[name]
        changed = [i for i, g in generations.items() if self._generations.get(i) != g]
        for chunk in _chunks(changed, 500):
            self._reload(s, chunk, now)

    def _reload(self, s: Session, ids: list[int], now: datetime) -> None:
        rows = s.execute(select(Host.id, Host.name, Host.generation, Host.enabled,
                                Host.disabled_reason, Host.last_seen_at)
                         .where(Host.id.in_(ids))).all()
        devices: dict[int, list[DeviceRow]] = {i: [] for i in ids}
        for row in s.execute(select(*DEVICE_COLUMNS).where(Device.host_id.in_(ids))):
            device = DeviceRow._make(row)
            devices[device.host_id].append(device)
        in_use = set(s.scalars(select(Allocation.device_id).where(Allocation.host_id.in_(ids))))
        releasing = set(s.scalars(select(DeviceRelease.device_id)
                                  .where(DeviceRelease.host_id.in_(ids))))
        problems: dict[int, list[Any]] = dict(s.execute(
            select(HostActual.host_id, HostActual.problems).where(HostActual.host_id.in_(ids))
        ).all())
        # A claim that committed while the devices were read moved the generation: the view
        # may then be newer than the generation read first, so record it as unknown (-1): it is
        # re-read next time, and no placement is applied on top of it.
        after = dict(s.execute(select(Host.id, Host.generation).where(Host.id.in_(ids))).all())
        for r in rows:
            alive = agent_alive(r.last_seen_at, now, self._timeout_s)
            self._cluster.upsert(host_view(r, devices[r.id], in_use, alive,
                                           reconcile_problem(problems.get(r.id)),
                                           releasing=releasing))
            self._names[r.id] = r.name
            self._ids[r.name] = r.id
            self._generations[r.id] = r.generation if after.get(r.id) == r.generation else -1
            self._dirty = self._dirty or self._generations[r.id] == -1
        self.reloads += len(rows)


def _chunks(items: list[int], size: int) -> Iterable[list[int]]:
    return (items[i:i + size] for i in range(0, len(items), size))
