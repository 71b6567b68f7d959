"""Read views: ``/v1/pools``, ``/v1/allocations``, and a host's desired VF state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from vfkeeper.controller import hosts
from vfkeeper.controller.auth import require_host_access, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.views import pools_of
from vfkeeper.store.models import Allocation, Device, Host, Instance, Port


class DesiredVf(BaseModel):
    """One claimed device and the state its host's agent must program (``claims._bind``)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    instance_id: str
    instance_name: str
    """The agent finds the instance's libvirt domain by UUID (the instance id), else by this."""
    address: str
    parent_pf: str | None
    vf_index: int | None
    port_id: str
    vnic_type: str
    vif_type: str | None
    mac: str | None
    guid: str | None
    vlan: str | None
    pkey: str | None
    trusted: bool
    spoofchk: bool
    link_state: str
    min_tx_rate_kbps: int | None
    max_tx_rate_kbps: int | None
    mtu: int | None
    profileid: str | None = None
    """The 802.1Qbh port profile (vif_type ``802.1qbh``)."""


class DesiredState(BaseModel):
    """What a host's agent must make true; ``generation`` grows with every change."""

    model_config = ConfigDict(extra="forbid")

    host: str
    generation: int
    vfs: list[DesiredVf]


def router(ctx: Context) -> APIRouter:
    r = APIRouter(tags=["pools and allocations"])
    viewer = require_viewer(ctx.auth)

    @r.get("/v1/pools", dependencies=[viewer])
    def list_pools(host: str | None = None,
                   physical_network: str | None = None) -> list[dict[str, Any]]:
        with ctx.db.read() as s:
            stmt = select(Host).order_by(Host.name)
            if host is not None:
                stmt = stmt.where(Host.name == host)
            out = []
            for h in s.scalars(stmt):
                devices = list(s.scalars(select(Device).where(Device.host_id == h.id)))
                for pool in pools_of(devices, hosts.allocated_device_ids(s, h.id)):
                    if physical_network in (None, pool["physical_network"]):
                        out.append({"host": h.name, **pool})
            return out

    @r.get("/v1/allocations", dependencies=[viewer])
    def list_allocations(host: str | None = None,
                         instance: str | None = None) -> list[dict[str, Any]]:
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
                 "instance_id": a.instance_id, "port_id": a.port_id,
                 "device_problem": d.problem, "created_at": a.created_at}
                for a, d, name in s.execute(stmt)
            ]

    @r.get("/v1/hosts/{name}/desired-state",
           dependencies=[require_host_access(ctx.auth, "read the desired state", write=False)])
    def desired_state(name: str) -> DesiredState:
        """What the host's agent must make true: every claimed VF and its settings."""
        with ctx.db.read() as s:
            host = hosts.get_host(s, name)
            rows = s.execute(
                select(Allocation, Instance.name, Port.vif_details)
                .join(Instance, Instance.id == Allocation.instance_id)
                .join(Port, Port.id == Allocation.port_id)
                .where(Allocation.host_id == host.id).order_by(Allocation.id))
            return DesiredState(host=name, generation=host.generation, vfs=[
                DesiredVf(request_id=a.request_id, instance_id=a.instance_id,
                          instance_name=iname, profileid=(details or {}).get("profileid"),
                          **a.desired)
                for a, iname, details in rows])

    return r
