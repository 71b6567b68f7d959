"""Instances: boot = schedule + claim in one transaction (retried on a lost race); delete
releases everything."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from vfkeeper.controller import claims, guest_data
from vfkeeper.controller.context import Context
from vfkeeper.controller.errors import (
    ClaimRaceError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from vfkeeper.controller.fields import HostName, InstanceName, PortId
from vfkeeper.domain.lifecycle import running_task, shown_status
from vfkeeper.scheduler import (
    InstanceRequest,
    NoValidHostError,
    PciRequest,
    Placement,
)
from vfkeeper.store.models import Allocation, Device, Host, Instance, Port

DEV_TYPE = {"direct": "type-VF", "macvtap": "type-VF", "direct-physical": "type-PF"}
MAX_PORTS = 256
"""Ports one boot may name: far more than a VM holds, and a bound on the statements the claim
builds from the list (PostgreSQL takes at most 65535 parameters in one)."""
T = TypeVar("T")


class InstanceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: InstanceName
    ports: list[PortId] = Field(min_length=1, max_length=MAX_PORTS, description="Port ids.")
    numa_policy: Literal["required", "preferred", "legacy"] = "legacy"
    host: HostName | None = Field(default=None,
                                  description="Host hint: place it on this host only.")
    hostname: guest_data.Hostname | None = Field(
        default=None, description="The guest's host name (default: from the name).")
    public_keys: guest_data.PublicKeys = Field(
        default_factory=dict, description="Key name → OpenSSH public key, for the guest.")
    user_data: guest_data.UserData | None = Field(
        default=None, description="cloud-init user data, up to 64 KiB.")


def plan_boot(ports: dict[str, claims.PortRow], body: InstanceCreate, instance_id: str,
          request_ids: dict[str, str], weigher: Literal["pack", "spread"], *,
          check_addresses: bool) -> tuple[claims.BootPlan, InstanceRequest]:
    """The boot's plan and PCI requests, from its ports as read (and locked) by the claim's
    transaction (a hot-plug plans its one port the same way)."""
    missing = [p for p in body.ports if p not in ports]
    if missing:
        raise NotFoundError("port", missing[0], "create it first with POST /v1/ports")
    for pid in body.ports:
        port = ports[pid]
        if port.instance_id is not None:
            raise ConflictError(f"port {pid} is already bound to instance {port.instance_id}",
                                {"port": pid, "instance": port.instance_id})
    requests, sriov = pci_requests([ports[p] for p in body.ports], request_ids)
    plan = claims.BootPlan(instance_id, body.name, body.numa_policy, body.host,
                           tuple(body.ports), sriov, check_addresses)
    request = InstanceRequest(tuple(requests), numa_policy=body.numa_policy,
                              host_hint=body.host, weigher=weigher)
    return plan, request


def pci_requests(ports: list[claims.PortRow], request_ids: dict[str, str]
                 ) -> tuple[list[PciRequest], dict[str, str]]:  # fmt: skip
    """A PCI request per SR-IOV port (in order), and port id → request id for those."""
    requests, sriov = [], {}
    for port in ports:
        if port.vnic_type in DEV_TYPE:
            sriov[port.id] = request_ids[port.id]
            requests.append(PciRequest(sriov[port.id], port.physical_network,
                                       DEV_TYPE[port.vnic_type],  # type: ignore[arg-type]
                                       trusted=True if port.trusted else None))
    return requests, sriov


def boot_instance(ctx: Context, body: InstanceCreate) -> dict[str, Any]:
    """Schedule and claim; on a lost race re-schedule on fresh state. Returns the instance as
    :func:`instance_view` shows it (without reading it back)."""
    if len(set(body.ports)) != len(body.ports):
        raise InvalidInputError("ports", "a port is listed twice; list each port once")
    instance_id = str(uuid.uuid4())
    request_ids = claims.new_request_ids(body.ports)
    return with_claim_retries(
        ctx, lambda check: _attempt(ctx, body, instance_id, request_ids, check))


def with_claim_retries(ctx: Context, attempt: Callable[[bool], T]) -> T:
    """Run one claim ``attempt`` (one transaction) until it commits: a lost race (a stale
    placement, a retryable database error) runs it again on fresh state; a drawn MAC/GUID that
    turned out taken makes the next attempts look addresses up (``attempt(check_addresses)``).
    """
    check_addresses = False  # until a drawn MAC/GUID turns out taken
    for _ in range(ctx.settings.claim_attempts):
        try:
            with ctx.scheduling.turn():
                return attempt(check_addresses)
        except (claims.PlacementStale, IntegrityError, OperationalError) as exc:
            if isinstance(exc, OperationalError) and not _retryable(exc):
                raise
            check_addresses = check_addresses or isinstance(exc, IntegrityError)
    raise ClaimRaceError(ctx.settings.claim_attempts)


def _attempt(ctx: Context, body: InstanceCreate, instance_id: str, request_ids: dict[str, str],
             check_addresses: bool) -> dict[str, Any]:
    """One transaction: lock the ports, decide on the cached view (refreshed in it), claim."""
    placement: Placement | None = None
    done: claims.Claimed | None = None
    try:
        with ctx.db.write() as s:
            ports = claims.lock_ports(s, body.ports)
            plan, request = plan_boot(ports, body, instance_id, request_ids, ctx.settings.weigher,
                                  check_addresses=check_addresses)
            result = ctx.scheduling.schedule(request, ctx.clock(), session=s)
            if not isinstance(result, Placement):
                raise NoValidHostError(result)
            placement = result
            claimed = claims.claim(s, plan, placement, ports, ctx.addresses)
            guest_data.save(s, instance_id, body.hostname, body.public_keys, body.user_data)
        done = claimed  # committed
        return done.view
    finally:
        if placement is not None:
            ctx.scheduling.settle(placement, done.generation if done is not None else None)


def _retryable(exc: OperationalError) -> bool:
    """Serialization failure, deadlock, SQLite's lock, or a connection lost before the commit
    (the pool then replaces its connections)."""
    code = getattr(exc.orig, "sqlstate", None)
    return (code in ("40001", "40P01") or "locked" in str(exc.orig)
            or exc.connection_invalidated)


def find_instance(session: Session, key: str) -> Instance:
    instance = session.get(Instance, key)
    if instance is None:
        raise NotFoundError("instance", key, "list instances with GET /v1/instances")
    return instance


def lock_instance(session: Session, instance_id: str) -> Instance:
    """The instance, locked, after its ports. Every write that changes an instance's ports or
    hosts takes its locks in this order — ports, instance, hosts (in id order) — so two of
    them cannot deadlock (a delete takes ports then hosts)."""
    session.execute(select(Port.id).where(Port.instance_id == instance_id).order_by(Port.id)
                    .with_for_update())
    instance = session.scalar(select(Instance).where(Instance.id == instance_id)
                              .with_for_update().execution_options(populate_existing=True))
    if instance is None:
        raise NotFoundError("instance", instance_id, "list instances with GET /v1/instances")
    return instance


_HOST_NAME = select(Host.name).where(Host.id == bindparam("host"))
_ALLOCATIONS = (select(Allocation.request_id, Allocation.port_id, Device.address,
                       Allocation.incoming, Device.numa_node)
                .join(Device, Device.id == Allocation.device_id)
                .where(Allocation.instance_id == bindparam("instance"))
                .order_by(Allocation.incoming, Allocation.id))
_PORTS = (select(Port.id, Port.status).where(Port.instance_id == bindparam("instance"))
          .order_by(Port.id))


def instance_view(session: Session, instance: Instance) -> dict[str, Any]:
    conn = session.connection()
    host = (conn.execute(_HOST_NAME, {"host": instance.host_id}).scalar()
            if instance.host_id else None)  # not the Host row: it carries its inventory
    allocs = conn.execute(_ALLOCATIONS, {"instance": instance.id}).all()
    ports = conn.execute(_PORTS, {"instance": instance.id}).all()
    return {
        "id": instance.id, "name": instance.name, "host": host,
        "numa_policy": instance.numa_policy, "host_hint": instance.host_hint,
        "status": shown_status(instance.status, (status for _, status in ports)),
        "ports": [pid for pid, _ in ports],
        "allocations": [{"request_id": rid, "port_id": pid, "device": addr, "numa_node": node}
                        for rid, pid, addr, incoming, node in allocs if not incoming],
        "created_at": instance.created_at,
        **task_view(session, instance, [(pid, addr) for _, pid, addr, inc, _ in allocs if inc]),
    }


def task_view(session: Session, instance: Instance, incoming: list[tuple[str, str]]
              ) -> dict[str, Any]:  # fmt: skip
    """The running task (``None`` when there is none) and why the last one failed."""
    task = None
    if instance.task_id is not None:
        detail = instance.task_detail or {}
        target = (session.connection().execute(_HOST_NAME, {"host": instance.target_host_id})
                  .scalar() if instance.target_host_id else None)
        running = running_task(instance.status)
        task = {"id": instance.task_id, "kind": running.kind if running else None,
                "target_host": target, "target_ready": bool(detail.get("ready")),
                "incoming": [{"port_id": p, "device": a} for p, a in incoming],
                "source_waiting_for": detail.get("source_waiting"),
                "target_waiting_for": detail.get("target_waiting")}
    return {"task": task, "last_error": instance.last_error}

