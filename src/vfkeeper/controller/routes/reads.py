"""Read views: ``/v1/pools``, ``/v1/allocations``, and a host's desired VF state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from vfkeeper.controller import hosts
from vfkeeper.controller.auth import require_host_access, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.desired_state import DesiredState, desired_state_of
from vfkeeper.controller.fields import HostName, InstanceId, Physnet
from vfkeeper.controller.releases import releasing_device_ids
from vfkeeper.controller.views import pools_of
from vfkeeper.store.models import Allocation, Device, Host


def router(ctx: Context) -> APIRouter:
    r = APIRouter(tags=["pools and allocations"])
    viewer = require_viewer(ctx.auth)

    @r.get("/v1/pools", dependencies=[viewer])
    def list_pools(host: HostName | None = None,
                   physical_network: Physnet | None = None) -> list[dict[str, Any]]:
        with ctx.db.read() as s:
            stmt = select(Host).order_by(Host.name)
            if host is not None:
                stmt = stmt.where(Host.name == host)
            out = []
            for h in s.scalars(stmt):
                devices = list(s.scalars(select(Device).where(Device.host_id == h.id)))
                for pool in pools_of(devices, hosts.allocated_device_ids(s, h.id),
                                     releasing_device_ids(s, h.id)):
                    if physical_network in (None, pool["physical_network"]):
                        out.append({"host": h.name, **pool})
            return out

    @r.get("/v1/allocations", dependencies=[viewer])
    def list_allocations(host: HostName | None = None,
                         instance: InstanceId | None = None) -> list[dict[str, Any]]:
        with ctx.db.read() as s:
            stmt = (select(Allocation, Device, Host.name)
                    .join(Device, Device.id == Allocation.device_id)
                    .join(Host, Host.id == Allocation.host_id)
                    .order_by(Host.name, Device.address))
            if host is not None:
                stmt = stmt.where(Host.name == host)
            if instance is not None:
                stmt = stmt.where(Allocation.instance_id == instance)
            return [
                {"request_id": a.request_id, "host": name, "device": d.address,
                 "dev_type": d.dev_type, "parent_pf": d.parent_addr,
                 "physical_network": d.physical_network, "numa_node": d.numa_node,
                 "instance_id": a.instance_id, "port_id": a.port_id, "incoming": a.incoming,
                 "device_problem": d.problem, "created_at": a.created_at}
                for a, d, name in s.execute(stmt)
            ]

    @r.get("/v1/hosts/{name}/desired-state",
           dependencies=[require_host_access(ctx.auth, "read the desired state", write=False)])
    def desired_state(name: HostName) -> DesiredState:
        """What the host's agent must make true: every claimed VF and its settings, and its
        part of the instances' lifecycle tasks."""
        with ctx.db.read(snapshot=True) as s:  # its queries must agree with each other
            return desired_state_of(s, hosts.get_host(s, name))

    return r
