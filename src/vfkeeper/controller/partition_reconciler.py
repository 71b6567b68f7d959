"""The partition reconciler: drives the subnet manager from the controller's membership rows
(:mod:`vfkeeper.controller.partitions`), level-triggered.

A **pass** (:meth:`PartitionReconciler.run_pass`):

1. takes the partition lock, or does nothing: with several controller replicas only the one
   holding it drives the SM (PostgreSQL: a session advisory lock held for the pass; SQLite: an
   exclusive ``flock`` on a file next to the database, for ``serve --workers N``);
2. brings the rows in line with the allocations (new memberships ``pending_add``, ones no
   allocation explains any more ``pending_remove``);
3. on a **full** pass (the first one, every ``sync_interval_s``, and ``POST
   /v1/partitions/sync``) reads the SM and compares: a member the SM lost goes back to
   ``pending_add``; a GUID in one of vfkeeper's partitions that no row explains is a stray and
   is taken out (a ``pending_remove`` row is made for it, so the GUID is not handed out before
   it is gone). Each difference is reported (:attr:`PassReport.differences`), none hidden.
   Partitions the SM marks operator-owned are never touched;
4. sends every pending change as **one** :class:`~vfkeeper.sm.protocol.ChangeSet` (one file
   write and one reload for OpenSM, however many boots arrived), and records the result:
   added GUIDs become ``member``, removed ones are deleted (the GUID is free again); a change
   the SM's read-back does not show stays pending with the difference as its error.

When the SM cannot be asked (:class:`~vfkeeper.sm.errors.SmError`), every pending row keeps its
state with the error and one more attempt, and the background loop backs off exponentially
(``min_backoff_s`` doubling up to ``max_backoff_s``) before the next pass; ports waiting for
membership stay ``BUILD`` meanwhile.
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from vfkeeper.controller import partitions as pt
from vfkeeper.sm.errors import OperatorPartitionError, SmError
from vfkeeper.sm.protocol import ApplyResult, ChangeSet, Membership, SmView, SubnetManager
from vfkeeper.store.database import Database
from vfkeeper.store.partition_models import PartitionMembership

log = logging.getLogger(__name__)

PG_LOCK_KEY = 0x7666_6B50  # "vfkP": the partition reconciler's advisory lock
MAX_ERROR = 2000


@dataclass(frozen=True, slots=True)
class _Pending:
    id: int
    pkey: int
    guid: str
    membership: Membership
    state: str


@dataclass
class PassReport:
    """What one pass did."""

    ran: bool
    """False: another replica holds the partition lock (it drives the SM)."""
    full: bool = False
    added: int = 0
    removed: int = 0
    pending: int = 0
    """Changes still pending after the pass."""
    batches: int = 0
    """Batches sent to the SM (0 or 1; more only when a batch hit an operator partition)."""
    verified: bool = False
    error: str | None = None
    differences: list[str] = field(default_factory=list)
    finished_at: datetime | None = None

    def view(self) -> dict[str, Any]:
        return {"ran": self.ran, "full": self.full, "added": self.added,
                "removed": self.removed, "pending": self.pending, "batches": self.batches,
                "verified": self.verified, "error": self.error,
                "differences": list(self.differences), "finished_at": self.finished_at}


class Leadership:
    """The partition lock (see the module)."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._local = threading.Lock()
        self._lock_file: Path | None = None
        if db.is_sqlite:
            self._lock_file = Path(str(make_url(db.url).database) + ".partitions.lock")

    @contextmanager
    def hold(self, *, wait_local: bool = False) -> Iterator[bool]:
        """Whether this caller holds the lock for the block. ``wait_local``: wait for a pass
        of this process's own to finish (a forced sync behind the background loop's pass)
        rather than give up; another process's hold is never waited for."""
        if not self._local.acquire(blocking=wait_local, timeout=120 if wait_local else -1):
            yield False
            return
        try:
            if self._lock_file is not None:
                with self._flock() as got:
                    yield got
            else:
                with self._advisory() as got:
                    yield got
        finally:
            self._local.release()

    @contextmanager
    def _flock(self) -> Iterator[bool]:
        assert self._lock_file is not None
        with self._lock_file.open("a") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextmanager
    def _advisory(self) -> Iterator[bool]:
        with self._db.engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"),
                                    {"k": PG_LOCK_KEY}).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": PG_LOCK_KEY})
                    conn.commit()


