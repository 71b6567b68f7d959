"""What an instance's guest is told at boot besides its network: host name, SSH public keys and
user data (``meta_data.json``, NoCloud ``meta-data``/``user-data``).

Declared on the same :class:`~vfkeeper.store.models.Base` (the store's package imports this
module); revision ``0010`` creates the table. One row per instance that was booted with any of
them, deleted with the instance.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vfkeeper.store.models import Base


class InstanceGuest(Base):
    __tablename__ = "instance_guest"

    instance_id: Mapped[str] = mapped_column(ForeignKey("instances.id", ondelete="CASCADE"),
                                             primary_key=True)
    hostname: Mapped[str | None] = mapped_column(String(253))
    public_keys: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    user_data: Mapped[str | None] = mapped_column(Text)
