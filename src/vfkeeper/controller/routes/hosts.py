"""``/v1/hosts``: inventory intake, host views, enable/disable, delete, interfaces,
heartbeats."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from vfkeeper.controller import agent_state, hosts, releases
from vfkeeper.controller.auth import require_admin, require_host_access, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import DeviceAddress, HostName, HostReason
from vfkeeper.controller.views import host_view
from vfkeeper.store.models import Host


class HostPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field must not pass unnoticed

    enabled: bool | None = None
    disabled_reason: HostReason | None = None


class InventoryAccepted(BaseModel):
    host: str
    devices: int
    generation: int
    in_use_devices_kept: list[dict[str, Any]]


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/hosts", tags=["hosts"])
    viewer = require_viewer(ctx.auth)

    @r.get("", dependencies=[viewer])
    def list_hosts() -> list[dict[str, Any]]:
        now = ctx.clock()
        with ctx.db.read() as s:
            rows = s.scalars(select(Host).order_by(Host.name)).all()
            return [host_view(s, h, now, ctx.settings.agent_timeout_s, detail=False) for h in rows]

    @r.get("/{name}", dependencies=[require_host_access(ctx.auth, "read", write=False)])
    def show_host(name: HostName) -> dict[str, Any]:
        with ctx.db.read() as s:
            host = hosts.get_host(s, name)
            view = host_view(s, host, ctx.clock(), ctx.settings.agent_timeout_s, detail=True)
            view["agent_report"] = agent_state.host_report(s, host)
            return view

    @r.get("/{name}/interfaces",
           dependencies=[require_host_access(ctx.auth, "read", write=False)])
    def host_interfaces(name: HostName) -> list[dict[str, Any]]:
        with ctx.db.read() as s:
            return hosts.interfaces(hosts.get_host(s, name))

    @r.put("/{name}/inventory",
           dependencies=[require_host_access(ctx.auth, "write the inventory", write=True)])
    def put_inventory(name: HostName, document: Any = Body(...)) -> InventoryAccepted:
        """Store the discovery document (``vfkeeper discover --json``) of host ``name``."""
        with ctx.db.write() as s:
            host, kept = hosts.store_inventory(s, name, document, ctx.matcher_for,
                                               ctx.clock())
            agent_state.reapply_marks(s, host)
            count = len(host.inventory["devices"]) if host.inventory else 0
            return InventoryAccepted(host=name, devices=count, generation=host.generation,
                                     in_use_devices_kept=kept)

    @r.post("/{name}/heartbeat", status_code=204,
            dependencies=[require_host_access(ctx.auth, "heartbeat", write=True)])
    def heartbeat(name: HostName, body: hosts.Heartbeat | None = None) -> None:
        """The agent is alive; it may say where its host's libvirt takes migrations."""
        with ctx.db.write() as s:
            hosts.heartbeat(s, name, ctx.clock(), ctx.settings.agent_timeout_s,
                            migration_uri=body.migration_uri if body else None,
                            migration_domains=ctx.settings.migration_domains)

    @r.delete("/{name}", status_code=204, dependencies=[require_admin(ctx.auth, "delete hosts")])
    def delete_host(name: str) -> None:
        """Forget a host with its devices and its agent's reports; 409 ``in_use`` naming the
        instances while any is on it, 409 ``conflict`` naming the count while it has
        releasing devices. An agent still running there re-registers the host
        (its next heartbeat gets 404, and it sends its inventory)."""
        with ctx.db.write() as s:
            hosts.delete_host(s, name)

    @r.post("/{name}/devices/{address}/force-release",
            dependencies=[require_admin(ctx.auth, "force the release of devices")])
    def force_release(name: HostName, address: DeviceAddress) -> dict[str, Any]:
        """Free a releasing device without its host's word: the VF may still be attached to
        the old domain and keep its old MAC, VLAN or GUID. Use it only when the host is gone
        or the domain is known to be destroyed. 404: no such host or device; 409: the device
        is not releasing."""
        with ctx.db.write() as s:
            return releases.force_release(s, hosts.get_host(s, name, lock=True), address)

    @r.patch("/{name}",
             dependencies=[require_admin(ctx.auth, "enable or disable hosts")])
    def patch_host(name: HostName, patch: HostPatch) -> dict[str, Any]:
        """Enable or disable a host for scheduling (instances on it are not touched)."""
        with ctx.db.write() as s:
            host = hosts.set_enabled(s, name, patch.enabled, patch.disabled_reason)
            return host_view(s, host, ctx.clock(), ctx.settings.agent_timeout_s, detail=True)

    return r

