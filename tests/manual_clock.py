"""A clock tests move by hand: the controller takes ``clock=`` so liveness and token expiry can
be tested without sleeping."""

from __future__ import annotations

from datetime import UTC, datetime


class ManualClock:
    def __init__(self, start: datetime = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now
