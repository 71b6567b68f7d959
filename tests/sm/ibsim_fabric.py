"""A simulated InfiniBand fabric with the real OpenSM on it, for the ``ibsim`` tier.

ibsim (Debian ``ibsim-utils``) simulates the fabric's nodes and answers MADs; every IB tool runs
under ``ibsim-run``, an LD_PRELOAD shim that sends its MADs to ibsim instead of a kernel. ibsim
has no virtual ports, so each VF's port GUID is its own one-port ``Hca`` behind one switch
(``caguid=`` sets the node GUID; its port 1 is node GUID + 1), beside the SM's own HCA, which
comes first in the file (so OpenSM attaches there). ``IBSIM_SOCKNAME`` gives each fabric its own
socket, so several can run at once.

OpenSM runs as ``opensm -P <partitions file> -s 0 -d 2`` (no periodic sweeps: a SIGHUP starts
the heavy sweep that re-reads the file; the log flushed at each line) with ``OSM_CACHE_DIR`` and
``OSM_TMP_DIR`` and its log in the work directory, and the harness writes its pid to a pidfile,
as a service manager would (OpenSM has no pidfile option). Both processes get their own process
group, die with the process that started them (``PR_SET_PDEATHSIG``), and are stopped, group and
all, by :meth:`Fabric.stop`.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

from vfkeeper.sm.opensm_tools import ProcessRunner, RunResult, parse_pkey_table
from vfkeeper.sm.protocol import SmView

PORT_GUIDS = [f"0x0002c90300a000{i:x}1" for i in range(8)]
"""The simulated VF ports the tier's fabrics have: one one-port HCA each, 0x10 apart."""
SM_PORT_GUID = "0x0002c90300e00001"
SWITCH_GUID = "0x0002c90300f00000"
TOOLS = ("ibsim", "ibsim-run", "opensm", "smpquery")
INSTALL_HINT = ("install them with `apt-get install --no-install-recommends ibsim-utils opensm "
                "infiniband-diags` (./dev.sh setup does)")


class FabricUnavailable(Exception):
    """ibsim or OpenSM is missing, or the fabric did not come up."""


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def topology(port_guids: Sequence[str]) -> str:
    """The ibsim net file: the SM's HCA, then one one-port HCA per port GUID, all on a switch."""
    values = [int(g, 16) for g in port_guids]
    nodes = {v - 1 for v in values}
    if len(nodes) != len(values) or nodes & set(values) or int(SM_PORT_GUID, 16) in values:
        raise ValueError("port GUIDs must be distinct, at least 2 apart, and not the SM's: "
                         "each one-port HCA uses its GUID and the one before it")
    hcas = ["sm", *(f"vf{i}" for i in range(len(values)))]
    guids = [int(SM_PORT_GUID, 16), *values]
    lines = [f"caguid={guids[0] - 1:#018x}", f'Hca 1 "{hcas[0]}"', '[1] "sw"[1]', ""]
    for i, (hca, guid) in enumerate(zip(hcas[1:], guids[1:], strict=True), 2):
        lines += [f"caguid={guid - 1:#018x}", f'Hca 1 "{hca}"', f'[1] "sw"[{i}]', ""]
    lines += [f"switchguid={SWITCH_GUID}", f'Switch {len(hcas)} "sw"']
    lines += [f'[{i}] "{hca}"[1]' for i, hca in enumerate(hcas, 1)]
    return "\n".join(lines) + "\n"


def _die_with_parent() -> None:
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


