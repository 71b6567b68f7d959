"""Hot-plug and hot-unplug of ports on an instance that exists (``/v1/instances/{id}/ports``).

Attach plans the port as a boot plans its ports (:func:`vfkeeper.controller.instances.plan_boot`):
an SR-IOV port becomes a PCI request that the scheduler must place on the instance's own host
(a host hint), under the instance's NUMA policy, and :func:`vfkeeper.controller.claims.claim`
claims it in one transaction (``BootPlan.existing``: the instance is added to, not created). A
``normal`` port is bound to the instance and its host with no device (the host must still be
enabled, with a live agent, as for a boot). Detach is
:func:`vfkeeper.controller.claims.release` of that one port. The host's agent, level-triggered,
then attaches or detaches the device live.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from vfkeeper.controller import claims, instances
from vfkeeper.controller.context import Context
from vfkeeper.controller.errors import ConflictError, NotFoundError
from vfkeeper.controller.fields import PortId
from vfkeeper.controller.ports import find_port
from vfkeeper.domain.lifecycle import InstanceStatus
from vfkeeper.scheduler import NoValidHost, NoValidHostError, Placement
from vfkeeper.store.models import Allocation, Device, Host, Instance


class PortAttach(BaseModel):
    model_config = ConfigDict(extra="forbid")

    port_id: PortId = Field(description="An unbound port's id.")


class _Target(NamedTuple):
    name: str
    numa_policy: str
    host_hint: str | None
    host: str


_INSTANCE = (select(Instance.name, Instance.numa_policy, Instance.host_hint, Host.name,
                    Instance.status)
             .outerjoin(Host, Host.id == Instance.host_id)
             .where(Instance.id == bindparam("id")))
_INSTANCE_LOCKED = _INSTANCE.with_for_update(of=Instance.__table__)
_NODES = (select(Device.numa_node).join(Allocation, Allocation.device_id == Device.id)
          .where(Allocation.instance_id == bindparam("id"), Device.numa_node.is_not(None),
                 Allocation.incoming.is_(False))
          .order_by(Allocation.id))


def _target(session: Session, instance_id: str) -> _Target:
    row = session.connection().execute(_INSTANCE_LOCKED, {"id": instance_id}).one_or_none()
    if row is None:
        raise NotFoundError("instance", instance_id, "list instances with GET /v1/instances")
    name, numa_policy, host_hint, host, status = row
    require_settled(instance_id, status)
    if host is None:
        raise ConflictError(f"instance {instance_id} is on no host; boot it again",
                            {"instance": instance_id})
    return _Target(name, numa_policy, host_hint, host)


def require_settled(instance_id: str, status: str) -> None:
    """Ports are plugged and unplugged only while no lifecycle task runs on the instance."""
    if status != InstanceStatus.ACTIVE:
        raise ConflictError(
            f"instance {instance_id} is {status}: ports are attached and detached only while it "
            "is ACTIVE; wait for its task to end (vfkeeper instance show), or resume it",
            {"instance": instance_id, "status": status})


def _numa_node(session: Session, instance_id: str, policy: str) -> int | None:
    """The NUMA node the new device must (``required``) or should (``preferred``) be on: that of
    the instance's devices. ``legacy`` placed the boot without a node, and so does a hot-plug."""
    if policy not in ("required", "preferred"):
        return None
    node: int | None = session.connection().execute(_NODES, {"id": instance_id}).scalar()
    return node


def narrowed(result: NoValidHost, host: str) -> NoValidHost:
    """The scheduler's explanation narrowed to ``host`` (the one a request was pinned to)."""
    mine = tuple(r for r in result.rejections if r.host == host)
    return NoValidHost(mine or result.rejections, result.problem)


def attach_port(ctx: Context, instance_id: str, body: PortAttach) -> dict[str, Any]:
    """Claim (retried on a lost race, as a boot is) and return the instance as it now is."""
    request_ids = claims.new_request_ids([body.port_id])
    instances.with_claim_retries(
        ctx, lambda check: _attempt(ctx, instance_id, body.port_id, request_ids, check))
    with ctx.db.read() as s:
        return instances.instance_view(s, instances.find_instance(s, instance_id))


def _attempt(ctx: Context, instance_id: str, port_id: str, request_ids: dict[str, str],
             check_addresses: bool) -> None:
    """One transaction: read the instance, lock the port, place it on the instance's host,
    claim through the one claim path."""
    scheduled: Placement | None = None
    generation: int | None = None
    try:
        with ctx.db.write() as s:
            ports = claims.lock_ports(s, [port_id])
            target = _target(s, instance_id)  # locks the instance: no task starts meanwhile
            body = instances.InstanceCreate(name=target.name, ports=[port_id],
                                            numa_policy=target.numa_policy,
                                            host=target.host)
            plan, request = instances.plan_boot(ports, body, instance_id, request_ids,
                                                ctx.settings.weigher,
                                                check_addresses=check_addresses)
            plan = dataclasses.replace(plan, existing=True, host_hint=target.host_hint)
            request = dataclasses.replace(
                request, instance_numa_node=_numa_node(s, instance_id, target.numa_policy))
            result = ctx.scheduling.schedule(request, ctx.clock(), session=s)
            if not isinstance(result, Placement):
                raise NoValidHostError(narrowed(result, target.host))
            scheduled = result
            done = claims.claim(s, plan, scheduled, ports, ctx.addresses)
        generation = done.generation  # committed
    finally:
        if scheduled is not None:
            ctx.scheduling.settle(scheduled, generation)


def detach_port(session: Session, instance_id: str, port_id: str) -> None:
    """Release the port's device and unbind it (it keeps MAC/GUID); the instance stays."""
    port = find_port(session, port_id, lock=True)
    instance = instances.lock_instance(session, instance_id)
    require_settled(instance_id, instance.status)
    if port.instance_id != instance_id:
        where = (f"it is attached to instance {port.instance_id}" if port.instance_id
                 else "it is not attached to any instance")
        raise ConflictError(
            f"port {port_id} is not attached to instance {instance_id}: {where}; see the "
            f"instance's ports with GET /v1/instances/{instance_id}",
            {"port": port_id, "instance": instance_id, "attached_to": port.instance_id})
    claims.release(session, instance_id, (port_id,))
