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
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfkeeper.agent.errors import AgentError
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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PortRecord:
        snap = data.get("snapshot")
        return cls(
            str(data["port_id"]), str(data["address"]), str(data["domain"]),
            str(data["alias"]), str(data["xml"]),
            VfSnapshot.from_dict(snap) if snap else None,
        )  # fmt: skip


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

    def load(self) -> dict[str, PortRecord]:
        """Every record. Left-over temp files of an interrupted write are removed."""
        records: dict[str, PortRecord] = {}
        for path in sorted(self.dir.iterdir()):
            if path.name.startswith(".tmp-"):
                path.unlink(missing_ok=True)
                continue
            if path.suffix != ".json":
                continue
            try:
                record = PortRecord.from_dict(json.loads(path.read_text()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise JournalError(str(path), f"unreadable record ({exc})") from exc
            records[record.port_id] = record
        return records

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
        return iter(self.load().values())
