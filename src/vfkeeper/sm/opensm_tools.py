"""What the OpenSM backend runs beside writing the file: telling OpenSM to reload (SIGHUP to the
pid in its pidfile, or an operator-given command) and reading the ports' PKey tables back
(``smpquery pkeys``). Commands go through a :class:`Runner`, so a test can prefix them
(``ibsim-run``) and give them an environment; nothing goes through a shell.

OpenSM has no pidfile option of its own: the pidfile is whatever the service manager or the
operator's wrapper writes (``PIDFile=``, ``start-stop-daemon --make-pidfile``).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from vfkeeper.sm.errors import SmConfigError, SmUnavailableError

STILL_INSTALLED = ("the new partitions file is installed and valid, and OpenSM reads it at its "
                   "next heavy sweep or start")


@dataclass(frozen=True, slots=True)
class RunResult:
    returncode: int | None
    """``None``: killed at the timeout."""
    stdout: str
    stderr: str


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], timeout: float) -> RunResult:
        """Run ``argv`` (no shell). Raises :class:`OSError` when it cannot be started."""
        ...


@dataclass(frozen=True, slots=True)
class ProcessRunner:
    """Runs commands as child processes, ``prefix`` first (``("ibsim-run",)``), with ``env``
    added to this process's environment."""

    prefix: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def __call__(self, argv: Sequence[str], timeout: float) -> RunResult:
        try:
            done = subprocess.run([*self.prefix, *argv], capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, check=False,
                                  env={**os.environ, **self.env} if self.env else None)
        except subprocess.TimeoutExpired as exc:
            return RunResult(None, _text(exc.stdout), _text(exc.stderr))
        return RunResult(done.returncode, done.stdout, done.stderr)


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else out or ""


class Reload(Protocol):
    def __call__(self) -> None:
        """Tell OpenSM to re-read its partitions file. Raises
        :class:`~vfkeeper.sm.errors.SmUnavailableError` or
        :class:`~vfkeeper.sm.errors.SmConfigError`, saying what to do."""
        ...


@dataclass(frozen=True, slots=True)
class SignalReload:
    """SIGHUP to the process whose pid ``pidfile`` holds, if it is ``process_name``: OpenSM
    then re-reads its partitions file on a heavy sweep it starts at once (``opensm/main.c``
    sets ``force_heavy_sweep``). A stale pidfile naming another process is refused, never
    signalled."""

    pidfile: Path
    process_name: str = "opensm"
    proc: Path = Path("/proc")

    def __call__(self) -> None:
        pid = self._pid()
        self._check_alive(pid)
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError as exc:
            raise self._gone(pid) from exc
        except PermissionError as exc:
            raise SmConfigError("--opensm-pidfile", f"vfkeeper may not signal pid {pid} "
                                "(OpenSM runs as another user): run vfkeeper as that user or "
                                f"give --opensm-reload-command instead; {STILL_INSTALLED}"
                                ) from exc

    def _pid(self) -> int:
        try:
            text = self.pidfile.read_text(errors="replace")
        except FileNotFoundError as exc:
            raise SmUnavailableError("opensm", f"there is no pidfile {self.pidfile}: OpenSM is "
                                     "not running, or --opensm-pidfile names the wrong file; "
                                     f"{STILL_INSTALLED}") from exc
        except OSError as exc:
            raise SmConfigError("--opensm-pidfile", f"cannot read {self.pidfile}: "
                                f"{exc.strerror}") from exc
        if not re.fullmatch(r"\s*[0-9]{1,10}\s*", text) or int(text) <= 1:
            raise SmConfigError("--opensm-pidfile", f"{self.pidfile} holds {text[:40]!r}, not "
                                "a process id: name the file OpenSM's service writes its pid "
                                "to")
        return int(text)

    def _check_alive(self, pid: int) -> None:
        try:
            stat = (self.proc / str(pid) / "stat").read_text(errors="replace")
        except (FileNotFoundError, ProcessLookupError) as exc:
            raise self._gone(pid) from exc
        except OSError as exc:
            raise SmConfigError("--opensm-pidfile", f"cannot look at pid {pid}: "
                                f"{exc.strerror}") from exc
        name, _, rest = stat.partition("(")[2].rpartition(")")
        if rest.split()[:1] in (["Z"], ["X"]):
            raise self._gone(pid)
        if name != self.process_name[:15]:
            raise SmConfigError("--opensm-pidfile", f"pid {pid} in {self.pidfile} is {name!r}, "
                                f"not {self.process_name}: the pidfile is stale, and vfkeeper "
                                "did not signal that process; restart OpenSM or fix the path")

    def _gone(self, pid: int) -> SmUnavailableError:
        return SmUnavailableError("opensm", f"the pid {pid} in {self.pidfile} is not running "
                                  f"(OpenSM stopped; a stale pidfile); {STILL_INSTALLED}")


