"""Boot the Debian kernel in QEMU with an emulated Intel igb SR-IOV NIC and run a script in it.

The guest is the one ``../../TESTBED.md`` describes: TCG (no KVM), q35, the igb NIC behind a PCIe
root port, the host's root shared read-only over 9p under a tmpfs overlay, and a writable 9p share
(a directory of the host) mounted at :data:`GUEST_SHARE`. The initramfs's init
(``scripts/vm/initramfs-init``) chroots into the overlay and runs ``run.sh`` from that share, so
the guest runs this repository's own ``.venv`` and pytest. ``scripts/vm/setup.sh`` builds the
kernel + initramfs and writes ``$VFKEEPER_VM_CACHE/vm.env``, which :func:`find_image` reads.

Also a debugging tool::

    .venv/bin/python tests/vm/vm_harness.py shell          # a shell in the guest; exit powers off
    .venv/bin/python tests/vm/vm_harness.py run -- ip -d link   # one command, print the console
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_CACHE = Path("/var/cache/vfkeeper-vm")
INIT_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "vm" / "initramfs-init"
"""The initramfs's /init; vm.env records the hash of the one the initramfs was built from."""
GUEST_SHARE = "/run/vfkeeper-vm"
"""Where the writable share is mounted in the guest."""
SETUP_HINT = "run `./dev.sh setup` as root (it runs scripts/vm/setup.sh), then re-run the tests"
DEFAULT_TIMEOUT_S = 900.0
"""Guard for one guest run (boot + every test in it); VFKEEPER_VM_TIMEOUT overrides it."""


class VmUnavailable(Exception):
    """QEMU, the kernel or the initramfs is missing; the message says what and how to get it."""


@dataclass(frozen=True)
class VmImage:
    """What ``scripts/vm/setup.sh`` prepared: read from ``vm.env`` in the cache directory."""

    kver: str
    kernel: Path
    initrd: Path
    modules_dir: Path
    qemu: Path
    qemu_version: str


@dataclass(frozen=True)
class VmOptions:
    """How to boot. Tests ask for these with ``@pytest.mark.vm(iommu=True, memory_mb=2048, ...)``;
    one boot serves every selected test, so the options of all of them are merged."""

    memory_mb: int = 1024
    iommu: bool = False
    """An emulated Intel IOMMU, ``intel_iommu=on`` and vfio's modules: VFs can bind to vfio-pci."""
    load: tuple[str, ...] = ()
    """Extra modules the initramfs loads at boot (``modprobe`` in the guest works as well)."""
    smp: int = 2

    def merge(self, other: VmOptions) -> VmOptions:
        return VmOptions(
            memory_mb=max(self.memory_mb, other.memory_mb),
            iommu=self.iommu or other.iommu,
            load=tuple(dict.fromkeys(self.load + other.load)),
            smp=max(self.smp, other.smp),
        )

    @classmethod
    def from_kwargs(cls, kwargs: dict[str, object]) -> VmOptions:
        known = {"memory_mb", "iommu", "load", "smp"}
        unknown = set(kwargs) - known
        if unknown:
            raise TypeError(f"unknown vm marker options {sorted(unknown)}; known: {sorted(known)}")
        load = kwargs.get("load", ())
        return cls(
            memory_mb=int(kwargs.get("memory_mb", 1024)),  # type: ignore[call-overload]
            iommu=bool(kwargs.get("iommu", False)),
            load=(load,) if isinstance(load, str) else tuple(load),  # type: ignore[arg-type]
            smp=int(kwargs.get("smp", 2)),  # type: ignore[call-overload]
        )


@dataclass
class GuestRun:
    """What one boot left behind. ``workdir`` is kept for debugging; nothing deletes it."""

    workdir: Path
    console_log: Path
    share: Path
    returncode: int | None
    """QEMU's exit status; ``None`` when the run was killed by the timeout guard."""
    duration_s: float
    timed_out: bool = False
    argv: list[str] = field(default_factory=list)
    cancelled: bool = False
    """QEMU was killed because ``stop`` was set (the pytest session ended first)."""

    def console_tail(self, lines: int = 40) -> str:
        try:
            text = self.console_log.read_text(errors="replace")
        except OSError as exc:
            return f"(cannot read {self.console_log}: {exc})"
        return "\n".join(text.splitlines()[-lines:])


def cache_dir() -> Path:
    return Path(os.environ.get("VFKEEPER_VM_CACHE") or DEFAULT_CACHE)


