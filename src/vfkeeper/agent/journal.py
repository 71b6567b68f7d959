"""The agent's local durable record: what it attached for each port, and the VF's original
settings, so that a restart after a crash restores a VF exactly.

One JSON file per port under ``<state_dir>/ports/``, written atomically (temp file + fsync +
rename + fsync of the directory): a crash leaves either the old record or the new one, never a
torn one. A record is written **before** the VF is first changed and removed only **after** the
VF was given back (detached everywhere and restored), so every VF vfkeeper ever changed has a
record until it is back as it was.

The record holds no progress counter: where a port stands (programmed? attached live? in the
persistent config?) is read from the kernel and libvirt on every pass, which is what makes each
step safe to repeat.

A record that cannot be read or is not what the agent writes (empty, cut short, another JSON
shape, a value of the wrong type) is **damaged**: :meth:`Journal.load` returns it as a
:class:`DamagedRecord` next to the good records, never raises for it, so one bad file affects
only its own port (the planner leaves that port's VF alone and the host reports the problem).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter, ValidationError

from vfkeeper.agent.errors import AgentError
from vfkeeper.agent.linkops.protocol import VfAttr
from vfkeeper.agent.linkops.snapshot import VfSnapshot

FORMAT = 1


class JournalError(AgentError):
    """The state directory cannot be used, or a record in it is damaged."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(
            f"agent state {path}: {problem}. The agent keeps each VF's original settings there; "
            "fix the file's permissions or contents (or move it away, after restoring that VF "
            "by hand with 'vfkeeper vf set') and start the agent again"
        )


@dataclass(frozen=True, slots=True)
class PortRecord:
    """What the agent attached for one port, and the VF's settings from before."""

    port_id: str
    address: str
    """The PCI function passed through (the VF's; the PF's for ``hostdev_physical``)."""
    domain: str
    alias: str
    xml: str
    """The device XML attached; detaching by alias or by this XML finds it again."""
    snapshot: VfSnapshot | None
    """The VF's original values of every attribute vfkeeper changes; ``None`` when nothing is
    programmed (a whole PF passed through)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "port_id": self.port_id, "address": self.address,
            "domain": self.domain, "alias": self.alias, "xml": self.xml,
            "snapshot": self.snapshot.to_dict() if self.snapshot else None,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class DamagedRecord:
    """A record file the agent cannot use: its port is not reconciled until a person fixes it."""

    path: str
    port_id: str
    """From the file's name (``<port id>.json``)."""
    problem: str
    address: str | None = None
    """The PCI function the record names, when that much can still be read."""

    @property
    def message(self) -> str:
        vf = f"its VF {self.address}" if self.address else "its VF"
        return (f"journal record {self.path} is damaged ({self.problem}): port {self.port_id} "
                f"is not reconciled and {vf} is left as it is. Put the VF's original settings "
                "back by hand ('vfkeeper vf set'), then move the file out of the journal "
                "directory; the agent then takes the port up again")


@dataclass(frozen=True, slots=True)
class JournalContents:
    """What :meth:`Journal.load` found: the good records by port id, and the damaged ones."""

    records: dict[str, PortRecord] = field(default_factory=dict)
    damaged: tuple[DamagedRecord, ...] = ()


_RECORD = TypeAdapter(PortRecord)
_ATTRS = frozenset(a.value for a in VfAttr)


def _check_document(data: Any) -> None:
    """What the typed parse lets through: another format, an attribute this agent does not
    know (an original it would silently drop)."""
    if not isinstance(data, dict):
        return  # the typed parse says what it is
    if data.get("format") != FORMAT:
        raise ValueError(f"format {data.get('format')!r} is not {FORMAT}: written by another "
                         "vfkeeper version?")
    snapshot = data.get("snapshot")
    original = snapshot.get("original") if isinstance(snapshot, dict) else None
    unknown = sorted(set(original) - _ATTRS) if isinstance(original, dict) else []
    if unknown:
        raise ValueError(f"snapshot.original: unknown VF attribute {', '.join(unknown)}")


def _describe(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'record'}: {e['msg']}"
                         for e in exc.errors()[:3])  # fmt: skip
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON, cut short or overwritten? ({exc})"
    if isinstance(exc, UnicodeDecodeError):
        return "not text"
    if isinstance(exc, OSError):
        return f"cannot read it ({exc.strerror or exc})"
    return str(exc)


def _address(text: str) -> str | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    address = data.get("address") if isinstance(data, dict) else None
    return address if isinstance(address, str) else None


def parse_record(path: Path) -> PortRecord | DamagedRecord:
    """One record file, or why it cannot be used."""
    text = ""
    try:
        text = path.read_text()
        if not text.strip():
            raise ValueError("empty file: the write that made it was cut short?")
        data = json.loads(text)
        _check_document(data)
        record = _RECORD.validate_json(text, strict=True)
        if record.port_id != path.stem:
            raise ValueError(f"it is the record of port {record.port_id}, not of {path.stem}")
    except (OSError, ValueError) as exc:
        return DamagedRecord(str(path), path.stem, _describe(exc), _address(text))
    return record


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """The records under ``state_dir`` (created if missing)."""

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(state_dir) / "ports"
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise JournalError(str(self.dir), f"cannot create it ({exc.strerror})") from exc
        self.writes = 0
        """Durable writes (put + remove) so far, for the benchmark."""

    def _path(self, port_id: str) -> Path:
        if not port_id or "/" in port_id or port_id.startswith("."):
            raise JournalError(str(self.dir), f"{port_id!r} is not a port id")
        return self.dir / f"{port_id}.json"

    def load(self) -> JournalContents:
        """Every record, good and damaged. Left-over temp files of an interrupted write are
        removed. Raises :class:`JournalError` only when the directory itself cannot be read."""
        records: dict[str, PortRecord] = {}
        damaged: list[DamagedRecord] = []
        try:
            paths = sorted(self.dir.iterdir())
        except OSError as exc:
            raise JournalError(str(self.dir), f"cannot list it ({exc.strerror})") from exc
        for path in paths:
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)
                continue
            if path.suffix != ".json":
                continue
            parsed = parse_record(path)
            if isinstance(parsed, DamagedRecord):
                damaged.append(parsed)
            else:
                records[parsed.port_id] = parsed
        return JournalContents(records, tuple(damaged))

    def put(self, record: PortRecord) -> None:
        target = self._path(record.port_id)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.dir)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record.to_dict(), f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(self.dir)
        self.writes += 1

    def remove(self, port_id: str) -> None:
        self._path(port_id).unlink(missing_ok=True)
        _fsync_dir(self.dir)
        self.writes += 1

    def __iter__(self) -> Iterator[PortRecord]:
        return iter(self.load().records.values())
