"""Tables of IP address management: a network's subnets and the fixed address each port holds
in them.

Declared on the same :class:`~vfkeeper.store.models.Base` (the store's package imports this
module, so the metadata Alembic compares is complete); revision ``0009`` creates them.
``port_addresses`` is unique per (subnet, address), so two controllers can never hand one
address to two ports: the loser's transaction fails on the constraint and is retried.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vfkeeper.store.models import Base, utcnow
from vfkeeper.store.types import UtcDateTime


class Subnet(Base):
    """An IPv4 or IPv6 subnet of a network (deleted with the network, which has no ports then)."""

    __tablename__ = "subnets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    network_id: Mapped[str] = mapped_column(ForeignKey("networks.id", ondelete="CASCADE"),
                                            index=True)
    name: Mapped[str | None] = mapped_column(String(255))
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(49))
    gateway_ip: Mapped[str | None] = mapped_column(String(45))
    ipv6_mode: Mapped[str | None] = mapped_column(String(8))
    dns_nameservers: Mapped[list[Any]] = mapped_column(JSON, default=list)
    host_routes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    allocation_pools: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class PortAddress(Base):
    """A fixed address of a port in a subnet (deleted with the port)."""

    __tablename__ = "port_addresses"
    __table_args__ = (UniqueConstraint("subnet_id", "ip_address"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"), index=True)
    subnet_id: Mapped[str] = mapped_column(ForeignKey("subnets.id", ondelete="CASCADE"),
                                           index=True)
    ip_address: Mapped[str] = mapped_column(String(45))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
