"""What agents say of the instances' lifecycle tasks, and what the controller makes of it.

Each report names its task (``task_id``): a report about a task that has ended, or been
replaced, is ignored. The source host's agent reports ``waiting`` (with what for), ``done`` or
``failed``; a migration's destination reports ``waiting``, ``ready`` (its VFs programmed,
with the netdevs its macvtap ports will sit on), ``arrived`` (the domain is there, with its
UUID: an arrival naming another domain, or none, is refused and the migration goes on) or
``failed``. See :mod:`vfkeeper.controller.lifecycle` for the tasks themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller import releases
from vfkeeper.controller.claims import bump_hosts
from vfkeeper.controller.errors import NotFoundError
from vfkeeper.controller.hosts import get_host
from vfkeeper.controller.instances import lock_instance
from vfkeeper.controller.lifecycle import end_task, roll_back
from vfkeeper.domain.agent_state import TaskReport
from vfkeeper.domain.lifecycle import InstanceStatus, TaskKind, running_task
from vfkeeper.store.models import Allocation, Instance, Port


@dataclass
class Applied:
    """What the agent's task reports did: the tasks they ended, and the reports refused (with
    why: the agent logs them)."""

    ended: list[str] = field(default_factory=list)
    refused: list[dict[str, str]] = field(default_factory=list)


def apply_reports(session: Session, host_name: str, reports: tuple[TaskReport, ...]
                  ) -> Applied:  # fmt: skip
    """Apply the agent's task reports."""
    applied = Applied()
    if not reports:
        return applied
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
        refusal = _refusal(instance, report)
        if refusal is not None:
            applied.refused.append({"task_id": report.task_id, "message": refusal})
            detail = dict(instance.task_detail or {})
            detail["target_waiting"] = refusal
            instance.task_detail = detail
            continue
        if _apply(session, instance, report):
            applied.ended.append(report.task_id)
    return applied


def _refusal(instance: Instance, report: TaskReport) -> str | None:
    """Why a report cannot be taken, or None. A destination's ``arrived`` ends a migration only
    when the domain it sees is the instance's (its UUID is the instance id)."""
    if (report.status != "arrived" or instance.status != InstanceStatus.MIGRATING
            or report.domain_uuid == instance.id):
        return None
    seen = (f"a domain with UUID {report.domain_uuid}" if report.domain_uuid
            else "no domain UUID")
    return (f"arrival of instance {instance.id} refused: the destination reported {seen}, "
            f"not the instance's ({instance.id}); the migration stays in progress until the "
            "destination sees the instance's domain or the source reports done (abort it with "
            "vfkeeper instance abort if it cannot arrive)")


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
    source's are released (releasing until the source's agent gives them back), every port is
    bound there."""
    source, target = instance.host_id, instance.target_host_id
    assert target is not None
    ports = {p.id: p for p in session.scalars(
        select(Port).where(Port.instance_id == instance.id).order_by(Port.id).with_for_update())}
    bump_hosts(session, source, target)
    # (port_id, incoming) is unique: the old rows go first; the source's devices stay
    # releasing until the source's agent gives them back
    releases.free(session, releases.MIGRATED_AWAY, Allocation.instance_id == instance.id,
                  Allocation.incoming.is_(False))
    session.flush()
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
