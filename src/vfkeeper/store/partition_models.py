"""The controller's record of InfiniBand partition membership: one row per (PKey, port GUID)
vfkeeper wants in a partition, or wants out of one.

Declared on the same :class:`~vfkeeper.store.models.Base` (``vfkeeper.store`` imports this
module, so the metadata Alembic compares is complete); revision ``0008`` creates it.

A row outlives its port: when a port is deleted (or its instance), the row stays
``pending_remove`` until the subnet manager confirmed the GUID left the partition, and the GUID
is not handed out again before that (:mod:`vfkeeper.controller.addresses`). ``port_id`` is
therefore a plain column, not a foreign key.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from vfkeeper.store.models import Base, utcnow
from vfkeeper.store.types import UtcDateTime


class PartitionMembership(Base):
    """One GUID's membership of one partition, and where the subnet manager is with it.

    ``state``: ``pending_add`` (wanted, not yet confirmed by the SM), ``member`` (the SM has it),
    ``pending_remove`` (no longer wanted, not yet confirmed gone; the GUID is not reusable),
    ``external`` (membership is managed outside vfkeeper: the ``none`` backend, or a network on
    an operator-owned partition marked shared)."""

    __tablename__ = "partition_memberships"
    __table_args__ = (UniqueConstraint("pkey", "guid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    pkey: Mapped[int] = mapped_column(Integer, index=True)
    guid: Mapped[str] = mapped_column(String(18), index=True)
    membership: Mapped[str] = mapped_column(String(8))
    port_id: Mapped[str | None] = mapped_column(String(36), index=True)
    state: Mapped[str] = mapped_column(String(16), index=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    """The SM's read-back showed the last change (False: applied, not read back)."""
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    """Failed attempts since the last success."""
    last_error: Mapped[str | None] = mapped_column(String(2048))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
