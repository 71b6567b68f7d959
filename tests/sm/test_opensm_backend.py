"""The OpenSM backend without a fabric: real files, real processes for the reload (a pidfile, a
command), and readbacks that answer what ``smpquery`` answers. The ibsim tier
(``test_opensm_contract.py``, ``test_opensm_ibsim.py``) runs the same code on the real OpenSM."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import pytest

from vfkeeper.sm.errors import (
    OperatorPartitionError,
    PartitionsFileError,
    SmConfigError,
    SmUnavailableError,
)
from vfkeeper.sm.opensm import OpenSmBackend, install_atomically
from vfkeeper.sm.opensm_tools import (
    CommandReload,
    PortTable,
    RunResult,
    SignalReload,
    SmpqueryReadback,
    Unreadable,
    parse_pkey_table,
)
from vfkeeper.sm.partitions_file import DEFAULT_RULE, parse, render
from vfkeeper.sm.protocol import ChangeSet, Partition

G0, G1 = "0x0002c90300a00001", "0x0002c90300a00011"
A = 0x0A01
BASE = f"storage=0x0b01, ipoib : {G1}=full ;\n"


class Counting:
    """Counts the calls of a reload or an installer, and passes them on."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def __call__(self, *args: object) -> None:
        self.calls += 1
        self.inner(*args)  # type: ignore[operator]


class Absent:
    """A readback on a fabric that has none of the ports: what smpquery says then."""

    def __init__(self) -> None:
        self.rounds: list[list[str]] = []

    def tables(self, guids: Collection[str]) -> Mapping[str, PortTable]:
        self.rounds.append(list(guids))
        return {g: Unreadable("can't resolve destination port", absent=True) for g in guids}


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    base = tmp_path / "base.conf"
    base.write_text(BASE)
    return tmp_path / "partitions.conf", base


def ok_reload() -> CommandReload:
    return CommandReload(("true",))


# --- batching: one write and one reload for a whole batch -------------------------------------
def test_a_thousand_additions_over_ten_pkeys_are_one_write_and_one_reload(
        files: tuple[Path, Path]) -> None:
    path, base = files
    install, reload, readback = Counting(install_atomically), Counting(ok_reload()), Absent()
    sm = OpenSmBackend(path, base, reload, readback, install=install, settle_timeout=0)
    guids = [f"0x0002c904{i:08x}" for i in range(1000)]
    batch = ChangeSet(add={0x0A00 + p: {g: "full" if i % 2 else "limited"
                                        for i, g in enumerate(guids[p * 100:(p + 1) * 100])}
                           for p in range(10)})
    result = sm.apply(batch)
    assert (install.calls, reload.calls) == (1, 1)
    assert len(readback.rounds) == 1 and sorted(readback.rounds[0]) == guids
    assert result.verified and len(result.differences) == 1000
    assert all("is not on the fabric" in d for d in result.differences)
    parsed = parse(path.read_text())
    assert sum(len(p.members) for p in parsed.partitions(operator=False).values()) == 1000
    assert path.read_text().count("\n\t0x0002c904") == 1000  # one GUID per line


def test_a_batch_that_changes_nothing_writes_and_reloads_nothing(
        files: tuple[Path, Path]) -> None:
    path, base = files
    install, reload = Counting(install_atomically), Counting(ok_reload())
    sm = OpenSmBackend(path, base, reload, install=install)
    batch = ChangeSet(add={A: {G0: "full"}})
    sm.apply(batch)
    assert sm.apply(batch) == sm.apply(ChangeSet())
    assert (install.calls, reload.calls) == (1, 1)


# --- refusals: nothing written ----------------------------------------------------------------
def test_a_batch_touching_the_bases_partition_is_refused_and_nothing_written(
        files: tuple[Path, Path]) -> None:
    path, base = files
    install = Counting(install_atomically)
    sm = OpenSmBackend(path, base, ok_reload(), install=install)
    with pytest.raises(OperatorPartitionError, match=r"0x0b01 is defined outside vfkeeper \(.*"
                       r"base.conf:1\)"):
        sm.apply(ChangeSet(add={A: {G0: "full"}, 0x0B01: {G0: "full"}}))
    assert install.calls == 0 and not path.exists()


