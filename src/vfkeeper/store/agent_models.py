"""Tables of what agents report: each port's actual state and each host's problems.

Declared on the same :class:`~vfkeeper.store.models.Base` (``models`` imports this module, so
the metadata Alembic compares is complete); revision ``0004`` creates them, ``0006`` adds the
host's problems.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from vfkeeper.store.models import Base, utcnow
from vfkeeper.store.types import UtcDateTime


class PortActual(Base):
    """The last actual state an agent reported for a bound port (deleted with the port)."""

    __tablename__ = "port_actual"

    port_id: Mapped[str] = mapped_column(ForeignKey("ports.id", ondelete="CASCADE"),
                                         primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"), index=True)
    address: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    last_error: Mapped[str | None] = mapped_column(String(2048))
    waiting_for: Mapped[str | None] = mapped_column(String(1024))
    skipped: Mapped[list[Any]] = mapped_column(JSON, default=list)
    observed: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    desired_generation: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class HostActual(Base):
    """A host's last report of what needs a person: foreign, vanished and releasing devices,
    and what keeps its agent from reconciling (``problems``; the scheduler refuses the host
    while there is one)."""

    __tablename__ = "host_actual"

    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"),
                                         primary_key=True)
    desired_generation: Mapped[int] = mapped_column(Integer)
    foreign: Mapped[list[Any]] = mapped_column(JSON, default=list)
    vanished: Mapped[list[Any]] = mapped_column(JSON, default=list)
    releasing: Mapped[list[Any]] = mapped_column(JSON, default=list)
    problems: Mapped[list[Any]] = mapped_column(JSON, default=list)
    reported_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
