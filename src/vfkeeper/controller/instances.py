"""Instances: boot = schedule + claim in one transaction (retried on a lost race); delete
releases everything."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vfkeeper.controller import claims
from vfkeeper.controller.context import Context
from vfkeeper.controller.errors import (
    ClaimRaceError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from vfkeeper.scheduler import (
    InstanceRequest,
    NoValidHostError,
    PciRequest,
    Placement,
)
from vfkeeper.store.models import Allocation, Device, Host, Instance, Network, Port

DEV_TYPE = {"direct": "type-VF", "macvtap": "type-VF", "direct-physical": "type-PF"}


class InstanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=255)
    ports: list[str] = Field(min_length=1, description="Port ids.")
    numa_policy: Literal["required", "preferred", "legacy"] = "legacy"
    host: str | None = Field(default=None, description="Host hint: place it on this host only.")


def _plan(session: Session, body: InstanceCreate) -> tuple[claims.BootPlan, InstanceRequest]:
    if len(set(body.ports)) != len(body.ports):
        raise InvalidInputError("ports", "a port is listed twice; list each port once")
    rows = {p.id: p for p in session.scalars(select(Port).where(Port.id.in_(body.ports)))}
    missing = [p for p in body.ports if p not in rows]
    if missing:
        raise NotFoundError("port", missing[0], "create it first with POST /v1/ports")
    requests, request_ids = [], {}
    for pid in body.ports:
        port = rows[pid]
        if port.instance_id is not None:
            raise ConflictError(f"port {pid} is already bound to instance {port.instance_id}",
                                {"port": pid, "instance": port.instance_id})
        if port.vnic_type in DEV_TYPE:
            net = session.get_one(Network, port.network_id)
            request_ids[pid] = str(uuid.uuid4())
            requests.append(PciRequest(request_ids[pid], net.physical_network,
                                       DEV_TYPE[port.vnic_type],  # type: ignore[arg-type]
                                       trusted=True if port.trusted else None))
    plan = claims.BootPlan(str(uuid.uuid4()), body.name, body.numa_policy, body.host,
                           tuple(body.ports), request_ids)
    request = InstanceRequest(tuple(requests), numa_policy=body.numa_policy,
                              host_hint=body.host)
    return plan, request


def boot(ctx: Context, body: InstanceCreate) -> str:
    """Schedule and claim; on a lost race re-schedule on fresh state. Returns the instance id."""
    with ctx.db.read() as s:
        plan, request = _plan(s, body)
    request = InstanceRequest(request.pci_requests, numa_policy=request.numa_policy,
                              host_hint=request.host_hint, weigher=ctx.settings.weigher)
    for _ in range(ctx.settings.claim_attempts):
        result = ctx.scheduling.schedule(request, ctx.clock())
        if not isinstance(result, Placement):
            raise NoValidHostError(result)
        try:
            with ctx.db.write() as s:
                generation = claims.claim(s, plan, result, ctx.addresses)
            ctx.scheduling.claimed(result, generation)
            return plan.instance_id
        except (claims.PlacementStale, IntegrityError, OperationalError) as exc:
            if isinstance(exc, OperationalError) and not _retryable(exc):
                raise
            continue
    raise ClaimRaceError(ctx.settings.claim_attempts)


def _retryable(exc: OperationalError) -> bool:
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40001", "40P01") or "locked" in str(exc.orig)


def find_instance(session: Session, key: str) -> Instance:
    instance = session.get(Instance, key)
    if instance is None:
        raise NotFoundError("instance", key, "list instances with GET /v1/instances")
    return instance


def instance_view(session: Session, instance: Instance) -> dict[str, Any]:
    host = session.get(Host, instance.host_id) if instance.host_id else None
    allocs = session.execute(
        select(Allocation, Device.address).join(Device, Device.id == Allocation.device_id)
        .where(Allocation.instance_id == instance.id)).all()
    ports = session.scalars(select(Port.id).where(Port.instance_id == instance.id)
                            .order_by(Port.id))
    return {
        "id": instance.id, "name": instance.name, "host": host.name if host else None,
        "numa_policy": instance.numa_policy, "host_hint": instance.host_hint,
        "status": instance.status, "ports": list(ports),
        "allocations": [{"request_id": a.request_id, "port_id": a.port_id, "device": addr}
                        for a, addr in allocs],
        "created_at": instance.created_at,
    }