class Fabric:
    """One ibsim fabric and one OpenSM reading ``partitions_file``, in ``workdir``."""

    def __init__(self, workdir: Path, port_guids: Sequence[str]) -> None:
        self.workdir = workdir
        self.port_guids = list(port_guids)
        self.partitions_file = workdir / "partitions.conf"
        self.pidfile = workdir / "opensm.pid"
        self.opensm_log = workdir / "opensm.log"
        self.env = {"IBSIM_SOCKNAME": f"vfk-{uuid.uuid4().hex[:12]}", "SIM_HOST": "sm",
                    "OSM_CACHE_DIR": str(workdir), "OSM_TMP_DIR": str(workdir)}
        self.runner = ProcessRunner(prefix=("ibsim-run",), env=self.env)
        self._procs: list[subprocess.Popen[bytes]] = []

    # --- start and stop ---------------------------------------------------------------------
    def start(self, partitions: str, timeout: float = 30.0) -> None:
        missing = missing_tools()
        if missing:
            raise FabricUnavailable(f"{', '.join(missing)} not found: {INSTALL_HINT}")
        self.partitions_file.write_text(partitions)
        (self.workdir / "net").write_text(topology(self.port_guids))
        try:
            self._spawn(["ibsim", "-s", "-n", str(self.workdir / "net")], "ibsim.out")
            self._wait(lambda: "Network simulator ready" in self._out("ibsim.out"), 10.0,
                       "ibsim to start")
            opensm = self._spawn(["ibsim-run", "opensm", "-P", str(self.partitions_file),
                                  "-f", str(self.opensm_log), "-s", "0", "-d", "2"], "opensm.out")
            self.pidfile.write_text(f"{opensm.pid}\n")
            self._wait(lambda: self.table(SM_PORT_GUID) == frozenset({0xFFFF}), timeout,
                       "the subnet to come up (the SM port to get PKey 0xffff)")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """OpenSM first (it does not exit once ibsim is gone), then ibsim; TERM, then KILL."""
        for proc in reversed(self._procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        self._procs.clear()

    @property
    def opensm_pid(self) -> int:
        return int(self.pidfile.read_text())

    def _spawn(self, argv: list[str], out_name: str) -> subprocess.Popen[bytes]:
        with (self.workdir / out_name).open("wb") as out:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, cwd=self.workdir,
                                    env={**os.environ, **self.env}, start_new_session=True,
                                    preexec_fn=_die_with_parent)  # noqa: PLW1509 - prctl only
        self._procs.append(proc)
        return proc

    def _out(self, name: str) -> str:
        path = self.workdir / name
        return path.read_text(errors="replace") if path.exists() else ""

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p for p in self._procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                why = f"{dead[0].args[0:2]} exited with {dead[0].returncode}" if dead else \
                    f"no answer in {timeout:g} s"
                raise FabricUnavailable(f"waiting for {what}: {why}\n{self.logs()}")
            time.sleep(0.05)

    def logs(self) -> str:
        tail = [f"--- {name} ---\n" + self._out(name)[-1500:]
                for name in ("ibsim.out", "opensm.out", "opensm.log")]
        return "\n".join(tail)

    # --- looking at it ----------------------------------------------------------------------
    def run(self, argv: Sequence[str], timeout: float = 10.0) -> RunResult:
        return self.runner(argv, timeout)

    def table(self, port_guid: str) -> frozenset[int] | None:
        """A port's non-zero PKey entries as the simulated port holds them (``None``: not
        readable now)."""
        done = self.run(["smpquery", "-G", "pkeys", port_guid, "1"])
        table = parse_pkey_table(done.stdout) if done.returncode == 0 else None
        return table if isinstance(table, frozenset) else None

    def wait_for_tables(self, expected: dict[str, frozenset[int]],
                        timeout: float = 10.0) -> dict[str, frozenset[int] | None]:
        """Poll until every port's table is as ``expected`` or ``timeout``; the last tables."""
        deadline = time.monotonic() + timeout
        while True:
            seen = {guid: self.table(guid) for guid in expected}
            if seen == expected or time.monotonic() > deadline:
                return seen
            time.sleep(0.05)

    def hup(self) -> None:
        os.kill(self.opensm_pid, signal.SIGHUP)

    def heavy_sweeps(self) -> int:
        """How many times OpenSM has re-read the partitions (one per heavy sweep)."""
        return self._out("opensm.log").count("SUBNET UP")

    def fail_opens(self) -> int:
        """How many times OpenSM has failed to parse the partitions file and fallen back to
        ``Default=0x7fff : ALL=full`` (``osm_prtn.c``: "retrying with default config")."""
        return self._out("opensm.log").count("Partition configuration in error")


def expected_tables(view: SmView, port_guids: Sequence[str]) -> dict[str, frozenset[int]]:
    """What each simulated port's PKey table must hold for ``view``: the default partition as a
    limited member (vfkeeper's Default rule: ``ALL=limited``), and each partition that lists it,
    0x8000 set for a full member. Operator partitions given by keyword (``ALL``) are not
    counted: tests that use them say what they expect."""
    return {guid: frozenset({0x7FFF} | {
        pkey | 0x8000 if part.members[guid] == "full" else pkey
        for pkey, part in view.partitions.items() if guid in part.members})
        for guid in port_guids}
