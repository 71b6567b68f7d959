"""``/v1/instances``: boot (schedule + claim), delete (release), hot-plug and hot-unplug
ports."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from vfkeeper.controller import claims, hotplug, instances
from vfkeeper.controller.auth import require_admin, require_viewer
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import InstanceId, PortId
from vfkeeper.store.models import Instance


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/instances", tags=["instances"])
    viewer = require_viewer(ctx.auth)
    admin = require_admin(ctx.auth, "boot or delete instances")
    plug = require_admin(ctx.auth, "attach or detach ports")

    @r.post("", status_code=201, dependencies=[admin])
    def boot(body: instances.InstanceCreate) -> dict[str, Any]:
        """Every SR-IOV port becomes a PCI request; one host gets them all. 409 with a reason
        per host when nothing fits."""
        return instances.boot_instance(ctx, body)  # the claim's own view: no read-back

    @r.get("", dependencies=[viewer])
    def list_instances() -> list[dict[str, Any]]:
        with ctx.db.read() as s:
            rows = s.scalars(select(Instance).order_by(Instance.created_at, Instance.id))
            return [instances.instance_view(s, i) for i in rows]

    @r.get("/{instance_id}", dependencies=[viewer])
    def show_instance(instance_id: InstanceId) -> dict[str, Any]:
        with ctx.db.read() as s:
            return instances.instance_view(s, instances.find_instance(s, instance_id))

    @r.delete("/{instance_id}", status_code=204, dependencies=[admin])
    def delete_instance(instance_id: InstanceId) -> None:
        """Release its devices and unbind its ports (they keep their MAC/GUID)."""
        with ctx.db.write() as s:
            instances.find_instance(s, instance_id)
            claims.release(s, instance_id)

    @r.post("/{instance_id}/ports", dependencies=[plug])
    def attach_port(instance_id: InstanceId, body: hotplug.PortAttach) -> dict[str, Any]:
        """Hot-plug an unbound port: an SR-IOV port's device is claimed on the instance's own
        host (409 with the scheduler's reason for that host when it has none to give); the
        agent attaches it live. Returns the instance."""
        return hotplug.attach_port(ctx, instance_id, body)

    @r.delete("/{instance_id}/ports/{port_id}", status_code=204, dependencies=[plug])
    def detach_port(instance_id: InstanceId, port_id: PortId) -> None:
        """Hot-unplug: release the port's device and unbind it (it keeps MAC/GUID); the agent
        detaches the device and restores the VF."""
        with ctx.db.write() as s:
            hotplug.detach_port(s, instance_id, port_id)

    return r
