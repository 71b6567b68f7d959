"""Scheduler: a pure function of (request, host pools) -> placement + a reason per rejected host.

No I/O; imports only the standard library (and, if ever needed, ``vfkeeper.domain``). The
controller maps its store into :class:`HostView` / :class:`PoolView`, keeps a
:class:`ClusterView` up to date, and calls :func:`schedule`. See docs/scheduler.md.
"""

from vfkeeper.scheduler.cluster import ClusterView
from vfkeeper.scheduler.core import apply_placement, schedule
from vfkeeper.scheduler.errors import (
    InvalidHostViewError,
    InvalidRequestError,
    NoValidHostError,
    SchedulerError,
)
from vfkeeper.scheduler.filters import DEFAULT_FILTERS, FILTERS
from vfkeeper.scheduler.model import (
    HostView,
    InstanceRequest,
    PciRequest,
    PoolKey,
    PoolView,
)
from vfkeeper.scheduler.result import NoValidHost, Placement, PoolAllocation, Rejection
from vfkeeper.scheduler.weighers import WEIGHERS

__all__ = [
    "DEFAULT_FILTERS",
    "FILTERS",
    "WEIGHERS",
    "ClusterView",
    "HostView",
    "InstanceRequest",
    "InvalidHostViewError",
    "InvalidRequestError",
    "NoValidHost",
    "NoValidHostError",
    "PciRequest",
    "Placement",
    "PoolAllocation",
    "PoolKey",
    "PoolView",
    "Rejection",
    "SchedulerError",
    "apply_placement",
    "schedule",
]
