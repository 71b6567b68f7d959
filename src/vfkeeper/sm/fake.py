"""An in-memory subnet manager for the controller's fast tests.

:class:`FakeSubnetManager` behaves like the real backends at the interface, and passes the
same contract suite (``tests/sm/sm_contract.py``):

* the operator's partitions are given to its constructor and are operator-owned: a batch that
  touches one is refused whole (:class:`~vfkeeper.sm.errors.OperatorPartitionError`), and
  nothing of it is applied; every partition a batch creates is vfkeeper's;
* a batch is all or nothing, read back after it is applied (``verified=True``, differences
  computed from the read-back like a real backend's);
* what no SM may get (a PKey with the membership bit, the default partition, a zero GUID, an
  unknown membership) never reaches it: :class:`~vfkeeper.sm.protocol.ChangeSet` refuses it.

Switches for the failures a controller must survive, set by the test that owns the fake:
:meth:`make_unavailable` (every call raises :class:`~vfkeeper.sm.errors.SmUnavailableError`
until :meth:`make_available`), :meth:`refuse_next` (the next batch is refused with the SM's
words, :class:`~vfkeeper.sm.errors.SmRefusedError`), :meth:`lose` (the SM forgot a member, as
an SM that restarted without its state does). ``batches`` lists every batch applied, so a test
can count how many reached the SM.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable

from vfkeeper.sm.errors import OperatorPartitionError, SmRefusedError, SmUnavailableError
from vfkeeper.sm.protocol import (
    ApplyResult,
    ChangeSet,
    Membership,
    Partition,
    SmView,
    canonical_guid,
    check_pkey,
    differences,
)

NAME = "fake"


class FakeSubnetManager:
    """A :class:`~vfkeeper.sm.protocol.SubnetManager` in memory (see the module)."""

    def __init__(self, operator_partitions: Iterable[Partition] = ()) -> None:
        self._lock = threading.Lock()
        self._partitions: dict[int, Partition] = {
            p.pkey: dataclasses.replace(p, operator_owned=True) for p in operator_partitions}
        self._unavailable: str | None = None
        self._refusal: str | None = None
        self.batches: list[ChangeSet] = []

    @property
    def name(self) -> str:
        return NAME

    # ---- the protocol ------------------------------------------------------------------

    def read(self) -> SmView:
        with self._lock:
            self._check_available()
            return self._view()

    def apply(self, changes: ChangeSet) -> ApplyResult:
        with self._lock:
            self._check_available()
            operator = sorted(p for p in changes.pkeys
                              if p in self._partitions and self._partitions[p].operator_owned)
            if operator:
                raise OperatorPartitionError(operator[0], "an operator partition of the fake SM")
            if self._refusal is not None:
                answer, self._refusal = self._refusal, None
                raise SmRefusedError(NAME, "apply a batch of partition changes", answer)
            self._apply(changes)
            self.batches.append(changes)
            return ApplyResult(verified=True, differences=differences(changes, self._view()))

    # ---- switches ----------------------------------------------------------------------

    def make_unavailable(self, problem: str = "connection refused") -> None:
        with self._lock:
            self._unavailable = problem

    def make_available(self) -> None:
        with self._lock:
            self._unavailable = None

    def refuse_next(self, answer: str) -> None:
        """Refuse the next batch with ``answer`` (the SM's words), applying nothing of it."""
        with self._lock:
            self._refusal = answer

    def lose(self, pkey: int, guid: str) -> None:
        """Forget ``guid``'s membership of ``pkey``, as an SM restarted without its state."""
        with self._lock:
            part = self._partitions[check_pkey(pkey)]
            members = {g: m for g, m in part.members.items() if g != canonical_guid(guid)}
            self._partitions[pkey] = dataclasses.replace(part, members=members)

    # ---- inside ------------------------------------------------------------------------

    def _check_available(self) -> None:
        if self._unavailable is not None:
            raise SmUnavailableError(NAME, self._unavailable)

    def _view(self) -> SmView:
        return SmView(partitions=dict(sorted(self._partitions.items())))

    def _apply(self, changes: ChangeSet) -> None:
        for pkey in sorted(changes.ensure | set(changes.add)):
            self._partitions.setdefault(pkey, Partition(pkey=pkey))
        for pkey, guids in changes.remove.items():
            if pkey in self._partitions:
                self._set_members(pkey, {g: m for g, m in self._members(pkey).items()
                                         if g not in guids})
        for pkey, wanted in changes.add.items():
            self._set_members(pkey, {**self._members(pkey), **wanted})

    def _members(self, pkey: int) -> dict[str, Membership]:
        return dict(self._partitions[pkey].members)

    def _set_members(self, pkey: int, members: dict[str, Membership]) -> None:
        self._partitions[pkey] = dataclasses.replace(self._partitions[pkey], members=members)
