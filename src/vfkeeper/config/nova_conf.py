"""Device specs from a ``nova.conf``, read the way oslo.config reads it.

oslo.config's ini dialect: ``key = value`` or ``key: value`` (whichever separator comes first),
``#``/``;`` comment lines, continuation lines start with a blank and are joined with newlines
(so a JSON spec may span lines), a blank line ends a value, a value wrapped in one pair of
matching quotes loses them, repeated keys accumulate. Section names other than ``DEFAULT`` are
case-insensitive. The device spec option is multi-valued and has two deprecated names; oslo
returns ``[DEFAULT] pci_passthrough_whitelist`` values first, then ``[pci]
passthrough_whitelist``, then ``[pci] device_spec``, each in file order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from vfkeeper.config.errors import NovaConfError
from vfkeeper.config.files import read_text
from vfkeeper.domain.devspec import SpecEntry

SPEC_OPTIONS = (
    ("DEFAULT", "pci_passthrough_whitelist"),
    ("pci", "passthrough_whitelist"),
    ("pci", "device_spec"),
)


@dataclass
class _Parser:
    path: str
    values: dict[tuple[str, str], list[tuple[str, int]]] = field(default_factory=dict)
    section: str | None = None
    key: str | None = None
    lines: list[str] = field(default_factory=list)
    start: int = 0

    def fail(self, lineno: int, problem: str, line: str) -> NovaConfError:
        return NovaConfError(self.path, f"{problem}: {line!r}",
                             "nova.conf is an ini file: [section] lines, then key = value lines; "
                             "continuation lines start with a space", lineno)

    def flush(self) -> None:
        if self.key is not None and self.section is not None:
            name = self.section if self.section == "DEFAULT" else self.section.lower()
            self.values.setdefault((name, self.key), []).append(("\n".join(self.lines), self.start))
        self.key, self.lines = None, []

    def assignment(self, lineno: int, line: str) -> None:
        colon, equal = line.find(":"), line.find("=")
        if colon < 0 and equal < 0:
            raise self.fail(lineno, "no ':' or '=' in assignment", line)
        cut = equal if colon < 0 or (0 <= equal < colon) else colon
        key, value = line[:cut].strip(), line[cut + 1:].strip()
        if value and value[0] == value[-1] and value.startswith(('"', "'")):
            value = value[1:-1]
        if not key:
            raise self.fail(lineno, "empty key", line)
        if self.section is None:
            raise self.fail(lineno, "assignment before any [section]", line)
        self.key, self.lines, self.start = key, [value], lineno

    def feed(self, lineno: int, raw: str) -> None:
        line = raw.rstrip()
        if not line:
            self.flush()
        elif line.startswith((" ", "\t")):
            if self.key is None:
                raise self.fail(lineno, "unexpected continuation line", line)
            self.lines.append(line.lstrip())
        else:
            self.flush()
            if line.startswith("["):
                if not line.endswith("]") or len(line) <= 2:
                    raise self.fail(lineno, "invalid section header", line)
                self.section = line[1:-1]
            elif not line.startswith(("#", ";")):
                self.assignment(lineno, line)


def parse_nova_conf(text: str, path: str = "nova.conf") -> list[SpecEntry]:
    """The device spec entries of one nova.conf text, in the order Nova uses them."""
    parser = _Parser(path)
    for lineno, raw in enumerate(text.splitlines(), start=1):
        parser.feed(lineno, raw)
    parser.flush()
    entries: list[SpecEntry] = []
    for section, option in SPEC_OPTIONS:
        for value, line in parser.values.get((section, option), []):
            entries.append(SpecEntry(value, f"{path}:{line} [{section}] {option}"))
    return entries


def read_nova_conf(path: str | Path) -> list[SpecEntry]:
    text = read_text(path, NovaConfError, "Check the path and permissions")
    return parse_nova_conf(text, str(path))


def read_nova_confs(paths: Iterable[str | Path]) -> list[SpecEntry]:
    """Several files, as ``--config-file a --config-file b``: each file's values in turn."""
    return [e for p in paths for e in read_nova_conf(p)]