def test_an_installed_file_vfkeeper_did_not_write_is_not_overwritten(
        files: tuple[Path, Path]) -> None:
    path, base = files
    foreign = "Default=0x7fff : ALL=full ;\nhand=0x0c01 : ALL=full ;\n"
    path.write_text(foreign)
    sm = OpenSmBackend(path, base, ok_reload())
    with pytest.raises(SmConfigError, match="move them into the base file"):
        sm.apply(ChangeSet(add={A: {G0: "full"}}))
    assert path.read_text() == foreign


def test_a_missing_base_file_is_a_config_error_and_none_means_no_base(tmp_path: Path) -> None:
    path = tmp_path / "partitions.conf"
    with pytest.raises(SmConfigError, match=r"--partitions-base: .*does not exist"):
        OpenSmBackend(path, tmp_path / "nope.conf", ok_reload()).apply(ChangeSet())
    OpenSmBackend(path, None, ok_reload()).apply(ChangeSet(add={A: {G0: "full"}}))
    assert path.read_text().startswith("# ---- vfkeeper section") and DEFAULT_RULE in \
        path.read_text()


def test_an_unwritable_or_unreadable_partitions_file_is_a_config_error(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    sm = OpenSmBackend(not_a_dir / "partitions.conf", None, ok_reload())
    with pytest.raises(SmConfigError, match=r"--partitions-file: cannot read .*Not a directory"):
        sm.apply(ChangeSet(add={A: {G0: "full"}}))
    sm = OpenSmBackend(Path("/proc/vfkeeper-partitions.conf"), None, ok_reload())  # no new files
    with pytest.raises(SmConfigError, match="--partitions-file: cannot write"):
        sm.apply(ChangeSet(add={A: {G0: "full"}}))


def test_an_installed_file_that_is_not_utf8_names_the_line(files: tuple[Path, Path]) -> None:
    path, base = files
    path.write_bytes(b"a=0x1: 0x1;\nb=0x2: \xff;\n")
    with pytest.raises(PartitionsFileError, match=r"partitions.conf:2: not UTF-8"):
        OpenSmBackend(path, base, ok_reload()).read()


def test_read_before_the_first_apply_shows_the_base(files: tuple[Path, Path]) -> None:
    path, base = files
    view = OpenSmBackend(path, base, ok_reload()).read()
    assert list(view.partitions) == [0x0B01] and view.partitions[0x0B01].operator_owned


# --- install ------------------------------------------------------------------------------------
def test_install_replaces_the_file_whole_keeps_its_mode_and_leaves_no_temp_file(
        tmp_path: Path) -> None:
    path = tmp_path / "partitions.conf"
    path.write_text("old")
    path.chmod(0o640)
    install_atomically(path, "new\n")
    assert path.read_text() == "new\n" and path.stat().st_mode & 0o777 == 0o640
    with pytest.raises(UnicodeEncodeError):
        install_atomically(path, "\udcff")  # fails while writing the temp file
    assert path.read_text() == "new\n" and sorted(os.listdir(tmp_path)) == ["partitions.conf"]


# --- reload -------------------------------------------------------------------------------------
def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize(("content", "error", "message"), [
    (None, SmUnavailableError, "there is no pidfile"),
    ("not a pid\n", SmConfigError, "--opensm-pidfile: .* holds 'not a pid\\\\n', not a process"),
    ("1\n", SmConfigError, "not a process id"),
    ("dead", SmUnavailableError, "is not running .*stale pidfile"),
])
def test_a_pidfile_that_cannot_be_used_is_a_clear_error(
        tmp_path: Path, content: str | None, error: type[Exception], message: str) -> None:
    pidfile = tmp_path / "opensm.pid"
    if content is not None:
        pidfile.write_text(f"{dead_pid()}\n" if content == "dead" else content)
    with pytest.raises(error, match=message) as exc:
        SignalReload(pidfile)()
    assert "new partitions file is installed" in str(exc.value) or error is SmConfigError


def test_a_stale_pidfile_naming_another_process_is_refused_and_it_is_not_signalled(
        tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "30"])  # SIGHUP would kill it
    try:
        pidfile = tmp_path / "opensm.pid"
        pidfile.write_text(f"{other.pid}\n")
        with pytest.raises(SmConfigError, match=f"pid {other.pid} .* is 'sleep', not opensm"):
            SignalReload(pidfile)()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_zombie_is_not_running(tmp_path: Path) -> None:
    zombie = subprocess.Popen(["true"])
    try:
        stat = Path(f"/proc/{zombie.pid}/stat")
        deadline = time.monotonic() + 10
        while ") Z" not in stat.read_text():  # exited, not reaped yet
            assert time.monotonic() < deadline
            time.sleep(0.01)
        pidfile = tmp_path / "opensm.pid"
        pidfile.write_text(str(zombie.pid))
        with pytest.raises(SmUnavailableError, match="is not running"):
            SignalReload(pidfile, process_name="true")()
    finally:
        zombie.wait()