def _read_env(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            values[key] = value
    return values


def find_image(cache: Path | None = None) -> VmImage:
    """The prepared kernel, initramfs and QEMU, or :class:`VmUnavailable` saying what is missing."""
    cache = cache or cache_dir()
    env_file = cache / "vm.env"
    if not env_file.is_file():
        raise VmUnavailable(
            f"the real-kernel tier is not set up: {env_file} is missing "
            f"(scripts/vm/setup.sh writes it after installing QEMU >= 8 from backports, "
            f"busybox-static and the Debian kernel); {SETUP_HINT}"
        )
    env = _read_env(env_file)
    try:
        image = VmImage(
            kver=env["KVER"],
            kernel=Path(env["KERNEL"]),
            initrd=Path(env["INITRD"]),
            modules_dir=Path(env["MODULES_DIR"]),
            qemu=Path(env["QEMU"]),
            qemu_version=env.get("QEMU_VERSION", "?"),
        )
    except KeyError as exc:
        raise VmUnavailable(f"{env_file} lacks {exc.args[0]}; {SETUP_HINT}") from None
    init = INIT_SCRIPT.read_bytes() if INIT_SCRIPT.is_file() else b""
    if env.get("INIT_SHA256") != hashlib.sha256(init).hexdigest():
        raise VmUnavailable(
            f"the initramfs {image.initrd} was built from another {INIT_SCRIPT} "
            f"than this checkout's; re-run scripts/vm/setup.sh (./dev.sh setup)"
        )
    for what, path in (
        ("kernel", image.kernel),
        ("initramfs", image.initrd),
        ("kernel modules", image.modules_dir),
        ("QEMU", image.qemu),
    ):
        if not path.exists():
            raise VmUnavailable(f"the {what} {path} named in {env_file} is missing; {SETUP_HINT}")
    if not _qemu_has_igb(image.qemu):
        raise VmUnavailable(
            f"{image.qemu} (QEMU {image.qemu_version}) has no igb device: igb SR-IOV emulation "
            f"needs QEMU >= 8 (Debian 12: qemu-system-x86 from bookworm-backports); {SETUP_HINT}"
        )
    return image


def _qemu_has_igb(qemu: Path) -> bool:
    try:
        out = subprocess.run(
            [str(qemu), "-device", "help"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return '"igb"' in out


def kernel_cmdline(image: VmImage, opts: VmOptions, *, shell: bool = False) -> str:
    args = [
        "console=ttyS0",
        "panic=-1",  # a panic reboots at once, and -no-reboot turns that into QEMU exiting
        "edd=off",
        "loglevel=4",
        f"vfk.moddir={image.modules_dir}",
    ]
    load = list(opts.load)
    if opts.iommu:
        args += ["intel_iommu=on", "vfio_iommu_type1.allow_unsafe_interrupts=1"]
        load += ["vfio_iommu_type1", "vfio_pci"]
    if load:
        args.append("vfk.load=" + ",".join(dict.fromkeys(load)))
    if shell:
        args.append("vfk.shell=1")
    return " ".join(args)


def qemu_argv(image: VmImage, opts: VmOptions, share: Path, *, shell: bool = False) -> list[str]:
    """The QEMU command line (TESTBED.md's, plus the kernel, the shares and the options)."""
    argv = [str(image.qemu), "-accel", "tcg", "-cpu", "max", "-M", "q35"]
    argv += ["-m", str(opts.memory_mb), "-smp", str(opts.smp)]
    argv += ["-nographic", "-no-reboot", "-no-user-config"]
    if opts.iommu:
        # Before any other PCI device, so every device sits behind it.
        argv += ["-device", "intel-iommu,intremap=off"]
    argv += ["-kernel", str(image.kernel), "-initrd", str(image.initrd)]
    argv += ["-append", kernel_cmdline(image, opts, shell=shell)]
    argv += [
        "-device", "pcie-root-port,id=rp1,slot=1",
        "-netdev", "user,id=n1,restrict=on",
        "-device", "igb,bus=rp1,netdev=n1",
        "-virtfs",
        "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        "-virtfs", f"local,path={share},mount_tag=vfkshare,security_model=none,multidevs=remap",
    ]  # fmt: skip
    return argv


def new_workdir() -> Path:
    """A fresh directory for one run's console log and share (VFKEEPER_VM_LOGDIR or $TMPDIR)."""
    base = os.environ.get("VFKEEPER_VM_LOGDIR")
    if base:
        Path(base).mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path(tempfile.mkdtemp(prefix=f"vfkeeper-vm-{stamp}-", dir=base))


def _die_with_parent() -> None:
    """In the QEMU child: get SIGKILL when the process that started it dies (PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


@contextlib.contextmanager
def _qemu_process(
    argv: list[str], log: Path, *, interactive: bool
) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            argv,
            stdin=None if interactive else subprocess.DEVNULL,
            stdout=None if interactive else out,
            stderr=None if interactive else subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks taken
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def run_guest(
    image: VmImage,
    opts: VmOptions,
    run_sh: str,
    *,
    files: dict[str, str] | None = None,
    workdir: Path | None = None,
    timeout_s: float | None = None,
    stop: threading.Event | None = None,
) -> GuestRun:
    """Boot once, run ``run_sh`` (a /bin/sh script) as root in the guest's chroot, power off.

    ``files`` are written into the share next to ``run.sh`` (the guest sees them under
    :data:`GUEST_SHARE`). QEMU is killed when the guard ``timeout_s`` expires, when ``stop`` is
    set (from another thread: the tier runs this in the background), and always when this
    function leaves; the console log stays in ``workdir`` either way.
    """
    workdir = workdir or new_workdir()
    share = workdir / "share"
    share.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (share / name).write_text(text)
    (share / "run.sh").write_text(run_sh)
    if timeout_s is None:
        timeout_s = float(os.environ.get("VFKEEPER_VM_TIMEOUT") or DEFAULT_TIMEOUT_S)
    argv = qemu_argv(image, opts, share)
    log = workdir / "console.log"
    (workdir / "qemu.argv").write_text(shlex.join(argv) + "\n")
    start = time.monotonic()
    timed_out = cancelled = False
    returncode: int | None = None
    with _qemu_process(argv, log, interactive=False) as proc:
        while returncode is None:
            left = start + timeout_s - time.monotonic()
            if left <= 0:
                timed_out = True
                note = f"killed QEMU after the {timeout_s:.0f} s guard"
            elif stop is not None and stop.is_set():
                cancelled = True
                note = "killed QEMU: the pytest session ended before the guest"
            else:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    returncode = proc.wait(timeout=min(left, 0.5))
                continue
            with open(log, "a") as out:
                out.write(f"\n[vm_harness] {note}\n")
            break
    return GuestRun(
        workdir=workdir,
        console_log=log,
        share=share,
        returncode=returncode,
        duration_s=time.monotonic() - start,
        timed_out=timed_out,
        argv=argv,
        cancelled=cancelled,
    )


# --- what the guest's pytest reported -------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """How one test ended in the guest, from the JSON lines its phases wrote (conftest.py)."""

    kind: Literal["passed", "failed", "skipped", "xfailed", "missing"]
    message: str = ""


def read_records(path: Path) -> dict[str, list[dict[str, Any]]]:
    """The guest's ``results.jsonl``, grouped by node id (a cut-off last line is ignored)."""
    records: dict[str, list[dict[str, Any]]] = {}
    if not path.is_file():
        return records
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue  # the guest died mid-write
        records.setdefault(record["nodeid"], []).append(record)
    return records


def outcome_of(records: list[dict[str, Any]]) -> Outcome:
    """A failure in any phase wins, then a skip or xfail; a pass needs a passed call phase."""
    for r in records:
        if r["outcome"] == "failed":
            text = r.get("longrepr", "")
            for title, content in r.get("sections", []):
                text += f"\n----- {title} (in the guest) -----\n{content}"
            return Outcome("failed", f"failed in the guest ({r['when']}):\n{text}")
    for r in records:
        if r["outcome"] == "skipped":
            if "wasxfail" in r:
                return Outcome("xfailed", r["wasxfail"] or "xfail in the guest")
            return Outcome("skipped", f"in the guest: {r.get('reason', '')}")
    if any(r["when"] == "call" and r["outcome"] == "passed" for r in records):
        return Outcome("passed")
    return Outcome("missing")


def describe(run: GuestRun) -> str:
    """One line on how the guest run ended, for messages about tests it did not report."""
    rc_file = run.share / "pytest.rc"
    if run.timed_out:
        return f"QEMU was killed by the {run.duration_s:.0f} s guard (VFKEEPER_VM_TIMEOUT)"
    if run.cancelled:
        return f"QEMU was killed after {run.duration_s:.0f} s: the pytest session ended first"
    if not rc_file.is_file():
        return (
            f"QEMU exited with {run.returncode} before pytest finished in the guest "
            "(boot failure or kernel panic: look for 'vfk-init:' and 'Kernel panic' in the log)"
        )
    return f"guest pytest exited with {rc_file.read_text().strip()}, QEMU with {run.returncode}"


def _shell(image: VmImage, opts: VmOptions) -> int:
    workdir = new_workdir()
    share = workdir / "share"
    share.mkdir()
    argv = qemu_argv(image, opts, share, shell=True)
    print(f"share: {share} (guest: {GUEST_SHARE}); Ctrl-a x quits QEMU", file=sys.stderr)
    with _qemu_process(argv, workdir / "console.log", interactive=True) as proc:
        return proc.wait()


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iommu", action="store_true", help="emulated Intel IOMMU + vfio")
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--load", action="append", default=[], help="extra module to load")
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("shell", help="an interactive shell in the guest")
    run = sub.add_parser("run", help="run one command in the guest and print the console")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        image = find_image()
    except VmUnavailable as exc:
        print(f"vm_harness: {exc}", file=sys.stderr)
        return 2
    opts = VmOptions(memory_mb=args.memory_mb, iommu=args.iommu, load=tuple(args.load))
    if args.cmd == "shell":
        return _shell(image, opts)
    command = [c for c in args.command if c != "--"] or ["true"]
    script = f'cd {shlex.quote(os.getcwd())}\n{shlex.join(command)}\necho "rc=$?"\n'
    result = run_guest(image, opts, script)
    print(result.console_log.read_text(errors="replace"))
    print(f"[vm_harness] {result.duration_s:.1f} s; log {result.console_log}", file=sys.stderr)
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
