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
from vfkeeper.controller.lifecycle import end_task
from vfkeeper.domain.agent_state import TaskReport
from vfkeeper.store.models import Allocation, Host, Instance, Port

_AFTER = {
    # status while running: (status when done, status when failed)
    "MIGRATING": ("ACTIVE", "ACTIVE"),
    "SUSPENDING": ("SUSPENDED", "ACTIVE"),
    "RESUMING": ("ACTIVE", "SUSPENDED"),
}


def apply_reports(session: Session, host: Host, reports: tuple[TaskReport, ...]) -> list[str]:
    """Apply the agent's task reports; returns the ids of the tasks it ended."""
    ended = []
    for report in reports:
        instance = session.scalar(select(Instance).where(Instance.id == report.instance_id)
                                  .with_for_update())
        if instance is None or instance.task_id != report.task_id:
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
    migrating = instance.status == "MIGRATING"
    if report.status == "waiting":
        detail[f"{report.role}_waiting"] = report.detail
    elif report.status == "ready" and migrating and report.role == "target":
        if not detail.get("ready"):
            detail.update(ready=True, netdevs=dict(report.netdevs), target_waiting=None)
            bump_hosts(session, instance.host_id)  # the source may go on
    elif report.status in ("done", "arrived") and migrating:
        finish_migration(session, instance)
        return True
    elif report.status == "done":
        end_task(instance, _AFTER[instance.status][0])
        bump_hosts(session, instance.host_id)
        return True
    elif report.status == "failed":
        return _failed(session, instance, report, detail)
    instance.task_detail = detail
    return False


def _failed(session: Session, instance: Instance, report: TaskReport,
            detail: dict[str, object]) -> bool:  # fmt: skip
    error = f"{report.role} host: {report.detail or 'failed'}"
    if instance.status != "MIGRATING":
        end_task(instance, _AFTER[instance.status][1], error)
        bump_hosts(session, instance.host_id)
        return True
    if report.role == "target" and detail.get("ready"):
        detail["target_waiting"] = report.detail  # the source may be migrating already
        instance.task_detail = detail
        return False
    roll_back(session, instance, error)
    return True


def roll_back(session: Session, instance: Instance, error: str) -> None:
    """End a migration where it started: free the reservation; the source plugs back in."""
    target = instance.target_host_id
    session.execute(delete(Allocation).where(Allocation.instance_id == instance.id,
                                             Allocation.incoming.is_(True)))
    end_task(instance, "ACTIVE", f"migration failed: {error}")
    bump_hosts(session, instance.host_id, target)


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
    end_task(instance, "ACTIVE")
    bump_hosts(session, source, target)
