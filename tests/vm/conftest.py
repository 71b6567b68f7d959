"""The real-kernel tier: tests marked ``vm`` run inside one QEMU guest per pytest session.

On the host, every selected ``vm`` test in this directory is replaced by a :class:`GuestItem`,
and those stand-ins are moved to the end of the run. When the test loop starts, the guest boots
once in a background thread (``vm_harness.run_guest``) and runs pytest *inside* it on all of them
(``VFKEEPER_IN_VM=1``) while the host's own tests run; the guest writes one JSON line per test
phase into the writable share. Each stand-in waits for the guest run, then reports its own
test's guest outcome: pass, fail with the guest's traceback, skip or xfail with the guest's
reason. Where QEMU or the kernel is missing every item skips and says what is missing
(``VFKEEPER_VM_REQUIRED=1`` turns that skip into a failure). QEMU is killed when the session
ends first (``-x``, Ctrl-C), and dies with the pytest process (``PR_SET_PDEATHSIG``).

Inside the guest the same tests run for real, with the fixtures below (igb PF, VFs).
See docs/testing.md.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import vm_guest
import vm_harness

IN_VM = os.environ.get("VFKEEPER_IN_VM") == "1"
HERE = Path(__file__).resolve().parent
RESULTS_NAME = "results.jsonl"
GUEST_PLUGINS = {"timeout": "pytest_timeout"}
"""Plugins the guest's pytest loads (entry-point autoloading is off there, to boot faster):
the name the host's plugin manager knows it by -> the module ``-p`` loads."""


# --- inside the guest: report every phase into the share ------------------------------------------
def _write_record(record: dict[str, Any]) -> None:
    path = os.environ.get("VFKEEPER_VM_RESULTS")
    if IN_VM and path:
        with open(path, "a") as f:
            f.write(json.dumps(record) + "\n")


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record: dict[str, Any] = {
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "duration": report.duration,
    }
    if hasattr(report, "wasxfail"):
        record["wasxfail"] = report.wasxfail
    if report.failed:
        record["longrepr"] = report.longreprtext
        record["sections"] = list(report.sections)
    elif report.skipped:
        record["reason"] = _skip_reason(report)
    _write_record(record)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _write_record(
            {"nodeid": report.nodeid, "when": "collect", "outcome": "failed",
             "longrepr": report.longreprtext}
        )  # fmt: skip


# --- inside the guest: fixtures -------------------------------------------------------------------
@pytest.fixture(scope="session")
def igb_pf() -> str:
    """The PCI address of the (emulated) igb PF, found by its driver, with no VFs yet."""
    pfs = vm_guest.sriov_pfs("igb")
    if not pfs:
        pytest.skip("no SR-IOV capable device bound to igb here (this fixture is for the VM guest)")
    vm_guest.set_numvfs(pfs[0], 0, fresh=False)
    return pfs[0]


@pytest.fixture
def igb_vfs(igb_pf: str) -> Iterator[Callable[[int], list[str]]]:
    """``make(n)`` gives the igb PF exactly n VFs bound to igbvf and returns their addresses in
    VF-index order; the PF is back to 0 VFs afterwards."""
    yield lambda count: vm_guest.set_numvfs(igb_pf, count)
    vm_guest.set_numvfs(igb_pf, 0, fresh=False)


@pytest.fixture(scope="module")
def igb_vfs_shared(igb_pf: str) -> Iterator[Callable[[int], list[str]]]:
    """Like ``igb_vfs``, but the VFs live for the whole module: ``make(n)`` reuses them when the
    count is already n. Saves a VF destroy + create per test (seconds each under TCG); the price
    is that every test must put back the VF attributes it changes."""
    yield lambda count: vm_guest.set_numvfs(igb_pf, count, fresh=False)
    vm_guest.set_numvfs(igb_pf, 0, fresh=False)


