"""``/v1/networks``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from vfkeeper.controller import networks
from vfkeeper.controller.auth import require_admin, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import NetworkKey
from vfkeeper.controller.partitions import check_network_pkey
from vfkeeper.store.models import Network


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/networks", tags=["networks"])
    viewer = require_viewer(ctx.auth)
    admin = require_admin(ctx.auth, "change networks")

    @r.post("", status_code=201, dependencies=[admin])
    def create_network(body: networks.NetworkCreate) -> dict[str, Any]:
        """A PKey network on a partition the subnet manager lists as the operator's is
        refused (409) unless ``segmentation.shared`` is true."""
        seg = body.segmentation
        if seg.type == "pkey" and seg.id is not None:
            check_network_pkey(ctx.partitions.backend, seg.id, shared=seg.shared)
        with ctx.db.write() as s:
            return networks.network_view(networks.create_network(s, body))

    @r.get("", dependencies=[viewer])
    def list_networks() -> list[dict[str, Any]]:
        with ctx.db.read() as s:
            rows = s.scalars(select(Network).order_by(Network.name))
            return [networks.network_view(n) for n in rows]

    @r.get("/{key}", dependencies=[viewer])
    def show_network(key: NetworkKey) -> dict[str, Any]:
        """By id or name."""
        with ctx.db.read() as s:
            return networks.network_view(networks.find_network(s, key))

    @r.delete("/{key}", status_code=204, dependencies=[admin])
    def delete_network(key: NetworkKey) -> None:
        with ctx.db.write() as s:
            networks.delete_network(s, key)

    return r
