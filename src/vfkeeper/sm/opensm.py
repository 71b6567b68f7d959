"""The OpenSM backend: vfkeeper owns a partitions file, OpenSM is told to re-read it.

One :meth:`OpenSmBackend.apply` is: read the operator's base and the installed file; refuse a
batch that touches an operator-owned PKey (nothing written); compute vfkeeper's partitions from
the installed file plus the batch; render the new file (:mod:`vfkeeper.sm.partitions_file`);
**parse it back before anything is installed** and refuse it unless it reads as exactly what was
meant (OpenSM fails open on a file it cannot parse: every port a full member of the default
partition, every tenant partition dropped); install it atomically (temp file in the same
directory, fsync, rename, fsync of the directory); reload OpenSM; read the ports back.

**When the reload fails** (no pidfile, a dead pid, a failing command) the new file stays: it is
valid and it is the truth — OpenSM re-reads it at every heavy sweep and at start — and rolling
it back could put a released GUID back into a tenant's partition. ``apply`` raises the reload's
error and remembers that a reload is owed: the next ``apply``, even with nothing new, reloads.

**Readback.** OpenSM gives no acknowledgement, and applies a HUP on the heavy sweep it starts.
With a readback, ``apply`` reads the PKey table of every port the batch named, polling with a
growing interval until they show what the file says or ``settle_timeout`` passes, and returns
what still differs in :class:`~vfkeeper.sm.protocol.ApplyResult` (``verified=True``): a port
that is not on the fabric, a partition the port's table could not take, a membership that did
not change. Without one, ``verified`` is False.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path

from vfkeeper.sm.errors import (
    OperatorPartitionError,
    PartitionsFileError,
    SmConfigError,
    SmUnavailableError,
)
from vfkeeper.sm.opensm_tools import PortTable, Readback, Reload, Unreadable
from vfkeeper.sm.partitions_file import (
    PartitionsFile,
    normalized,
    parse,
    parse_base,
    render,
)
from vfkeeper.sm.protocol import ApplyResult, ChangeSet, Membership, Partition, SmView

Renderer = Callable[[str, Iterable[Partition]], str]
Installer = Callable[[Path, str], None]


class OpenSmBackend:
    """``partitions_file``: the file OpenSM reads (``opensm -P``); ``base_file``: the
    operator's own partitions, copied verbatim to its top (``None``: none); ``reload``:
    :class:`~vfkeeper.sm.opensm_tools.SignalReload` or
    :class:`~vfkeeper.sm.opensm_tools.CommandReload`; ``readback``: e.g.
    :class:`~vfkeeper.sm.opensm_tools.SmpqueryReadback`, or ``None``.

    ``render`` and ``install`` are the renderer and the atomic writer (a test passes its own to
    count writes or to make the renderer produce a bad line)."""

    def __init__(self, partitions_file: Path, base_file: Path | None, reload: Reload,
                 readback: Readback | None = None, *, settle_timeout: float = 15.0,
                 poll_interval: float = 0.05, render: Renderer = render,
                 install: Installer | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.partitions_file = partitions_file
        self.base_file = base_file
        self._reload = reload
        self._readback = readback
        self._settle_timeout = settle_timeout
        self._poll_interval = poll_interval
        self._render = render
        self._install = install or install_atomically
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._reload_owed = False
        self._written: tuple[str, dict[int, Partition]] | None = None
        """The last file this backend installed, and vfkeeper's partitions in it (so a batch
        does not parse the same 10,000 lines twice)."""

    @property
    def name(self) -> str:
        return "opensm"

    # --- read -----------------------------------------------------------------------------------
    def read(self) -> SmView:
        """The installed file's partitions (the base's marked operator-owned); the base's alone
        while vfkeeper has installed nothing."""
        installed = self._read_text(self.partitions_file, "--partitions-file")
        if installed is None or not installed.strip():
            return parse_base(self._base_text(), str(self.base_file)).view()
        return parse(installed, str(self.partitions_file)).view()

    def _base_text(self) -> str:
        if self.base_file is None:
            return ""
        text = self._read_text(self.base_file, "--partitions-base")
        if text is None:
            raise SmConfigError("--partitions-base", f"{self.base_file} does not exist: create "
                                "it (it may be empty) or leave the setting out")
        return text

    @staticmethod
    def _read_text(path: Path, setting: str) -> str | None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SmConfigError(setting, f"cannot read {path}: {exc.strerror}") from exc
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise PartitionsFileError(str(path), data[:exc.start].count(b"\n") + 1,
                                      "not UTF-8 text") from exc

    # --- apply ----------------------------------------------------------------------------------
    def apply(self, changes: ChangeSet) -> ApplyResult:
        with self._lock:
            base_text = self._base_text()
            base = parse_base(base_text, str(self.base_file))
            self._refuse_operator_pkeys(changes, base)
            installed = self._read_text(self.partitions_file, "--partitions-file")
            wanted = _changed(self._current(installed, base_text), changes)
            text = self._checked_render(base_text, wanted)
            if text != installed:
                self._write(text)
                self._written = (text, wanted)
                self._reload_owed = True
            if self._reload_owed:
                self._reload()
                self._reload_owed = False
            return self._verify(changes, wanted)

    def _refuse_operator_pkeys(self, changes: ChangeSet, base: PartitionsFile) -> None:
        for pkey in sorted(changes.pkeys):
            rule = base.rules.get(pkey)
            if rule is not None:
                raise OperatorPartitionError(pkey, f"{self.base_file}:{rule.line}")

    def _current(self, installed: str | None, base_text: str) -> dict[int, Partition]:
        if installed is None or not installed.strip():
            return {}
        if self._written is not None and self._written[0] == installed:
            return dict(self._written[1])
        parsed = parse(installed, str(self.partitions_file))
        if not parsed.has_section and installed != base_text:
            raise SmConfigError("--partitions-file", f"{self.partitions_file} holds partitions "
                                "vfkeeper did not write and that are not in the base file: "
                                "move them into the base file (--partitions-base), which "
                                "vfkeeper copies to the top of the file it writes")
        return parsed.partitions(operator=False)

    def _checked_render(self, base_text: str, wanted: Mapping[int, Partition]) -> str:
        text = self._render(base_text, wanted.values())
        where = f"{self.partitions_file} (new)"
        readback = parse(text, where)
        meant = {pkey: normalized(part) for pkey, part in wanted.items()}
        if readback.partitions(operator=False) != meant:
            raise PartitionsFileError(where, None, "the rendered file does not read back as "
                                      "the partitions vfkeeper meant",
                                      consequence="it was not installed; the file OpenSM has "
                                      "stays as it was")
        return text

    def _write(self, text: str) -> None:
        try:
            self._install(self.partitions_file, text)
        except OSError as exc:
            problem = f"cannot write {self.partitions_file}: {exc.strerror or exc}"
            if exc.errno in (errno.EACCES, errno.EPERM, errno.ENOENT, errno.EROFS,
                             errno.ENOTDIR):
                raise SmConfigError("--partitions-file", problem) from exc
            raise SmUnavailableError("opensm", problem) from exc

    # --- readback -------------------------------------------------------------------------------
    def _verify(self, changes: ChangeSet, wanted: Mapping[int, Partition]) -> ApplyResult:
        if self._readback is None:
            return ApplyResult(verified=False)
        guids = sorted({g for m in changes.add.values() for g in m}
                       | {g for gs in changes.remove.values() for g in gs})
        expected = {guid: _expected_entries(guid, wanted) for guid in guids}
        pending: dict[str, str] = {}
        deadline = self._clock() + self._settle_timeout
        interval = self._poll_interval
        todo = guids
        while todo:
            tables = self._readback.tables(todo)
            pending = {g: d for g in todo
                       if (d := _difference(g, expected[g], tables[g], set(wanted)))}
            todo = sorted(pending)
            if not todo or self._clock() >= deadline:
                break
            self._sleep(interval)
            interval = min(interval * 2, 1.0)
        return ApplyResult(verified=True, differences=tuple(pending[g] for g in sorted(pending)))


def _changed(current: Mapping[int, Partition], changes: ChangeSet) -> dict[int, Partition]:
    """vfkeeper's partitions after ``changes``: ensure and add create missing partitions,
    remove from a missing one is a no-op."""
    parts = dict(current)
    for pkey in changes.ensure | set(changes.add):
        parts.setdefault(pkey, Partition(pkey))
    for pkey, added in changes.add.items():
        parts[pkey] = replace(parts[pkey], members={**parts[pkey].members, **added})
    for pkey, removed in changes.remove.items():
        if pkey in parts:
            kept = {g: m for g, m in parts[pkey].members.items() if g not in removed}
            parts[pkey] = replace(parts[pkey], members=kept)
    return dict(sorted(parts.items()))


def _expected_entries(guid: str, wanted: Mapping[int, Partition]) -> frozenset[int]:
    return frozenset(_entry(pkey, part.members[guid]) for pkey, part in wanted.items()
                     if guid in part.members)


def _entry(pkey: int, membership: Membership) -> int:
    """A PKey-table entry: the key with the membership bit (0x8000) set for a full member."""
    return pkey | 0x8000 if membership == "full" else pkey


def _difference(guid: str, expected: frozenset[int], table: PortTable,
                ours: set[int]) -> str | None:
    if isinstance(table, Unreadable):
        if table.absent:
            return None if not expected else (f"port {guid} is not on the fabric "
                                              f"({table.reason}): it cannot carry "
                                              f"{_entries(expected)} until it is")
        return f"port {guid}: cannot read its PKey table ({table.reason})"
    seen = frozenset(entry for entry in table if entry & 0x7FFF in ours)
    if seen == expected:
        return None
    return (f"port {guid}: the SM should have given it {_entries(expected)} of vfkeeper's "
            f"partitions, and its PKey table has {_entries(seen)}")


def _entries(entries: frozenset[int]) -> str:
    return ", ".join(f"{e:#06x}" for e in sorted(entries)) or "none"


def install_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that a reader sees the old file or the new one, never a
    part: a temp file in the same directory, fsync, rename over ``path``, fsync the directory.
    Keeps the old file's mode (0644 for a new one)."""
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(text.encode())
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
