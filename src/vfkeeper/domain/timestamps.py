"""Timestamps as vfkeeper stores and shows them: aware, in UTC, written ISO 8601 with ``Z``.

The store hands back aware UTC datetimes whatever the database (SQLite keeps no zone; a
PostgreSQL session may answer in its own), and every view then shows them ending in ``Z``.
"""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive one is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def iso_z(value: datetime, timespec: str = "auto") -> str:
    """``2026-11-21T10:04:05.123456Z``: ISO 8601 in UTC, with ``Z`` for the zone."""
    return as_utc(value).replace(tzinfo=None).isoformat(timespec=timespec) + "Z"
