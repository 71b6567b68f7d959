"""``/v1/networks/{key}/subnets``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vfkeeper.controller import subnets
from vfkeeper.controller.auth import require_admin, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import NetworkKey
from vfkeeper.controller.networks import find_network


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/networks/{key}/subnets", tags=["subnets"])
    viewer = require_viewer(ctx.auth)
    admin = require_admin(ctx.auth, "change subnets")

    @r.post("", status_code=201, dependencies=[admin])
    def create_subnet(key: NetworkKey, body: subnets.SubnetCreate) -> dict[str, Any]:
        """A subnet of the network (by id or name). Ports created from now on get an address
        in it; ports that exist keep the addresses they have."""
        with ctx.db.write() as s:
            return subnets.subnet_view(subnets.create_subnet(s, key, body), 0)

    @r.get("", dependencies=[viewer])
    def list_subnets(key: NetworkKey) -> list[dict[str, Any]]:
        with ctx.db.read() as s:
            rows = subnets.subnets_of(s, find_network(s, key).id)
            counts = subnets.allocated_counts(s, [row.id for row in rows])
            return [subnets.subnet_view(row, counts.get(row.id, 0)) for row in rows]

    @r.get("/{subnet}", dependencies=[viewer])
    def show_subnet(key: NetworkKey, subnet: subnets.SubnetKey) -> dict[str, Any]:
        """By id or name."""
        with ctx.db.read() as s:
            row = subnets.find_subnet(s, key, subnet)
            return subnets.subnet_view(row, subnets.allocated_counts(s, [row.id]).get(row.id, 0))

    @r.delete("/{subnet}", status_code=204, dependencies=[admin])
    def delete_subnet(key: NetworkKey, subnet: subnets.SubnetKey) -> None:
        """Refused (409) while ports hold addresses in it."""
        with ctx.db.write() as s:
            subnets.delete_subnet(s, key, subnet)

    return r
