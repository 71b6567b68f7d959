"""``/v1/device-specs`` (cluster-wide) and ``/v1/hosts/{name}/device-specs`` (overrides)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vfkeeper.controller import specs
from vfkeeper.controller.auth import require_admin, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import HostName


def router(ctx: Context) -> APIRouter:
    r = APIRouter(tags=["device specs"])
    viewer = require_viewer(ctx.auth)
    admin = require_admin(ctx.auth, "change device specs")

    @r.get("/v1/device-specs", dependencies=[viewer])
    def get_specs() -> dict[str, Any]:
        with ctx.db.read() as s:
            return specs.all_specs(s)

    @r.put("/v1/device-specs", dependencies=[admin])
    def put_cluster_specs(body: specs.SpecEntries) -> dict[str, Any]:
        """Replace the cluster's specs; re-applies them to every host without an override and
        reports in-use devices they no longer select (kept, marked)."""
        with ctx.db.write() as s:
            return specs.set_cluster_specs(s, body.entries)

    @r.put("/v1/hosts/{name}/device-specs", dependencies=[admin])
    def put_host_specs(name: HostName, body: specs.SpecEntries) -> dict[str, Any]:
        with ctx.db.write() as s:
            return specs.set_host_specs(s, name, body.entries)

    @r.delete("/v1/hosts/{name}/device-specs", dependencies=[admin])
    def delete_host_specs(name: HostName) -> dict[str, Any]:
        """Drop the override: the host follows the cluster's specs again."""
        with ctx.db.write() as s:
            return specs.set_host_specs(s, name, None)

    return r
