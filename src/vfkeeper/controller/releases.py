"""Releasing devices: a device the controller freed is not free until its host says so.

Deleting an instance, unplugging a port, a migration's source after the move and a rolled-back
reservation on a destination all delete allocations; the domain on the host may still hold the
device (with the MAC, VLAN or GUID it was given) until that host's agent detaches it and
restores its original settings. So every place that frees allocations does it through
:func:`free`, which writes one ``device_releases`` row per device in the same transaction:

* a device with a release row is never handed out (:func:`releasing_device_ids` is what the
  claim, the pools and the scheduling cache read, next to the allocations);
* the row goes only when that host's agent reports, for a desired state at least as new as
  the release (``generation``), without listing the device as still held (:func:`clear`): a
  host whose agent is silent keeps its releasing devices until it is back;
* or when an admin forces it (:func:`force_release`), knowing what it risks.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import ConflictError, NotFoundError
from vfkeeper.controller.partitions import PENDING_REMOVE
from vfkeeper.store.models import Allocation, Device, DeviceRelease, Host, utcnow
from vfkeeper.store.partition_models import PartitionMembership

INSTANCE_DELETED = "instance deleted"
PORT_UNPLUGGED = "port unplugged"
MIGRATED_AWAY = "migrated away"
MIGRATION_ROLLED_BACK = "migration rolled back"

FORCE_RISK = (
    "the VF may still be attached to the old domain and keep its old MAC, VLAN or GUID; the "
    "next instance given it could then share them. Use it only when the host is gone or the "
    "domain is known to be destroyed")


def free(session: Session, reason: str, *where: ColumnElement[bool]) -> int:
    """Delete the allocations matching ``where`` and record their devices as releasing.

    Call it after the hosts' generations were bumped in this transaction
    (:func:`vfkeeper.controller.claims.bump_hosts`): each row keeps its host's generation as
    the transaction leaves it, which no desired state still listing the allocation can have.
    Returns how many devices were freed."""
    rows = session.execute(select(Allocation.id, Allocation.device_id, Allocation.host_id,
                                  Allocation.port_id, Allocation.instance_id)
                           .where(*where).order_by(Allocation.id)).all()
    if not rows:
        return 0
    session.execute(delete(Allocation).where(Allocation.id.in_([r.id for r in rows])))
    hosts = {r.host_id for r in rows}
    generations: dict[int, int] = {
        host_id: generation for host_id, generation in
        session.execute(select(Host.id, Host.generation).where(Host.id.in_(hosts)))}
    now = utcnow()
    session.execute(insert(DeviceRelease), [
        {"device_id": r.device_id, "host_id": r.host_id, "port_id": r.port_id,
         "instance_id": r.instance_id, "generation": generations[r.host_id],
         "reason": reason, "released_at": now} for r in rows])
    return len(rows)


def releasing_device_ids(session: Session, host_id: int) -> set[int]:
    return set(session.scalars(select(DeviceRelease.device_id)
                               .where(DeviceRelease.host_id == host_id)))


def held_device_ids(session: Session, host_id: int) -> set[int]:
    """Devices of the host that are not free to go: allocated or releasing."""
    allocated = set(session.scalars(select(Allocation.device_id)
                                    .where(Allocation.host_id == host_id)))
    return allocated | releasing_device_ids(session, host_id)


def clear(session: Session, host: Host, desired_generation: int, held: Collection[str]) -> int:
    """The host's agent answered ``desired_generation`` and still holds the addresses
    ``held``: forget the releases it has seen through and no longer holds. Returns how many
    were cleared (the caller moves the host's generation when any was).

    A VF whose port's GUID is still leaving a partition (the subnet manager has not confirmed
    the removal) stays releasing too, whatever the agent says: issue 11 wants the GUID out of
    the partition before the GUID *or the VF* goes to anyone else. A later report clears it."""
    leaving = (select(PartitionMembership.port_id)
               .where(PartitionMembership.state == PENDING_REMOVE,
                      PartitionMembership.port_id.is_not(None)))
    rows = session.execute(
        select(DeviceRelease.id, Device.address)
        .join(Device, Device.id == DeviceRelease.device_id)
        .where(DeviceRelease.host_id == host.id,
               DeviceRelease.generation <= desired_generation,
               DeviceRelease.port_id.not_in(leaving))).all()
    done = [r.id for r in rows if r.address not in held]
    if done:
        session.execute(delete(DeviceRelease).where(DeviceRelease.id.in_(done)),
                        execution_options={"synchronize_session": False})
    return len(done)


def releasing_view(session: Session, host_id: int) -> list[dict[str, Any]]:
    """The host's releasing devices, as ``GET /v1/hosts/{name}`` shows them."""
    rows = session.execute(
        select(DeviceRelease, Device.address).join(Device, Device.id == DeviceRelease.device_id)
        .where(DeviceRelease.host_id == host_id).order_by(Device.address)).all()
    return [_view(r, address) for r, address in rows]


def _view(row: DeviceRelease, address: str) -> dict[str, Any]:
    released_at: datetime = row.released_at
    return {"address": address, "port_id": row.port_id, "instance_id": row.instance_id,
            "reason": row.reason, "generation": row.generation, "released_at": released_at}


def force_release(session: Session, host: Host, address: str) -> dict[str, Any]:
    """An admin says the device is free (the host is gone, or the domain is destroyed)."""
    device = session.scalar(select(Device).where(Device.host_id == host.id,
                                                 Device.address == address))
    if device is None:
        raise NotFoundError("device", address,
                            f"list the devices of host {host.name} with vfkeeper host show "
                            f"{host.name}")
    row = session.scalar(select(DeviceRelease).where(DeviceRelease.device_id == device.id))
    if row is None:
        raise ConflictError(
            f"device {address} of host {host.name} is not releasing: there is nothing to "
            "force (see vfkeeper host show)", {"host": host.name, "address": address})
    view = _view(row, address)
    session.delete(row)
    host.generation += 1  # every scheduling view re-reads the host
    session.flush()
    return {"host": host.name, **view, "forced": True, "risk": FORCE_RISK}
