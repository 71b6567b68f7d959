"""Instance and port states, and the one table of lifecycle transitions.

An instance is ``ACTIVE`` once booted. A lifecycle task (:class:`TaskKind`) moves it through a
*running* status to the status the task ends in, or back where it started when the task fails
or is aborted (:data:`TASKS`)::

    ACTIVE ──migrate──▶ MIGRATING ──done──▶ ACTIVE (on the destination)
                                  └─failed/aborted─▶ ACTIVE (where it was)
    ACTIVE ──suspend──▶ SUSPENDING ──done──▶ SUSPENDED
                                   └─failed/aborted─▶ ACTIVE
    SUSPENDED ──resume──▶ RESUMING ──done──▶ ACTIVE
                                   └─failed/aborted─▶ SUSPENDED

A port's status is its agent's word (:class:`PortStatus`). An instance whose lifecycle status
is ``ACTIVE`` but one of whose ports the agent reports ``ERROR`` is *shown* ``ERROR``
(:func:`shown_status`); that is a view, never stored.

Pure: no I/O (the controller's lifecycle module applies these rules to its rows).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from vfkeeper.domain.vif import VnicType


class InstanceStatus(StrEnum):
    ACTIVE = "ACTIVE"
    MIGRATING = "MIGRATING"
    SUSPENDING = "SUSPENDING"
    SUSPENDED = "SUSPENDED"
    RESUMING = "RESUMING"
    ERROR = "ERROR"
    """Shown only (:func:`shown_status`): lifecycle ``ACTIVE`` with a port in ``ERROR``."""


class PortStatus(StrEnum):
    BUILD = "BUILD"
    """Bound; its agent has not attached the device to the domain yet."""
    ACTIVE = "ACTIVE"
    """Attached to the running domain with the VF programmed."""
    DOWN = "DOWN"
    """Unbound, or attached to a domain that is not running, or unplugged by a task."""
    ERROR = "ERROR"
    """The agent could not make it so; ``actual.last_error`` says why."""


class TaskKind(StrEnum):
    MIGRATE = "migrate"
    SUSPEND = "suspend"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class Task:
    """One row of the transition table."""

    kind: TaskKind
    starts_from: InstanceStatus
    running: InstanceStatus
    done: InstanceStatus
    undone: InstanceStatus
    """Where a failed or aborted task leaves the instance."""


TASKS: dict[TaskKind, Task] = {
    TaskKind.MIGRATE: Task(TaskKind.MIGRATE, InstanceStatus.ACTIVE, InstanceStatus.MIGRATING,
                           InstanceStatus.ACTIVE, InstanceStatus.ACTIVE),
    TaskKind.SUSPEND: Task(TaskKind.SUSPEND, InstanceStatus.ACTIVE, InstanceStatus.SUSPENDING,
                           InstanceStatus.SUSPENDED, InstanceStatus.ACTIVE),
    TaskKind.RESUME: Task(TaskKind.RESUME, InstanceStatus.SUSPENDED, InstanceStatus.RESUMING,
                          InstanceStatus.ACTIVE, InstanceStatus.SUSPENDED),
}
_BY_RUNNING = {t.running: t for t in TASKS.values()}

RUNNING: frozenset[InstanceStatus] = frozenset(_BY_RUNNING)
"""Statuses in which a task runs (the instance has a ``task_id``)."""

UNPLUGGED_FOR: frozenset[InstanceStatus] = RUNNING | {InstanceStatus.SUSPENDED}
"""Statuses in which an instance's hostdev-type ports are unplugged (a migration's only once
its destination is ready)."""


STAYS_PLUGGED = VnicType.MACVTAP
"""The one vnic type libvirt can migrate and save: a macvtap interface is no PCI function."""


def running_task(status: str) -> Task | None:
    """The task an instance in ``status`` is running, if any."""
    return _BY_RUNNING.get(InstanceStatus(status)) if status in RUNNING else None


def shown_status(status: str, port_statuses: Iterable[str]) -> InstanceStatus:
    """The status an instance is shown with: its lifecycle status, except that a settled
    (``ACTIVE``) instance with a port in ``ERROR`` is ``ERROR``."""
    lifecycle = InstanceStatus(status)
    if lifecycle is InstanceStatus.ACTIVE and PortStatus.ERROR in set(port_statuses):
        return InstanceStatus.ERROR
    return lifecycle
