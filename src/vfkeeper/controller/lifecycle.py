"""Instance lifecycle tasks: live migration, suspend and resume (``/v1/instances/{id}/…``).

The controller orchestrates; the hosts' agents do the work and say how far they got in their
actual-state reports (:mod:`vfkeeper.controller.task_reports` takes those). libvirt can neither
migrate nor save a domain that holds a PCI function, so (as oVirt and KubeVirt do) a task
unplugs the instance's passthrough devices first and plugs them back after:

**Migrate** (``ACTIVE`` → ``MIGRATING`` → ``ACTIVE`` on the destination):

1. This request reserves a device on the destination for every SR-IOV port of the instance
   (the scheduler places them there, under the instance's NUMA policy; 409 with the
   destination's reason when it cannot): ``incoming`` allocations, next to the ports' own.
2. The destination's agent programs the reserved VFs and says ``ready`` (with the netdevs of
   the VFs its macvtap ports will sit on).
3. The source's agent then unplugs the instance's hostdev-type ports (their VFs restored; the
   claims stay), and migrates the domain, its macvtap interfaces rewritten onto the
   destination's VFs (macvtap moves as it is: no unplug).
4. When the source says ``done`` — or the destination sees the domain arrive (by its UUID,
   which it reports: an arrival naming another domain is refused), whichever comes first (a
   source that died after migrating cannot say it) — the incoming devices become the ports'
   own, the source's are released (releasing until the source's agent gives them back,
   :mod:`vfkeeper.controller.releases`), and the destination's agent plugs the hostdev ports
   in.

A refusal on the way (the destination cannot program a VF, libvirt refuses the migration) rolls
it back: the reservation is released and the source plugs its ports back in. An operator may abort
any task (:func:`abort`): it stops wherever the source's agent has not acted yet.

**Suspend** (``ACTIVE`` → ``SUSPENDING`` → ``SUSPENDED``): the agent unplugs the hostdev-type
ports (their devices stay claimed for the instance) and saves the domain (libvirt's managed
save). **Resume** (``SUSPENDED`` → ``RESUMING`` → ``ACTIVE``): it restores the domain, then
plugs the ports back in. With ``detach_devices=false`` a suspend is refused instead, naming the
ports that would have to be unplugged.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller import claims, instances, releases
from vfkeeper.controller.context import Context
from vfkeeper.controller.errors import ConflictError, InvalidInputError
from vfkeeper.controller.fields import HostName, column_length
from vfkeeper.controller.hosts import agent_alive, get_host
from vfkeeper.controller.hotplug import narrowed
from vfkeeper.domain.lifecycle import (
    RUNNING,
    STAYS_PLUGGED,
    TASKS,
    InstanceStatus,
    TaskKind,
    running_task,
)
from vfkeeper.domain.text import clip
from vfkeeper.scheduler import InstanceRequest, NoValidHostError, Placement
from vfkeeper.store.models import Allocation, Host, Instance, Port

LAST_ERROR_MAX = column_length(Instance.last_error)

class MigrateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: HostName = Field(description="The destination host.")


class SuspendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    detach_devices: bool = Field(
        default=True, description="Unplug the passthrough ports across the save (libvirt "
        "cannot save a domain holding them); false: refuse instead, naming them.")


def require_can_start(instance: Instance, kind: TaskKind) -> None:
    """409 unless the instance is in the status task ``kind`` starts from."""
    wanted = TASKS[kind].starts_from
    if instance.status != wanted:
        raise ConflictError(
            f"cannot {kind} instance {instance.id}: it is {instance.status}, and only "
            f"{'an' if wanted[0] in 'AEIOU' else 'a'} {wanted} instance can be; see where it "
            f"stands with vfkeeper instance show {instance.id}",
            {"instance": instance.id, "status": instance.status})


def start_task(instance: Instance, kind: TaskKind, target_host_id: int | None = None) -> None:
    require_can_start(instance, kind)
    instance.status = TASKS[kind].running
    instance.task_id = str(uuid.uuid4())
    instance.target_host_id = target_host_id
    instance.task_detail = {"ready": False}
    instance.last_error = None


def roll_back(session: Session, instance: Instance, error: str) -> None:
    """End a migration where it started: free the reservation; the source plugs back in."""
    target = instance.target_host_id
    claims.bump_hosts(session, instance.host_id, target)
    releases.free(session, releases.MIGRATION_ROLLED_BACK, Allocation.instance_id == instance.id,
                  Allocation.incoming.is_(True))
    end_task(instance, done=False, error=f"migration failed: {error}")


def end_task(instance: Instance, *, done: bool, error: str | None = None) -> None:
    """End the running task: the instance takes the status the task ends in (``done``) or
    goes back where it started (failed or aborted, with ``error``)."""
    task = running_task(instance.status)
    assert task is not None, f"instance {instance.id} runs no task ({instance.status})"
    instance.status = task.done if done else task.undone
    instance.task_id = None
    instance.target_host_id = None
    instance.task_detail = None
    instance.last_error = None if error is None else clip(error, LAST_ERROR_MAX)


# --- migrate -------------------------------------------------------------------------------------


def migrate(ctx: Context, instance_id: str, body: MigrateRequest) -> dict[str, Any]:
    """Reserve on the destination (retried on a lost race, as a boot is) and start the task."""
    request_ids: dict[str, str] = {}
    instances.with_claim_retries(
        ctx, lambda _check: _reserve(ctx, instance_id, body.host, request_ids))
    with ctx.db.read() as s:
        return instances.instance_view(s, instances.find_instance(s, instance_id))


def _destination(ctx: Context, session: Session, instance: Instance, name: str) -> Host:
    """The destination, if it may take the instance (the scheduler checks it again for the
    devices; an instance without SR-IOV ports meets only these checks)."""
    host = get_host(session, name)
    if host.id == instance.host_id:
        raise InvalidInputError("host", f"instance {instance.id} is already on host {name}; "
                                "name another host")
    if not host.enabled:
        why = host.disabled_reason or "no reason given"
        raise ConflictError(f"host {name} is disabled ({why}); enable it (vfkeeper host "
                            "enable) or name another host", {"host": name})
    if not agent_alive(host.last_seen_at, ctx.clock(), ctx.settings.agent_timeout_s):
        raise ConflictError(f"host {name}'s agent is silent: nothing there would take the "
                            "instance; start the agent or name another host", {"host": name})
    if not host.migration_uri:
        raise ConflictError(
            f"host {name}'s agent has not told the controller where libvirt takes migrations; "
            "start it (vfkeeper agent, --migration-uri) and try again",
            {"host": name})
    return host


def _reserve(ctx: Context, instance_id: str, target: str, request_ids: dict[str, str]) -> None:
    """One transaction: lock the instance and its ports, place their devices on the
    destination, claim them as ``incoming``, start the task."""
    scheduled: Placement | None = None
    generation: int | None = None
    try:
        with ctx.db.write() as s:
            instance = instances.lock_instance(s, instance_id)
            require_can_start(instance, TaskKind.MIGRATE)
            host = _destination(ctx, s, instance, target)
            port_ids = sorted(s.scalars(select(Port.id).where(Port.instance_id == instance_id)))
            ports = claims.lock_ports(s, port_ids)
            for pid in port_ids:
                request_ids.setdefault(pid, str(uuid.uuid4()))
            requests, sriov = instances.pci_requests([ports[p] for p in port_ids], request_ids)
            claims.bump_hosts(s, instance.host_id, host.id)  # both host locks, in id order
            if requests:
                request = InstanceRequest(tuple(requests),
                                          numa_policy=instance.numa_policy,  # type: ignore[arg-type]
                                          host_hint=target, weigher=ctx.settings.weigher)
                result = ctx.scheduling.schedule(request, ctx.clock(), session=s)
                if not isinstance(result, Placement):
                    raise NoValidHostError(narrowed(result, target))
                scheduled = result
                plan = claims.BootPlan(instance_id, instance.name, instance.numa_policy, target,
                                       tuple(sriov), sriov, existing=True, incoming=True)
                generation = claims.claim(s, plan, scheduled, ports, ctx.addresses).generation
            start_task(instance, TaskKind.MIGRATE, host.id)
    finally:
        if scheduled is not None:
            ctx.scheduling.settle(scheduled, generation)


def abort(session: Session, instance_id: str) -> None:
    """Give up the running task. A migration whose destination is not ready yet ends at once
    (the source has not started). Otherwise the source's agent is asked to stop: it answers
    ``aborted`` if it had not migrated, saved or restored the domain yet (the instance is then
    back where it was, its ports plugged in), or ``done`` if it had (the task then ends as
    done: the abort came too late)."""
    instance = instances.lock_instance(session, instance_id)
    if instance.status not in RUNNING:
        raise ConflictError(
            f"instance {instance_id} is {instance.status}: no task is running to abort",
            {"instance": instance_id, "status": instance.status})
    detail = dict(instance.task_detail or {})
    if instance.status == InstanceStatus.MIGRATING and not detail.get("ready"):
        roll_back(session, instance, "aborted by an operator")
        return
    detail["abort"] = True
    instance.task_detail = detail
    claims.bump_hosts(session, instance.host_id)


# --- suspend and resume --------------------------------------------------------------------------


def _passthrough_ports(session: Session, instance_id: str) -> list[tuple[str, str]]:
    rows = session.execute(select(Port.id, Port.vnic_type).where(
        Port.instance_id == instance_id, Port.vnic_type.in_(instances.DEV_TYPE),
        Port.vnic_type != STAYS_PLUGGED).order_by(Port.id))
    return [(pid, vnic) for pid, vnic in rows]


def suspend(session: Session, instance_id: str, body: SuspendRequest) -> None:
    instance = instances.lock_instance(session, instance_id)
    require_can_start(instance, TaskKind.SUSPEND)
    held = _passthrough_ports(session, instance_id)
    if held and not body.detach_devices:
        names = ", ".join(f"{pid} ({vnic})" for pid, vnic in held)
        raise ConflictError(
            f"instance {instance_id} holds passthrough ports libvirt cannot save: {names}; "
            "suspend with detach_devices=true (vfkeeper instance suspend without "
            "--no-detach) to unplug them across the save, or detach them first "
            "(vfkeeper instance detach-port)",
            {"instance": instance_id, "ports": [pid for pid, _ in held]})
    start_task(instance, TaskKind.SUSPEND)
    claims.bump_hosts(session, instance.host_id)


def resume(session: Session, instance_id: str) -> None:
    instance = instances.lock_instance(session, instance_id)
    start_task(instance, TaskKind.RESUME)
    claims.bump_hosts(session, instance.host_id)
