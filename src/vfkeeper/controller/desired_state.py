"""A host's desired state (``GET /v1/hosts/{name}/desired-state``): every device claimed
there with the settings its agent must program, and the host's part of the instances'
lifecycle tasks (:mod:`vfkeeper.controller.lifecycle`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, aliased

from vfkeeper.domain.desired_state import ClaimedPort, DesiredPort, DesiredState, DesiredTask
from vfkeeper.domain.lifecycle import (
    STAYS_PLUGGED,
    UNPLUGGED_FOR,
    InstanceStatus,
    running_task,
)
from vfkeeper.store.models import Allocation, Host, Instance, Port

__all__ = ["DesiredState", "desired_state_of"]


def _go(instance: Instance) -> bool:
    """Whether the source may go on: not asked to abort; a migration's destination ready."""
    detail = instance.task_detail or {}
    if detail.get("abort"):
        return False
    return instance.status != InstanceStatus.MIGRATING or bool(detail.get("ready"))


def _unplugged(instance: Instance, claimed: ClaimedPort, incoming: bool) -> bool:
    if (incoming or claimed.vnic_type is STAYS_PLUGGED
            or instance.status not in UNPLUGGED_FOR):
        return False
    if instance.status == InstanceStatus.RESUMING:  # plugged in once the domain is restored
        return True
    return instance.status == InstanceStatus.SUSPENDED or _go(instance)


def claimed_port(stored: dict[str, Any]) -> ClaimedPort:
    """An allocation's stored ``desired`` document as the one model (rows written before
    schema 0006 hold the VLAN as a string; the model reads it as the integer it is)."""
    return ClaimedPort.model_validate(stored)


def desired_state_of(session: Session, host: Host) -> DesiredState:
    rows = session.execute(
        select(Allocation, Instance, Port.vif_details)
        .join(Instance, Instance.id == Allocation.instance_id)
        .join(Port, Port.id == Allocation.port_id)
        .where(Allocation.host_id == host.id).order_by(Allocation.id))
    vfs = []
    for a, i, details in rows:
        claimed = claimed_port(a.desired)
        vfs.append(DesiredPort(
            **claimed.model_dump(), request_id=a.request_id, instance_id=a.instance_id,
            instance_name=i.name, profileid=(details or {}).get("profileid"),
            incoming=a.incoming, unplugged=_unplugged(i, claimed, a.incoming)))
    return DesiredState(host=host.name, generation=host.generation, vfs=tuple(vfs),
                        tasks=_tasks(session, host))


def _tasks(session: Session, host: Host) -> tuple[DesiredTask, ...]:
    source, target = aliased(Host), aliased(Host)
    rows = session.execute(
        select(Instance, source.name, target.name, target.migration_uri)
        .join(source, source.id == Instance.host_id)
        .outerjoin(target, target.id == Instance.target_host_id)
        .where(Instance.task_id.is_not(None),
               or_(Instance.host_id == host.id, Instance.target_host_id == host.id))
        .order_by(Instance.id))
    tasks = []
    for instance, source_name, target_name, uri in rows:
        detail: dict[str, Any] = instance.task_detail or {}
        task = running_task(instance.status)
        assert task is not None, f"instance {instance.id} has a task but is {instance.status}"
        if instance.host_id == host.id:
            tasks.append(DesiredTask(
                task_id=instance.task_id, kind=task.kind, role="source",
                instance_id=instance.id, instance_name=instance.name, peer_host=target_name,
                migration_uri=uri,
                ready=_go(instance) and instance.status == InstanceStatus.MIGRATING,
                abort=bool(detail.get("abort")), netdevs=detail.get("netdevs") or {}))
        else:
            tasks.append(DesiredTask(
                task_id=instance.task_id, kind=task.kind, role="target",
                instance_id=instance.id, instance_name=instance.name, peer_host=source_name))
    return tuple(tasks)
