"""The controller's tables, as SQLAlchemy 2 declarative models.

The schema itself is owned by the Alembic revisions in ``migrations/versions``; these models
describe the head revision and ``tests/store/test_migrations.py`` checks the two agree.

Invariants the database itself enforces (so that no code path, and no second controller, can
break them):

* an allocation row exists only while the claim is live, and ``allocations.device_id`` is
  unique: one device is never held twice;
* ``allocations.device_id`` references ``devices`` with ``ON DELETE RESTRICT``: a device that is
  in use cannot be deleted, whatever a new inventory or device spec says;
* ``ports.mac`` and ``ports.guid`` are unique: no MAC or GUID is handed out twice;
* ``allocations.request_id`` is unique and ``(port_id, incoming)`` too: a PCI request is
  satisfied at most once, and a port holds at most one device (plus, while its instance
  migrates, one reserved on the destination);
* ``device_releases.device_id`` is unique and references ``devices`` with ``ON DELETE
  RESTRICT``: a released device is recorded once, and its row stays until its host's agent
  says it gave the device back (:mod:`vfkeeper.controller.releases`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    MetaData,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from vfkeeper.store.types import UtcDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Host(Base):
    """A hypervisor host, its last inventory and its desired-state generation."""

    __tablename__ = "hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(1024))
    inventory: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    inventory_schema_version: Mapped[int | None] = mapped_column(Integer)
    inventory_updated_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    last_seen_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    spec_problem: Mapped[str | None] = mapped_column(String(2048))
    """Why the device specs in force cannot be used on this host (none of its devices is then
    assignable), e.g. a ``devname`` the host does not have."""
    migration_uri: Mapped[str | None] = mapped_column(String(1024))
    """The libvirt URI peers live-migrate to (``qemu+tcp://host/system``), from the agent."""
    generation: Mapped[int] = mapped_column(Integer, default=0, index=True)
    """Bumped by every change to what the host offers or must do (inventory, device specs,
    enable/disable, an agent back from the dead, claims, releases). Agents compare it to skip
    work; each controller's scheduling cache re-reads only hosts whose generation moved."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Device(Base):
    """One PCI function of a host, as the last inventory showed it (or kept because in use)."""

    __tablename__ = "devices"
    __table_args__ = (UniqueConstraint("host_id", "address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(16))
    dev_type: Mapped[str] = mapped_column(String(16))
    parent_addr: Mapped[str | None] = mapped_column(String(16))
    vf_index: Mapped[int | None] = mapped_column(Integer)
    vendor_id: Mapped[str | None] = mapped_column(String(8))
    product_id: Mapped[str | None] = mapped_column(String(8))
    numa_node: Mapped[int | None] = mapped_column(Integer)
    physical_network: Mapped[str | None] = mapped_column(String(255))
    """Set when a device spec makes the device assignable; ``None`` means not assignable."""
    tags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    present: Mapped[bool] = mapped_column(Boolean, default=True)
    """False when the last inventory no longer shows the device but an allocation holds it."""
    problem: Mapped[str | None] = mapped_column(String(1024))
    """Why a device in use is no longer usable (vanished, or no device spec matches it)."""


class DeviceSpecSet(Base):
    """The device specs of one scope: ``*`` for the cluster, or a host name for an override."""

    __tablename__ = "device_spec_sets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(255), unique=True)
    entries: Mapped[list[Any]] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Network(Base):
    __tablename__ = "networks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    physical_network: Mapped[str] = mapped_column(String(255))
    segmentation_type: Mapped[str] = mapped_column(String(8))
    segmentation_id: Mapped[int | None] = mapped_column(Integer)
    pkey_full_membership: Mapped[bool] = mapped_column(Boolean, default=False)
    pkey_shared: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The PKey is an operator-owned partition vfkeeper may put ports on but never changes:
    its members are managed outside vfkeeper."""
    mtu: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Instance(Base):
    __tablename__ = "instances"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    numa_policy: Mapped[str] = mapped_column(String(16))
    host_hint: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(16))
    """``ACTIVE``; ``MIGRATING``, ``SUSPENDING``, ``RESUMING`` while a task runs
    (:mod:`vfkeeper.controller.lifecycle`); ``SUSPENDED``."""
    task_id: Mapped[str | None] = mapped_column(String(36))
    """The running task: agents' reports name it, so a stale report cannot end a newer one."""
    target_host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"), index=True)
    """A migration's destination."""
    task_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """What the agents said of the task (destination ready, its VF netdevs, what each side
    waits for)."""
    last_error: Mapped[str | None] = mapped_column(String(2048))
    """Why the last task failed (cleared when the next one starts)."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Port(Base):
    __tablename__ = "ports"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255))
    network_id: Mapped[str] = mapped_column(
        ForeignKey("networks.id", ondelete="RESTRICT"), index=True
    )
    vnic_type: Mapped[str] = mapped_column(String(16))
    mac: Mapped[str | None] = mapped_column(String(17), unique=True)
    guid: Mapped[str | None] = mapped_column(String(18), unique=True)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    port_security: Mapped[bool] = mapped_column(Boolean, default=True)
    qos_min_kbps: Mapped[int | None] = mapped_column(Integer)
    qos_max_kbps: Mapped[int | None] = mapped_column(Integer)
    link_state: Mapped[str] = mapped_column(String(8), default="auto")
    instance_id: Mapped[str | None] = mapped_column(ForeignKey("instances.id"), index=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("hosts.id"))
    vif_type: Mapped[str | None] = mapped_column(String(32))
    vif_details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Allocation(Base):
    """A live claim of one device for one port. Released by deleting the row.

    During a live migration a port holds two: its own (on the source) and an ``incoming`` one
    reserved on the destination, which becomes its own when the instance arrives there."""

    __tablename__ = "allocations"
    __table_args__ = (UniqueConstraint("port_id", "incoming"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    request_id: Mapped[str] = mapped_column(String(36), unique=True)
    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="RESTRICT"), unique=True
    )
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id"), index=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id"))
    incoming: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    desired: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """The VF state the host's agent must program (MAC, VLAN or PKey, trust, spoof check, …)."""
    binding: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    """An incoming allocation's port binding (host, ``binding:profile``, VIF), applied when the
    instance arrives."""
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class DeviceRelease(Base):
    """A device freed by the controller that its host's agent has not yet given back (the old
    domain may still hold it, with its MAC, VLAN or GUID). Never handed out while the row
    exists; written in the transaction that deletes the allocation, deleted when the host's
    agent reports, for a desired state at least as new as ``generation``, that it no longer
    holds the device (or by an admin's force-release)."""

    __tablename__ = "device_releases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="RESTRICT"), unique=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id"), index=True)
    port_id: Mapped[str] = mapped_column(String(36))
    """The port that held it (plain text: the port may be gone)."""
    instance_id: Mapped[str] = mapped_column(String(36))
    """The instance that held it (plain text: the instance may be gone)."""
    generation: Mapped[int] = mapped_column(Integer)
    """The host's desired-state generation after the bump that released the device: a report
    answering an older one cannot clear the row."""
    reason: Mapped[str] = mapped_column(String(64))
    """``instance deleted``, ``port unplugged``, ``migrated away``, ``migration rolled back``."""
    released_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Token(Base):
    """An API bearer token. Only its SHA-256 is stored."""

    __tablename__ = "tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(300))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
