"""``/v1/ports``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from vfkeeper.controller import ports, subnets
from vfkeeper.controller.auth import require_admin, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import InstanceId, NetworkKey, PortId
from vfkeeper.controller.instances import with_claim_retries
from vfkeeper.controller.partitions import port_partitions
from vfkeeper.store.models import Port


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/ports", tags=["ports"])
    viewer = require_viewer(ctx.auth)
    admin = require_admin(ctx.auth, "change ports")

    @r.post("", status_code=201, dependencies=[admin])
    def create_port(body: ports.PortCreate) -> dict[str, Any]:
        """A requested MAC/GUID is honoured if free (else 409); otherwise one is allocated when
        the port is bound. The port gets an IP address in each subnet of its network (the one
        asked for in ``fixed_ips``, else the lowest free one); two controllers drawing the same
        address at once is a unique-constraint failure, and the creation is tried again."""
        def attempt(_check: bool) -> dict[str, Any]:
            with ctx.db.write() as s:
                port = ports.create_port(s, body, ctx.addresses)
                return ports.port_view(port, {},
                                       fixed_ips=subnets.addresses_of(s, [port])[port.id])
        return with_claim_retries(ctx, attempt)

    @r.get("", dependencies=[viewer])
    def list_ports(
        network: NetworkKey | None = None, instance: InstanceId | None = None
    ) -> list[dict[str, Any]]:
        with ctx.db.read() as s:
            stmt = select(Port).order_by(Port.created_at, Port.id)
            if network is not None:
                stmt = stmt.where(Port.network_id == network)
            if instance is not None:
                stmt = stmt.where(Port.instance_id == instance)
            rows = list(s.scalars(stmt))
            names = ports.host_names(s, {p.host_id for p in rows if p.host_id})
            desired, actual = ports.states(s, rows)
            addresses = subnets.addresses_of(s, rows)
            parts = port_partitions(s, rows, managed=ctx.partitions.managed)
            return [ports.port_view(p, names, desired=desired.get(p.id),
                                    actual=actual.get(p.id), fixed_ips=addresses[p.id],
                                    partition=parts.get(p.id))
                    for p in rows]

    @r.get("/{port_id}", dependencies=[viewer])
    def show_port(port_id: PortId) -> dict[str, Any]:
        with ctx.db.read() as s:
            port = ports.find_port(s, port_id)
            ids = {port.host_id} if port.host_id is not None else set()
            desired, actual = ports.states(s, [port])
            return ports.port_view(port, ports.host_names(s, ids), desired=desired.get(port.id),
                                   actual=actual.get(port.id),
                                   fixed_ips=subnets.addresses_of(s, [port])[port.id],
                                   partition=port_partitions(
                                       s, [port], managed=ctx.partitions.managed).get(port.id))

    @r.delete("/{port_id}", status_code=204, dependencies=[admin])
    def delete_port(port_id: PortId) -> None:
        with ctx.db.write() as s:
            ports.delete_port(s, port_id)

    return r