class PartitionReconciler:
    """See the module. ``run_pass`` is what tests and ``POST /v1/partitions/sync`` call;
    :meth:`start` runs passes in a background thread until :meth:`stop`."""

    def __init__(self, db: Database, backend: SubnetManager, *, clock: Callable[[], datetime],
                 sync_interval_s: float = 60.0, poll_interval_s: float = 1.0,
                 min_backoff_s: float = 1.0, max_backoff_s: float = 60.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.backend = backend
        self._clock = clock
        self._monotonic = monotonic
        self.sync_interval_s = sync_interval_s
        self.poll_interval_s = poll_interval_s
        self.min_backoff_s = min_backoff_s
        self.max_backoff_s = max_backoff_s
        self.leadership = Leadership(db)
        self.failures = 0
        self.last_report: PassReport | None = None
        self._last_full: float | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def managed(self) -> bool:
        """False with the ``none`` backend: membership is managed outside vfkeeper."""
        return self.backend.name != "none"

    # ---- the background loop -------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="partition-reconciler",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def poke(self) -> None:
        """Run a pass soon (the loop also runs one every ``poll_interval_s``)."""
        self._wake.set()

    def backoff_s(self) -> float:
        """The wait before the next pass: exponential in the failures in a row."""
        if not self.failures:
            return self.poll_interval_s
        return float(min(self.max_backoff_s, self.min_backoff_s * 2.0 ** (self.failures - 1)))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_pass()
            except Exception:  # a database outage, a bug: logged, retried after a backoff
                self.failures += 1
                log.exception("partition reconciler pass failed")
            self._wake.wait(self.backoff_s())
            self._wake.clear()

    # ---- a pass --------------------------------------------------------------------------

    def _full_due(self) -> bool:
        return self._last_full is None or \
            self._monotonic() - self._last_full >= self.sync_interval_s

    def run_pass(self, *, full: bool = False, wait: bool = False) -> PassReport:
        """One pass (see the module); ``wait``: behind a pass of this process's already
        running, instead of giving up (``ran`` False) as behind another replica's."""
        with self.leadership.hold(wait_local=wait) as leader:
            if not leader:
                report = PassReport(ran=False, finished_at=self._clock())
            else:
                report = self._pass(full or self._full_due())
        self.last_report = report
        return report

    def _pass(self, full: bool) -> PassReport:
        report = PassReport(ran=True, full=full and self.managed)
        with self.db.read() as s:  # most passes find nothing new: no write lock for them
            want, have = pt.wanted(s), pt.rows(s)
        if pt.out_of_line(want, have, managed=self.managed):
            with self.db.write() as s:
                have = pt.record_wanted(s, pt.wanted(s), managed=self.managed,
                                        now=self._clock())
        pending = _pending(have.values())
        if not self.managed:
            return self._done(report, pending)
        operator: set[int] = set()
        if report.full:
            try:
                view = self.backend.read()
            except SmError as exc:
                return self._failed(report, pending, str(exc))
            self._last_full = self._monotonic()
            operator = {p.pkey for p in view.partitions.values() if p.operator_owned}
            with self.db.write() as s:
                report.differences.extend(self._compare(s, view))
                pending = _pending(pt.rows(s).values())
        return self._apply(report, pending, operator)

    def _compare(self, s: Session, view: SmView) -> list[str]:
        """Rows vs the SM's view: lost members back to ``pending_add``, strays to
        ``pending_remove`` (see the module). Returns the differences found."""
        if view.managed_outside:
            return []
        now, diffs = self._clock(), []
        have = pt.rows(s, lock=True)
        for (pkey, guid), row in have.items():
            if row.state != pt.MEMBER or (pkey in view.partitions and \
                    view.partitions[pkey].operator_owned):
                continue
            got = view.members_of(pkey).get(guid)
            if got != row.membership:
                diffs.append(f"{guid} should be a {row.membership} member of partition "
                             f"{pkey:#06x} but the SM has it "
                             f"{'as ' + got if got else 'not at all'}; vfkeeper adds it again")
                row.state, row.verified, row.updated_at = pt.PENDING_ADD, False, now
        for pkey, part in view.partitions.items():
            if part.operator_owned:
                continue
            for guid in part.members:
                found = have.get((pkey, guid))
                if found is None or found.state == pt.EXTERNAL:
                    diffs.append(f"{guid} is a member of partition {pkey:#06x} at the SM but no "
                                 "allocation needs it; vfkeeper takes it out")
                    if found is None:
                        s.add(PartitionMembership(
                            pkey=pkey, guid=guid, membership=part.members[guid], port_id=None,
                            state=pt.PENDING_REMOVE, verified=False, attempts=0,
                            created_at=now, updated_at=now))
                    else:
                        found.state = pt.PENDING_REMOVE
        s.flush()
        return diffs

    def _apply(self, report: PassReport, pending: list[_Pending],
               operator: set[int]) -> PassReport:
        skipped: dict[int, str] = {p: _operator_message(p) for p in operator
                                   if any(x.pkey == p for x in pending)}
        for _ in range(8):
            batch = [p for p in pending if p.pkey not in skipped]
            changes = _changeset(batch)
            if not changes:
                break
            try:
                result = self.backend.apply(changes)
            except OperatorPartitionError as exc:
                skipped[exc.pkey] = str(exc)
                continue
            except SmError as exc:
                self._record_skipped(skipped, pending)
                return self._failed(report, pending, str(exc))
            report.batches += 1
            self._record(report, batch, result)
            break
        self._record_skipped(skipped, pending)
        self.failures = 0
        with self.db.read() as s:
            return self._done(report, _pending(pt.rows(s).values()))

    def _record(self, report: PassReport, batch: list[_Pending], result: ApplyResult) -> None:
        report.verified = result.verified
        report.differences.extend(result.differences)
        now = self._clock()
        with self.db.write() as s:
            for p in batch:
                difference = _difference_of(p, result.differences)
                same = (PartitionMembership.id == p.id) & (PartitionMembership.state == p.state)
                if difference is not None:
                    s.execute(update(PartitionMembership).where(same).values(
                        attempts=PartitionMembership.attempts + 1,
                        last_error=difference[:MAX_ERROR], updated_at=now))
                elif p.state == pt.PENDING_ADD:
                    done = s.execute(update(PartitionMembership).where(
                        same, PartitionMembership.membership == p.membership).values(
                        state=pt.MEMBER, verified=result.verified, attempts=0, last_error=None,
                        updated_at=now))
                    report.added += _count(done)
                else:
                    done = s.execute(delete(PartitionMembership).where(same))
                    report.removed += _count(done)

    def _record_skipped(self, skipped: dict[int, str], pending: list[_Pending]) -> None:
        if not skipped:
            return
        now = self._clock()
        with self.db.write() as s:
            for p in pending:
                if p.pkey in skipped:
                    s.execute(update(PartitionMembership).where(
                        PartitionMembership.id == p.id).values(
                        attempts=PartitionMembership.attempts + 1,
                        last_error=skipped[p.pkey][:MAX_ERROR], updated_at=now))

    def _failed(self, report: PassReport, pending: list[_Pending], error: str) -> PassReport:
        self.failures += 1
        report.error = error
        log.warning("partition reconciler: %s (attempt %d; next in %.0f s)", error,
                    self.failures, self.backoff_s())
        ids = [p.id for p in pending]
        if ids:
            with self.db.write() as s:
                s.execute(update(PartitionMembership).where(
                    PartitionMembership.id.in_(ids)).values(
                    attempts=PartitionMembership.attempts + 1, last_error=error[:MAX_ERROR],
                    updated_at=self._clock()))
        return self._done(report, pending)

    def _done(self, report: PassReport, pending: list[_Pending]) -> PassReport:
        report.pending = len(pending)
        report.finished_at = self._clock()
        return report

    def status(self) -> dict[str, Any]:
        return {"backend": self.backend.name, "managed": self.managed,
                "failures_in_a_row": self.failures,
                "next_pass_in_s": self.backoff_s() if self._thread else None,
                "running": self._thread is not None,
                "last_pass": self.last_report.view() if self.last_report else None}


def _pending(rows: Any) -> list[_Pending]:
    return [_Pending(r.id, r.pkey, r.guid, r.membership, r.state) for r in rows
            if r.state in (pt.PENDING_ADD, pt.PENDING_REMOVE)]


def _changeset(batch: list[_Pending]) -> ChangeSet:
    add: dict[int, dict[str, Membership]] = {}
    remove: dict[int, set[str]] = {}
    for p in batch:
        if p.state == pt.PENDING_ADD:
            add.setdefault(p.pkey, {})[p.guid] = p.membership
        else:
            remove.setdefault(p.pkey, set()).add(p.guid)
    return ChangeSet(ensure=frozenset(add), add=add,
                     remove={k: frozenset(v) for k, v in remove.items()})


def _difference_of(p: _Pending, diffs: tuple[str, ...]) -> str | None:
    pkey = f"{p.pkey:#06x}"
    return next((d for d in diffs if p.guid in d and pkey in d), None)


def _operator_message(pkey: int) -> str:
    return str(OperatorPartitionError(pkey, "the subnet manager lists it as the operator's"))


def _count(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
