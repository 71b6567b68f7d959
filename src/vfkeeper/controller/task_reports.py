"""What agents say of the instances' lifecycle tasks, and what the controller makes of it.

Each report names its task (``task_id``): a report about a task that has ended, or been
replaced, is ignored. The source host's agent reports ``waiting`` (with what for), ``done`` or
``failed``; a migration's destination reports ``waiting``, ``ready`` (its VFs programmed,
with the netdevs its macvtap ports will sit on), ``arrived`` (the domain is there) or
``failed``. See :mod:`vfkeeper.controller.lifecycle` for the tasks themselves.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from vfkeeper.controller.claims import bump_hosts
from vfkeeper.controller.errors import NotFoundError
from vfkeeper.controller.hosts import get_host
from vfkeeper.controller.instances import lock_instance
from vfkeeper.controller.lifecycle import end_task, roll_back
from vfkeeper.domain.agent_state import TaskReport
from vfkeeper.domain.lifecycle import InstanceStatus, TaskKind, running_task
from vfkeeper.store.models import Allocation, Instance, Port


def apply_reports(session: Session, host_name: str, reports: tuple[TaskReport, ...]
                  ) -> list[str]:  # fmt: skip
    """Apply the agent's task reports; returns the ids of the tasks it ended."""
    ended: list[str] = []
    if not reports:
        return ended
    host = get_host(session, host_name)  # not locked: see the actual-state route
    for report in reports:
        instance = session.get(Instance, report.instance_id)
        if instance is None or instance.task_id != report.task_id:
            continue  # ended or replaced since the agent read its desired state
        try:
            instance = lock_instance(session, report.instance_id)  # check again, locked
        except NotFoundError:
            continue  # deleted meanwhile
        if instance.task_id != report.task_id:
            continue  # ended or replaced since the agent read its desired state
        side = instance.host_id if report.role == "source" else instance.target_host_id
        if side != host.id:
            continue  # not this host's part of the task
        if _apply(session, instance, report):
            ended.append(report.task_id)
    return ended


def _apply(session: Session, instance: Instance, report: TaskReport) -> bool:
    """True when the report ended the task."""
    detail = dict(instance.task_detail or {})
    if report.status == "waiting":
        detail[f"{report.role}_waiting"] = report.detail
        instance.task_detail = detail
        return False
    if report.status == "ready":
        _ready(session, instance, report, detail)
        return False
    if report.status == "aborted":
        return _aborted(session, instance, report, detail)
    if report.status in ("done", "arrived"):
        if instance.status == InstanceStatus.MIGRATING:
            finish_migration(session, instance)
        elif report.status == "done":
            end_task(instance, done=True)
            bump_hosts(session, instance.host_id)
        return True
    return _failed(session, instance, report, detail)


def _ready(session: Session, instance: Instance, report: TaskReport,
           detail: dict[str, object]) -> None:  # fmt: skip
    if (instance.status == InstanceStatus.MIGRATING and report.role == "target"
            and not detail.get("ready")):
        detail.update(ready=True, netdevs=dict(report.netdevs), target_waiting=None,
                      source_waiting=None)
        instance.task_detail = detail
        bump_hosts(session, instance.host_id)  # the source may go on


def _aborted(session: Session, instance: Instance, report: TaskReport,
             detail: dict[str, object]) -> bool:  # fmt: skip
    """The source stopped before acting, as an operator asked: back as it was."""
    if report.role != "source" or not detail.get("abort"):
        return False
    task = running_task(instance.status)
    if task is None:
        return False
    if task.kind is TaskKind.MIGRATE:
        roll_back(session, instance, "aborted by an operator")
    else:
        end_task(instance, done=False, error=f"{task.kind} aborted by an operator")
        bump_hosts(session, instance.host_id)
    return True


def _failed(session: Session, instance: Instance, report: TaskReport,
            detail: dict[str, object]) -> bool:  # fmt: skip
    error = f"{report.role} host: {report.detail or 'failed'}"
    if instance.status != InstanceStatus.MIGRATING:
        end_task(instance, done=False, error=error)
        bump_hosts(session, instance.host_id)
        return True
    if report.role == "target" and detail.get("ready"):
        detail["target_waiting"] = report.detail  # the source may be migrating already
        instance.task_detail = detail
        return False
    roll_back(session, instance, error)
    return True


def finish_migration(session: Session, instance: Instance) -> None:
    """The instance is on the destination: the incoming devices become its ports' own, the
    source's are freed, every port is bound there."""
    source, target = instance.host_id, instance.target_host_id
    assert target is not None
    session.execute(delete(Allocation).where(Allocation.instance_id == instance.id,
                                             Allocation.incoming.is_(False)))
    session.flush()  # (port_id, incoming) is unique: the old rows go first
    ports = {p.id: p for p in session.scalars(
        select(Port).where(Port.instance_id == instance.id).order_by(Port.id).with_for_update())}
    for allocation in session.scalars(select(Allocation).where(
            Allocation.instance_id == instance.id)):
        allocation.incoming = False
        port = ports[allocation.port_id]
        for column, value in (allocation.binding or {}).items():
            setattr(port, column, value)
        allocation.binding = None
    for port in ports.values():
        port.host_id = target
    instance.host_id = target
    end_task(instance, done=True)
    bump_hosts(session, source, target)
