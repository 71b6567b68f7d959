"""Hosts: inventory intake, device rows, enable/disable, agent liveness, the interfaces view.

An inventory PUT replaces the host's device rows with what the agent saw. A device that has
vanished (or that no device spec selects any more) but is held by an allocation is kept, marked
with a ``problem``, and reported: the allocation stays valid until its instance is deleted.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import (
    ConflictError,
    InUseError,
    InvalidInputError,
    NotFoundError,
)
from vfkeeper.controller.fields import invalid, require_storable
from vfkeeper.controller.releases import releasing_device_ids
from vfkeeper.domain import inventory as inv
from vfkeeper.domain import inventory_rules
from vfkeeper.domain.errors import InvalidMigrationUriError
from vfkeeper.domain.migration import check_migration_uri
from vfkeeper.store.models import Allocation, Device, Host, Instance, utcnow

# Version 2 only added optional fields (vpd_serial, sriov_vf_device): agents of the release before
# still report version 1, which reads as version 2 with those fields null.
ACCEPTED_SCHEMA_VERSIONS = (1, inv.SCHEMA_VERSION)


@dataclass(frozen=True)
class Assignment:
    """What the device specs make of one device: its physical network and tags."""

    physical_network: str
    tags: dict[str, str]


class Matcher(Protocol):
    """The device specs in force on one host."""

    def assign(self, device: inv.Device) -> Assignment | None:
        """The device's assignment, or ``None`` when no spec selects it."""


def parse_inventory(name: str, document: Any) -> inv.HostInventory:
    """Validate an agent's inventory document for host ``name``: its schema version, its types,
    then the rules of :mod:`vfkeeper.domain.inventory_rules`; a 422 lists every problem."""
    if not isinstance(document, dict):
        raise InvalidInputError("body", "the inventory must be a JSON object")
    require_storable(document)
    version = document.get("schema_version")
    if type(version) is not int or version not in ACCEPTED_SCHEMA_VERSIONS:
        accepted = ", ".join(map(str, ACCEPTED_SCHEMA_VERSIONS))
        raise InvalidInputError(
            "schema_version",
            f"inventory schema version {version!r} is not accepted (accepted: {accepted}, as a "
            "JSON integer); run an agent of a matching vfkeeper version",
            {"given": version, "accepted": list(ACCEPTED_SCHEMA_VERSIONS)},
        )
    try:
        inventory = inv.HostInventory.model_validate(document)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "message": e["msg"]} for e in exc.errors()]
        where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['message']}" for e in errors[:5])
        raise InvalidInputError("inventory", where, {"errors": errors}) from exc
    problems = inventory_rules.problems(inventory)
    if problems:
        raise invalid(problems, "vfkeeper's discovery never sends such an inventory: run an "
                      "agent of this vfkeeper version, or fix the document (the rules are in "
                      "docs/inventory-schema.md); nothing was stored")
    if inventory.hostname != name:
        raise InvalidInputError(
            "hostname",
            f"the inventory is for host {inventory.hostname!r} but was sent to {name!r}; "
            f"PUT it to /v1/hosts/{inventory.hostname}/inventory",
        )
    return inventory


def get_host(session: Session, name: str, *, lock: bool = False) -> Host:
    stmt = select(Host).where(Host.name == name)
    host = session.scalar(stmt.with_for_update() if lock else stmt)
    if host is None:
        raise NotFoundError("host", name, "an agent registers its host by sending its inventory")
    return host


def allocated_device_ids(session: Session, host_id: int) -> set[int]:
    return set(session.scalars(select(Allocation.device_id).where(Allocation.host_id == host_id)))


def _fill(row: Device, device: inv.Device, assignment: Assignment | None) -> None:
    row.dev_type = device.dev_type
    row.parent_addr = device.parent_addr
    row.vf_index = device.vf_index
    row.vendor_id = device.vendor_id
    row.product_id = device.product_id
    row.numa_node = device.numa_node
    row.physical_network = assignment.physical_network if assignment else None
    row.tags = dict(assignment.tags) if assignment else {}
    row.present = True
    row.problem = None


def sync_devices(
    session: Session, host: Host, inventory: inv.HostInventory, matcher: Matcher
) -> list[dict[str, Any]]:
    """Make the host's device rows match ``inventory`` under ``matcher``.

    Returns the in-use devices that are no longer usable (kept, with a ``problem``)."""
    rows = {d.address: d for d in session.scalars(select(Device).where(Device.host_id == host.id))}
    in_use = allocated_device_ids(session, host.id)
    held = in_use | releasing_device_ids(session, host.id)  # a releasing row keeps its device
    kept: list[dict[str, Any]] = []
    seen: set[str] = set()
    for device in inventory.devices:
        seen.add(device.address)
        assignment = matcher.assign(device)
        row = rows.get(device.address)
        if row is None:
            row = Device(host_id=host.id, address=device.address)
            session.add(row)
        elif row.id in in_use and (assignment is None or
                                   assignment.physical_network != row.physical_network):
            row.present = True
            row.problem = "no device spec selects it for its physical network any more"
            kept.append(_kept(host, row))
            continue
        _fill(row, device, assignment)
    for address, row in rows.items():
        if address in seen:
            continue
        if row.id in held:
            row.present = False
            row.problem = "no longer in the host's inventory"
            kept.append(_kept(host, row))
        else:
            session.delete(row)
    return kept


def _kept(host: Host, row: Device) -> dict[str, Any]:
    return {"host": host.name, "address": row.address, "problem": row.problem,
            "action": "kept for its allocation (or while it is releasing); it goes once it is "
                      "released and its host gave it back"}