@dataclass(frozen=True, slots=True)
class CommandReload:
    """An operator-given command (an argv list, no shell), e.g. ``systemctl reload opensm`` or
    ``kill -HUP …`` for NVIDIA's OpenSM in a container. Exit status 0 is success."""

    argv: tuple[str, ...]
    runner: Runner = field(default_factory=ProcessRunner)
    timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.argv or not self.argv[0]:
            raise SmConfigError("--opensm-reload-command", "is empty; give the command and its "
                                "arguments")

    def __call__(self) -> None:
        shown = shlex.join(self.argv)
        try:
            done = self.runner(self.argv, self.timeout)
        except OSError as exc:
            raise SmConfigError("--opensm-reload-command", f"cannot run {shown}: "
                                f"{exc.strerror or exc}; {STILL_INSTALLED}") from exc
        if done.returncode is None:
            raise SmUnavailableError("opensm", f"the reload command {shown} did not finish in "
                                     f"{self.timeout:g} s; {STILL_INSTALLED}")
        if done.returncode != 0:
            said = (done.stderr.strip() or done.stdout.strip())[-500:] or "no output"
            raise SmUnavailableError("opensm", f"the reload command {shown} exited with "
                                     f"{done.returncode} ({said}); {STILL_INSTALLED}")


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Why a port's PKey table could not be read."""

    reason: str
    absent: bool = False
    """The SM does not know the port (so it carries no partition), as opposed to a failure."""


PortTable = frozenset[int] | Unreadable
"""A port's PKey table (its non-zero entries, membership bit included), or why not."""


class Readback(Protocol):
    def tables(self, guids: Collection[str]) -> Mapping[str, PortTable]:
        """Each port's PKey table, as the fabric has it now."""
        ...


_TABLE_LINE = re.compile(r"\s*[0-9]+:((?:\s+0x[0-9a-fA-F]{4})+)\s*")


@dataclass(frozen=True, slots=True)
class SmpqueryReadback:
    """``smpquery -G pkeys <port GUID> <port>`` for each port (infiniband-diags), through
    ``runner``. ``extra_args`` go before the query (``-C mlx5_0 -P 1`` to pick the local HCA
    port it sends from)."""

    runner: Runner = field(default_factory=ProcessRunner)
    port: int = 1
    extra_args: tuple[str, ...] = ()
    timeout: float = 10.0

    def tables(self, guids: Collection[str]) -> Mapping[str, PortTable]:
        return {guid: self._table(guid) for guid in guids}

    def _table(self, guid: str) -> PortTable:
        argv = ["smpquery", *self.extra_args, "-G", "pkeys", guid, str(self.port)]
        try:
            done = self.runner(argv, self.timeout)
        except OSError as exc:
            raise SmConfigError("readback", f"cannot run smpquery ({exc.strerror or exc}): "
                                "install infiniband-diags") from exc
        if done.returncode is None:
            return Unreadable(f"smpquery did not answer in {self.timeout:g} s")
        if done.returncode != 0:
            out = done.stdout + done.stderr
            said = [line.strip() for line in out.splitlines() if "iberror" in line] or \
                [line.strip() for line in out.splitlines()[-1:]] or \
                [f"exit status {done.returncode}"]
            # The SA answered that it knows no such port: it is not on the fabric (a VF not up
            # yet, or gone). When the SA itself does not answer, the MAD timed out.
            absent = "can't resolve destination port" in out and "_do_madrpc" not in out
            return Unreadable("; ".join(said), absent)
        return parse_pkey_table(done.stdout)


def parse_pkey_table(text: str) -> PortTable:
    """The non-zero entries ``smpquery pkeys`` printed (``   0: 0x7fff 0x8a01 0x0000 …``)."""
    rows = [m.group(1).split() for m in map(_TABLE_LINE.fullmatch, text.splitlines()) if m]
    if not rows:
        return Unreadable(f"smpquery printed no PKey table: {text.strip()[:200]!r}")
    return frozenset(int(entry, 16) for row in rows for entry in row) - {0}
