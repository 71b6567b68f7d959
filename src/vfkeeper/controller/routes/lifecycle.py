"""``/v1/instances/{id}/migrate|suspend|resume``: lifecycle tasks the agents carry out
(:mod:`vfkeeper.controller.lifecycle`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from vfkeeper.controller import instances, lifecycle
from vfkeeper.controller.auth import require_admin
from vfkeeper.controller.context import Context
from vfkeeper.controller.fields import InstanceId


def router(ctx: Context) -> APIRouter:
    r = APIRouter(prefix="/v1/instances", tags=["instances"])
    move = require_admin(ctx.auth, "migrate, suspend or resume instances")

    @r.post("/{instance_id}/migrate", status_code=202, dependencies=[move])
    def migrate(instance_id: InstanceId, body: lifecycle.MigrateRequest) -> dict[str, Any]:
        """Live-migrate to another host: reserves a device there for every SR-IOV port (409
        with that host's reason when it cannot), then the agents unplug the hostdev ports,
        migrate, plug them in on the destination (macvtap ports move as they are). Returns the
        instance, ``MIGRATING``; it is ``ACTIVE`` on the destination when done, or back
        ``ACTIVE`` where it was with ``last_error``."""
        return lifecycle.migrate(ctx, instance_id, body)

    @r.post("/{instance_id}/abort", status_code=202, dependencies=[move])
    def abort(instance_id: InstanceId) -> dict[str, Any]:
        """Give up the running task (migrate, suspend, resume): it stops wherever the source's
        agent has not acted yet, and the instance is back as it was, with ``last_error``
        saying so (a migration whose destination is not ready ends at once). 409 when no task
        runs."""
        with ctx.db.write() as s:
            lifecycle.abort(s, instance_id)
            return instances.instance_view(s, instances.find_instance(s, instance_id))

    @r.post("/{instance_id}/suspend", status_code=202, dependencies=[move])
    def suspend(instance_id: InstanceId,
                body: lifecycle.SuspendRequest | None = None) -> dict[str, Any]:
        """Save the instance (libvirt managed save): its passthrough ports are unplugged
        across it and keep their devices (or, with ``detach_devices=false``, 409 naming
        them). ``SUSPENDING``, then ``SUSPENDED``."""
        with ctx.db.write() as s:
            lifecycle.suspend(s, instance_id, body or lifecycle.SuspendRequest())
            return instances.instance_view(s, instances.find_instance(s, instance_id))

    @r.post("/{instance_id}/resume", status_code=202, dependencies=[move])
    def resume(instance_id: InstanceId) -> dict[str, Any]:
        """Restore a suspended instance and plug its ports back in. ``RESUMING``, then
        ``ACTIVE``."""
        with ctx.db.write() as s:
            lifecycle.resume(s, instance_id)
            return instances.instance_view(s, instances.find_instance(s, instance_id))

    return r