def test_the_pidfile_reload_sends_sighup_to_the_named_process(tmp_path: Path) -> None:
    target = subprocess.Popen(["sleep", "30"])
    try:
        pidfile = tmp_path / "opensm.pid"
        pidfile.write_text(f"{target.pid}\n")
        SignalReload(pidfile, process_name="sleep")()
        assert target.wait(timeout=10) == -1  # killed by SIGHUP (signal 1)
    finally:
        target.kill()
        target.wait()


@pytest.mark.parametrize(("argv", "error", "message"), [
    (("/nonexistent/reload-opensm",), SmConfigError, "--opensm-reload-command: cannot run"),
    (("sh", "-c", "echo 'opensm: no such unit' >&2; exit 3"), SmUnavailableError,
     r"exited with 3 \(opensm: no such unit\)"),
    (("sleep", "5"), SmUnavailableError, "did not finish in 0.2 s"),
])
def test_a_reload_command_that_fails_is_a_clear_error(
        argv: tuple[str, ...], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message) as exc:
        CommandReload(argv, timeout=0.2)()
    assert "new partitions file is installed and valid" in str(exc.value)


def test_an_empty_reload_command_is_refused() -> None:
    with pytest.raises(SmConfigError, match="--opensm-reload-command: is empty"):
        CommandReload(())


class FailsOnce:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.calls == 1:
            raise SmUnavailableError("opensm", "down for a moment")


def test_after_a_failed_reload_the_file_stays_and_the_next_apply_reloads(
        files: tuple[Path, Path]) -> None:
    path, base = files
    reload = FailsOnce()
    sm = OpenSmBackend(path, base, reload)
    with pytest.raises(SmUnavailableError, match="down for a moment"):
        sm.apply(ChangeSet(add={A: {G0: "full"}}))
    assert dict(sm.read().members_of(A)) == {G0: "full"}  # not rolled back
    sm.apply(ChangeSet())
    sm.apply(ChangeSet())
    assert reload.calls == 2  # the owed one, then nothing


# --- readback -----------------------------------------------------------------------------------
class Settling:
    """A port whose table shows the old state for ``late`` reads, then the new one."""

    def __init__(self, late: int, new: frozenset[int]) -> None:
        self.late = late
        self.new = new
        self.reads = 0

    def tables(self, guids: Collection[str]) -> Mapping[str, PortTable]:
        self.reads += 1
        table = frozenset({0x7FFF}) if self.reads <= self.late else self.new
        return dict.fromkeys(guids, table)


class ManualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_readback_polls_with_a_growing_interval_until_the_port_shows_the_change(
        files: tuple[Path, Path]) -> None:
    path, base = files
    t = ManualTime()
    sm = OpenSmBackend(path, base, ok_reload(), Settling(2, frozenset({0x7FFF, 0x8A01})),
                       clock=t.clock, sleep=t.sleep)
    result = sm.apply(ChangeSet(add={A: {G0: "full"}}))
    assert result.verified and result.differences == ()
    assert t.sleeps == [0.05, 0.1]


def test_readback_gives_up_at_the_deadline_and_reports_the_difference(
        files: tuple[Path, Path]) -> None:
    path, base = files
    t = ManualTime()
    sm = OpenSmBackend(path, base, ok_reload(), Settling(10**6, frozenset()),
                       settle_timeout=5.0, clock=t.clock, sleep=t.sleep)
    result = sm.apply(ChangeSet(add={A: {G0: "limited"}}))
    assert result.differences == (f"port {G0}: the SM should have given it 0x0a01 of "
                                  "vfkeeper's partitions, and its PKey table has none",)
    assert 5.0 <= t.now < 7.0 and max(t.sleeps) == 1.0


def test_without_a_readback_the_result_is_not_verified(files: tuple[Path, Path]) -> None:
    path, base = files
    result = OpenSmBackend(path, base, ok_reload()).apply(ChangeSet(add={A: {G0: "full"}}))
    assert not result.verified and result.differences == ()


SMPQUERY_OK = """\
   0: 0x7fff 0x8a01 0x0000 0x0000 0x0000 0x0000 0x0000 0x0000
   8: 0x0a02 0x0000 0x0000 0x0000 0x0000 0x0000 0x0000 0x0000
64 pkeys capacity for this port
"""
# What smpquery 44 (infiniband-diags) printed under ibsim: a port the SA does not know, and any
# port while the SM was stopped.
UNKNOWN_PORT = RunResult(255, "smpquery: iberror: failed: can't resolve destination port "
                         "0x0002c90300a00f01\n",
                         "ibwarn: [25585] ib_path_query_via: sa call path_query failed\n")
SM_STOPPED = RunResult(255, "smpquery: iberror: failed: can't resolve destination port "
                       "0x0002c90300a00001\n",
                       "ibwarn: [25592] _do_madrpc: recv failed: Connection timed out\n"
                       "ibwarn: [25592] mad_rpc_rmpp: _do_madrpc failed; dport (Lid 1)\n"
                       "ibwarn: [25592] ib_path_query_via: sa call path_query failed\n")


def test_smpquery_output_is_read_as_a_pkey_table() -> None:
    assert parse_pkey_table(SMPQUERY_OK) == {0x7FFF, 0x8A01, 0x0A02}
    assert isinstance(parse_pkey_table("Usage: smpquery ..."), Unreadable)


@pytest.mark.parametrize(("answer", "absent"), [(UNKNOWN_PORT, True), (SM_STOPPED, False)])
def test_a_port_the_sa_does_not_know_is_absent_but_a_silent_sa_is_a_failure(
        answer: RunResult, absent: bool) -> None:
    calls: list[Sequence[str]] = []

    def runner(argv: Sequence[str], timeout: float) -> RunResult:
        calls.append(argv)
        return answer

    table = SmpqueryReadback(runner, extra_args=("-C", "mlx5_0")).tables([G0])[G0]
    assert isinstance(table, Unreadable) and table.absent is absent
    assert "can't resolve destination port" in table.reason
    assert calls == [["smpquery", "-C", "mlx5_0", "-G", "pkeys", G0, "1"]]


def test_render_is_what_the_backend_installs(files: tuple[Path, Path]) -> None:
    path, base = files
    OpenSmBackend(path, base, ok_reload()).apply(ChangeSet(add={A: {G0: "full"}}))
    assert path.read_text() == render(BASE, [Partition(A, {G0: "full"})])
