"""Column types of the store that do more than SQLAlchemy's own."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from vfkeeper.domain.timestamps import as_utc


class UtcDateTime(TypeDecorator[datetime]):
    """A ``TIMESTAMP WITH TIME ZONE`` that always holds and gives back aware UTC datetimes.

    SQLite keeps no zone and answers naive datetimes; a PostgreSQL session answers in its own
    zone. Every value is written in UTC and read back as aware UTC, so every view shows it
    the same way (ISO 8601 ending in ``Z``, :func:`vfkeeper.domain.timestamps.iso_z`)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else as_utc(value)