# --- on the host: one guest run serves every selected vm test -------------------------------------
class GuestItem(pytest.Item):
    """Stands in on the host for one ``vm`` test and reports what the guest made of it."""

    def __init__(self, *, original: pytest.Function, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.original = original
        self.own_markers.extend(original.own_markers)
        self.keywords.update(original.keywords)

    def runtest(self) -> None:
        self.config.stash[_TIER].report(self)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.original.reportinfo()


class _Tier:
    """The one guest run of this session. It starts in the background as soon as the session's
    test loop starts, so the host's own tests run while the guest boots and tests; the stand-in
    items run last and wait for it."""

    def __init__(self, config: pytest.Config, items: list[GuestItem]) -> None:
        self.config = config
        self.items = items
        self.started = False
        self.unavailable: str | None = None
        self.problem = ""
        self.run: vm_harness.GuestRun | None = None
        self.records: dict[str, list[dict[str, Any]]] = {}
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None
        self.collected = False

    def options(self) -> vm_harness.VmOptions:
        opts = vm_harness.VmOptions()
        for item in self.items:
            for mark in item.iter_markers("vm"):
                opts = opts.merge(vm_harness.VmOptions.from_kwargs(dict(mark.kwargs)))
        return opts

    def report(self, item: GuestItem) -> None:
        if not self.started:  # the test loop did not start it (another plugin ran the items)
            self.start()
        self._collect()
        if self.unavailable is not None:
            if os.environ.get("VFKEEPER_VM_REQUIRED") == "1":
                pytest.fail(f"{self.unavailable} (VFKEEPER_VM_REQUIRED=1)", pytrace=False)
            raise pytest.skip.Exception(self.unavailable, _use_item_location=True)
        outcome = vm_harness.outcome_of(self._records_for(item.nodeid))
        if outcome.kind == "failed" and self.run is not None:
            outcome = vm_harness.Outcome(
                "failed", f"{outcome.message}\n(guest console log: {self.run.console_log})"
            )
        _apply(outcome, self._no_report(item.nodeid))

    def _records_for(self, nodeid: str) -> list[dict[str, Any]]:
        own = self.records.get(nodeid, [])
        # A module that did not even import in the guest fails every test in it.
        collect = [
            r for key, recs in self.records.items() for r in recs
            if r["when"] == "collect" and key and (nodeid + "::").startswith(key + "::")
        ]  # fmt: skip
        return collect + own

    def _no_report(self, nodeid: str) -> str:
        run = self.run
        where = f"console log: {run.console_log}" if run else ""
        tail = f"\n--- last lines of the guest console ---\n{run.console_tail()}" if run else ""
        return f"the guest did not report {nodeid}: {self.problem}; {where}{tail}"

    def start(self) -> None:
        """Boot in a background thread (or note why the tier is unavailable); returns at once."""
        self.started = True
        try:
            image = vm_harness.find_image()
        except vm_harness.VmUnavailable as exc:
            self.unavailable = str(exc)
            return
        opts = self.options()
        rootdir = self.config.rootpath
        share = vm_harness.GUEST_SHARE
        # Python under TCG is ~10x slower and every first read crosses 9p: the guest's pytest
        # loads only what vm tests need (no entry-point plugins, no conftest above this one).
        # Options on the command line (pytest reads -p before it expands an @file); the node ids,
        # however many, in the file.
        opts_args = ["-p", "no:cacheprovider", "-v", "--color=no", "--rootdir", str(rootdir)]
        opts_args += ["--confcutdir", str(HERE)]
        for name, module in GUEST_PLUGINS.items():
            if self.config.pluginmanager.hasplugin(name):
                opts_args += ["-p", module]
        if self.config.inipath:
            opts_args += ["-c", str(self.config.inipath)]
        args = [item.nodeid for item in self.items]
        venv_bin = Path(sys.executable).parent
        run_sh = "\n".join([
            # VFK_SHARE: the harness's own tests run this script on the host.
            f"share=${{VFK_SHARE:-{share}}}",
            f"cd {shlex.quote(str(rootdir))}",
            f'export VFKEEPER_IN_VM=1 VFKEEPER_VM_RESULTS="$share/{RESULTS_NAME}"',
            "export PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PYTEST_DISABLE_PLUGIN_AUTOLOAD=1",
            f"export PATH={shlex.quote(str(venv_bin))}:$PATH",
            f'{shlex.join([sys.executable, "-m", "pytest", *opts_args])} "@$share/pytest-args.txt"',
            'echo $? >"$share/pytest.rc"',
            "",
        ])  # fmt: skip
        workdir = vm_harness.new_workdir()
        self._say(
            f"vm tier: booting kernel {image.kver} in QEMU {image.qemu_version} (TCG) in the "
            f"background for {len(self.items)} test(s); console log {workdir / 'console.log'}"
        )

        def boot() -> None:
            try:
                self.run = vm_harness.run_guest(
                    image, opts, run_sh, files={"pytest-args.txt": "\n".join(args) + "\n"},
                    workdir=workdir, stop=self.stop,
                )  # fmt: skip
            except BaseException as exc:  # reported by the stand-in items, in the main thread
                self.failure = exc

        self.thread = threading.Thread(target=boot, name="vfkeeper-vm-tier", daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        """Wait for the guest run (once) and read what it reported."""
        if self.collected:
            return
        self.collected = True
        if self.thread is None:
            return
        waited = time.monotonic()
        self.thread.join()
        waited = time.monotonic() - waited
        if self.failure is not None:
            where = "".join(traceback.format_exception(self.failure)[-4:]).strip()
            self.problem = f"the harness failed: {self.failure!r}; at: {where}"
            return
        run = self.run
        assert run is not None
        self.records = vm_harness.read_records(run.share / RESULTS_NAME)
        self.problem = vm_harness.describe(run)
        self._say(
            f"vm tier: guest run took {run.duration_s:.1f} s; the vm tests waited {waited:.1f} s "
            f"for it ({self.problem})"
        )

    def finish(self) -> None:
        """Kill QEMU if it still runs (the session ends early: -x, Ctrl-C, a crash)."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()

    def _say(self, line: str) -> None:
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capman = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is None:
            return
        if capman is None:
            reporter.write_line(line)
            return
        with capman.global_and_fixture_disabled():
            reporter.write_line(line)


def _apply(outcome: vm_harness.Outcome, missing: str) -> None:
    """Make this host item end the way its test ended in the guest."""
    if outcome.kind == "failed":
        pytest.fail(outcome.message, pytrace=False)
    if outcome.kind == "skipped":
        # Reported at the test's own location, as a skip inside the test would be.
        raise pytest.skip.Exception(outcome.message, _use_item_location=True)
    if outcome.kind == "xfailed":
        pytest.xfail(outcome.message)
    if outcome.kind == "missing":
        pytest.fail(missing, pytrace=False)


_TIER = pytest.StashKey[_Tier]()


@pytest.hookimpl(trylast=True)  # after -m/-k deselection: the guest runs only what is selected
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_VM:
        return
    proxies: list[GuestItem] = []
    host: list[pytest.Item] = []
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and item.get_closest_marker("vm") is not None
            and HERE in item.path.resolve().parents
        ):
            proxy = GuestItem.from_parent(item.parent, name=item.name, original=item)
            if config.pluginmanager.hasplugin("timeout"):
                guard = float(os.environ.get("VFKEEPER_VM_TIMEOUT") or vm_harness.DEFAULT_TIMEOUT_S)
                proxy.add_marker(pytest.mark.timeout(guard + 120))
            proxies.append(proxy)
        else:
            host.append(item)
    if proxies:
        # The stand-ins go last: the host's tests run while the guest works in the background.
        items[:] = host + proxies
        config.stash[_TIER] = _Tier(config, proxies)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Iterator[object]:
    tier = session.config.stash.get(_TIER, None)
    if tier is None or IN_VM:
        return (yield)
    option = session.config.option
    collection_failed = session.testsfailed and not option.continue_on_collection_errors
    if not option.collectonly and not collection_failed:
        tier.start()
    try:
        return (yield)
    finally:
        tier.finish()


def pytest_unconfigure(config: pytest.Config) -> None:
    tier = config.stash.get(_TIER, None)
    if tier is not None:
        tier.finish()
