"""One discovery pass over a host: the reader, plus the warnings it collects.

Each helper reads one path and either returns the parsed value or returns ``None`` and records
a :class:`ScanWarning` naming the path, what was wrong and which field stays null. ``optional``
paths may legitimately be absent (a PF has no ``physfn``, a down link no speed): their absence
is not a warning, but a present-and-broken optional path still is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from vfkeeper.agent.errors import SysfsMissingError, SysfsReadError
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.domain.inventory import ScanWarning

T = TypeVar("T")


class Scan:
    def __init__(self, reader: SysfsReader) -> None:
        self.reader = reader
        self.warnings: list[ScanWarning] = []
        self.missing = 0
        """How many paths turned out missing so far; a device whose listed entries go missing
        is checked for having vanished mid-scan."""

    def warn(self, path: str, message: str) -> None:
        self.warnings.append(ScanWarning(path=path, message=message))

    def failed(self, exc: SysfsReadError, field: str) -> None:
        """Record a read failure of the path that feeds ``field``."""
        if isinstance(exc, SysfsMissingError):
            self.missing += 1
            self.warn(exc.path, f"missing ({exc.reason}); {field} is null")
        else:
            self.warn(exc.path, f"unreadable ({exc.reason}); {field} is null")

    def text(self, path: str, field: str, *, optional: bool = False) -> str | None:
        try:
            return self.reader.read(path)
        except SysfsMissingError as exc:
            if not optional:
                self.failed(exc, field)
            return None
        except SysfsReadError as exc:
            self.failed(exc, field)
            return None

    def parsed(
        self, path: str, parse: Callable[[str], T], field: str, *, optional: bool = False
    ) -> T | None:
        try:
            raw = self.reader.read(path)
        except SysfsMissingError as exc:
            if not optional:
                self.failed(exc, field)
            return None
        except SysfsReadError as exc:
            self.failed(exc, field)
            return None
        try:
            return parse(raw)
        except ValueError as exc:
            self.warn(path, f"malformed value {raw!r} ({exc}); {field} is null")
            return None

    def parse(self, path: str, raw: str, parse: Callable[[str], T], field: str) -> T | None:
        try:
            return parse(raw)
        except ValueError as exc:
            self.warn(path, f"malformed value {raw!r} ({exc}); {field} is null")
            return None

    def link(self, path: str, field: str) -> str | None:
        try:
            return self.reader.link_name(path)
        except SysfsReadError as exc:
            self.failed(exc, field)
            return None

    def listdir(self, path: str, field: str, *, optional: bool = False) -> list[str] | None:
        try:
            return self.reader.listdir(path)
        except SysfsMissingError as exc:
            if not optional:
                self.failed(exc, field)
            return None
        except SysfsReadError as exc:
            self.failed(exc, field)
            return None
