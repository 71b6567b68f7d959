"""One discovery pass over a host: the reader, plus the warnings it collects.

Each helper reads one path and either returns the parsed value or returns ``None`` and records
a :class:`ScanWarning` naming the path, what was wrong and which field stays null. ``optional``
paths may legitimately be absent (a PF has no ``physfn``, a down link no speed): their absence
is not a warning, but a present-and-broken optional path still is.

:meth:`Scan.attrs` reads several attributes of one directory in one batch
(:meth:`SysfsReader.read_many`) and handles each the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeVar

from vfkeeper.agent.errors import SysfsMissingError, SysfsReadError
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.domain.inventory import ScanWarning

T = TypeVar("T")


class Attr(NamedTuple):
    """One attribute to read: its file name (relative to the directory read), the parser of
    its text (``None``: the text itself), the inventory field it feeds (named in warnings), and
    whether its absence is normal."""

    name: str
    parse: Callable[[str], Any] | None
    field: str
    optional: bool = False


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

    def attrs(self, directory: str, wanted: Sequence[Attr], what: str = "") -> list[Any]:
        """The value of each attribute of ``directory`` in ``wanted``, read in one batch: parsed,
        or ``None`` with a warning (none for an absent optional attribute). ``what`` prefixes
        the field names in warnings (``netdev ib0 ``)."""
        return self.values(directory, wanted,
                           self.reader.read_many(directory, [a.name for a in wanted]), what)

    def values(self, directory: str, wanted: Sequence[Attr],
               got: Sequence[str | SysfsReadError], what: str = "") -> list[Any]:
        """:meth:`attrs` for attributes already read (``got``, in the order of ``wanted``)."""
        out: list[Any] = []
        for attr, raw in zip(wanted, got, strict=True):
            if isinstance(raw, str):  # the common case, without a call per attribute
                if attr.parse is None:
                    out.append(raw)
                    continue
                try:
                    out.append(attr.parse(raw))
                    continue
                except ValueError:
                    pass  # value() parses again and says what was wrong
            out.append(self.value(f"{directory}/{attr.name}", raw, attr, what))
        return out

    def value(self, path: str, raw: str | SysfsReadError, attr: Attr, what: str = "") -> Any:
        """What one attribute read (``raw``: its text or its read error) gives its field."""
        if isinstance(raw, SysfsReadError):
            if not (attr.optional and isinstance(raw, SysfsMissingError)):
                self.failed(raw, what + attr.field)
            return None
        if attr.parse is None:
            return raw
        return self.parse(path, raw, attr.parse, what + attr.field)

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
