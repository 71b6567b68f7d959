"""The scheduler's answers: a :class:`Placement`, or :class:`NoValidHost` with a reason per host."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from vfkeeper.scheduler.model import PoolKey


@dataclass(frozen=True, slots=True)
class PoolAllocation:
    """``count`` devices for PCI request ``request_id`` come from pool ``pool``."""

    request_id: str
    pool: PoolKey
    count: int


@dataclass(frozen=True, slots=True)
class Placement:
    """Where an instance goes: one host, and for every PCI request the pools to take from.

    A request with ``count > 1`` may be split over several pools (one allocation each).
    ``numa_node`` is the host NUMA node the devices were chosen for (pin the instance there), or
    ``None`` when no NUMA constraint applied. The controller picks concrete free devices from
    these pools inside the claim transaction.
    """

    host: str
    allocations: tuple[PoolAllocation, ...]
    numa_node: int | None
    weigher: str

    def pools_for(self, request_id: str) -> tuple[PoolAllocation, ...]:
        """The allocations of one PCI request."""
        return tuple(a for a in self.allocations if a.request_id == request_id)


class Rejection(NamedTuple):
    """Why one host was rejected: the filter that said no, and its sentence.

    (A named tuple rather than a dataclass: a NoValidHost makes one per host, and this is the
    cheapest immutable record to build.)"""

    host: str
    filter: str
    reason: str

    def sentence(self) -> str:
        """``host-b: physnet ib-a: 0 free VFs on NUMA node 1 (policy required)``."""
        return f"{self.host}: {self.reason}"


@dataclass(frozen=True, slots=True)
class NoValidHost:
    """No host can take the instance; ``rejections`` explains every host, in stable host order.

    ``problem`` is set when the request itself rules out every host (a host hint naming no
    known host, an empty cluster) rather than any one host's state.
    """

    rejections: tuple[Rejection, ...]
    problem: str | None = None

    def summary(self) -> str:
        """One line, e.g. ``no valid host: 4 hosts rejected (capacity: 2, enabled: 1, ...)``."""
        if self.problem is not None:
            return f"no valid host: {self.problem}"
        by_filter = Counter(r.filter for r in self.rejections)
        counts = ", ".join(f"{name}: {n}" for name, n in sorted(by_filter.items()))
        noun = "host" if len(self.rejections) == 1 else "hosts"
        return f"no valid host: {len(self.rejections)} {noun} rejected ({counts})"

    def explanation(self) -> str:
        """The summary, then one sentence per host: what the API's 409 and the CLI print."""
        return "\n".join([self.summary(), *(r.sentence() for r in self.rejections)])

    def details(self) -> list[dict[str, str]]:
        """Structured form for the API's 409 ``details``: ``[{host, reason, filter}, ...]``."""
        return [{"host": r.host, "reason": r.reason, "filter": r.filter} for r in self.rejections]