def store_inventory(
    session: Session, name: str, document: Any, matcher_for: MatcherFactory,
    now: datetime | None = None,
) -> tuple[Host, list[dict[str, Any]]]:
    """The whole inventory PUT: validate, create the host if new, sync its devices."""
    inventory = parse_inventory(name, document)
    host = session.scalar(select(Host).where(Host.name == name).with_for_update())
    if host is None:
        host = Host(name=name, enabled=True, generation=0)
        session.add(host)
        session.flush()
    now = now or utcnow()
    host.inventory = inventory.model_dump(mode="json")
    host.inventory_schema_version = inventory.schema_version
    host.inventory_updated_at = now
    host.last_seen_at = now
    kept = sync_devices(session, host, inventory, matcher_for(session, host, inventory))
    host.generation += 1
    session.flush()
    return host, kept


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="forbid")

    migration_uri: str | None = Field(
        default=None, max_length=1024,
        description="The libvirt URI peers live-migrate to, naming this host: "
                    "qemu+tcp://HOST/system, qemu+tls://HOST/system or "
                    "qemu+ssh://[USER@]HOST/system, optionally with :PORT, no query string "
                    "(see docs/api.md).")


def heartbeat(session: Session, name: str, now: datetime, timeout_s: float, *,
              migration_uri: str | None = None,
              migration_domains: Collection[str] = ()) -> None:  # fmt: skip
    """Record that the host's agent is alive (and where libvirt takes migrations, when it
    says). An agent coming back after counting as dead bumps the host's generation: its host
    is schedulable again, and the agent re-reads its state. A migration URI that is not one
    the host may announce (:func:`vfkeeper.domain.migration.check_migration_uri`) refuses the
    whole heartbeat."""
    host = get_host(session, name, lock=True)
    if migration_uri is not None:
        _check_migration_uri(migration_uri, host.name, migration_domains)
    if not agent_alive(host.last_seen_at, now, timeout_s):
        host.generation += 1
    host.last_seen_at = now
    if migration_uri is not None and migration_uri != host.migration_uri:
        host.migration_uri = migration_uri


def _check_migration_uri(uri: str, host: str, domains: Collection[str]) -> None:
    try:
        check_migration_uri(uri, host, domains)
    except InvalidMigrationUriError as exc:
        raise InvalidInputError("migration_uri",
                                f"{uri!r} is refused: {exc.problem}; send {exc.expected}",
                                {"given": uri, "problem": exc.problem,
                                 "expected": exc.expected}) from exc


def delete_host(session: Session, name: str) -> None:
    """Forget a host: its devices and its agent's reports go with it (foreign keys cascade);
    its device-spec override, kept by name, stays. Refused while an instance is on it or
    migrating to it (an instance holds its devices), and while it has releasing devices.
    Under the host's row lock, which every claim on the host takes, so no boot can land on it
    meanwhile."""
    host = get_host(session, name, lock=True)
    on_it = session.scalars(
        select(Instance.id).where(or_(Instance.host_id == host.id,
                                      Instance.target_host_id == host.id))
        .order_by(Instance.id).limit(10))
    holding = session.scalars(select(Allocation.instance_id).where(Allocation.host_id == host.id)
                              .distinct().limit(10))
    users = sorted({*on_it, *holding})
    if users:
        raise InUseError("host", name, [f"instance {i}" for i in users],
                         "delete its instances or migrate them away first")
    releasing = len(releasing_device_ids(session, host.id))
    if releasing:
        raise ConflictError(
            f"host {name} has {releasing} releasing device{'s' if releasing != 1 else ''}: "
            "its agent has not yet given back what was freed there (vfkeeper host show "
            f"{name}); start its agent, or, if the host is gone, vfkeeper host force-release "
            f"{name} ADDRESS for each", {"host": name, "releasing": releasing})
    session.delete(host)


def set_enabled(session: Session, name: str, enabled: bool | None, reason: str | None) -> Host:
    """Enable or disable the host for scheduling (bumps its generation when it changes)."""
    host = get_host(session, name, lock=True)
    if enabled is not None and (enabled, reason) != (host.enabled, host.disabled_reason):
        host.enabled = enabled
        host.disabled_reason = None if enabled else reason
        host.generation += 1
    session.flush()
    return host


class MatcherFactory(Protocol):
    def __call__(self, session: Session, host: Host, inventory: inv.HostInventory) -> Matcher: ...


def agent_alive(seen: datetime | None, now: datetime, timeout_s: float) -> bool:
    """Whether an agent last heard from at ``seen`` counts as alive at ``now``."""
    if seen is None:
        return False
    if seen.tzinfo is None:  # SQLite hands back naive datetimes; we store UTC
        seen = seen.replace(tzinfo=now.tzinfo)
    return now - seen <= timedelta(seconds=timeout_s)


def interfaces(host: Host) -> list[dict[str, Any]]:
    """Every NIC of the host, one row per netdev, as Fuel's node-interface API listed them."""
    if host.inventory is None:
        return []
    inventory = inv.HostInventory.model_validate(host.inventory)
    rows: list[dict[str, Any]] = []
    for device in inventory.devices:
        for netdev in device.netdevs:
            rows.append({
                "name": netdev.name,
                "mac": netdev.mac,
                "bus_info": device.bus_info or device.address,
                "driver": device.driver,
                "pci_address": device.address,
                "dev_type": device.dev_type,
                "parent_pf": device.parent_addr,
                "link_type": netdev.link_type or device.link_type,
                "numa_node": device.numa_node,
                "mtu": netdev.mtu,
                "state": netdev.operstate,
                "current_speed_mbps": netdev.speed_mbps,
            })
    return rows
