"""VF programming benchmark: snapshot + program, and restore, of 128 VFs — fake and real kernel.

One "programming" is what the agent does when a port is bound: ``apply()`` reads the VF,
records originals and sets MAC, VLAN (+QoS), spoof check, trust and max TX rate, one netlink
request each; then ``restore()`` on release. Reported per VF: ms p50/p99 for each, and peak
Python memory (tracemalloc, in a separate pass so it does not slow the timed one).

* fake: ``FakeLinkOps`` with one PF of 128 VFs (an mlx5 Ethernet PF's maximum is 127 per port;
  128 keeps the numbers round). Measures vfkeeper's own overhead.
* kernel: pyroute2 on a real kernel — QEMU's igb in the VM tier. igb has 7 VFs, so the 128
  programmings cycle over VFs 0-6. Every ``apply`` reads the PF's whole VF list (the kernel
  has no per-VF read), so the cost also grows with the VF count of the PF.

    .venv/bin/python bench/vf_programming.py            # fake, then the kernel part in the VM
    .venv/bin/python bench/vf_programming.py --no-vm    # fake only

On the host, the kernel part boots the VM tier's guest (tests/vm/vm_harness.py) and runs this
file inside it with ``--kernel-only``; without the tier set up it is skipped and says why.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vfkeeper.agent.errors import SysfsReadError
from vfkeeper.agent.linkops import LinkOps, VfConfig, Vlan, apply, restore
from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
from vfkeeper.agent.sysfs import SysfsReader

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = int(os.environ.get("VFK_BENCH_SAMPLES", "128"))
MARK = "VFK-BENCH-JSON "


def wanted(i: int) -> VfConfig:
    return VfConfig(
        mac=f"02:00:00:00:{i // 256:02x}:{i % 256:02x}",
        vlan=Vlan(100 + i % 3000, i % 8),
        spoofchk=False,
        trust=True,
        max_tx_rate=100 + i % 800,
    )


def run(ops: LinkOps, pf: str, num_vfs: int) -> tuple[list[float], list[float]]:
    """ms per VF of apply and of restore, for SAMPLES programmings over num_vfs VFs."""
    applies, restores = [], []
    for i in range(SAMPLES):
        t = time.perf_counter()
        result = apply(ops, pf, i % num_vfs, wanted(i))
        applies.append((time.perf_counter() - t) * 1000)
        if result.skipped:
            raise SystemExit(f"unexpected refusals: {result.skipped}")
        t = time.perf_counter()
        restore(ops, result.snapshot)
        restores.append((time.perf_counter() - t) * 1000)
    return applies, restores


def peak_kib(work: Callable[[], object]) -> float:
    tracemalloc.start()
    work()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1024


def summary(name: str, applies: list[float], restores: list[float], kib: float) -> dict[str, Any]:
    def pct(xs: list[float], q: int) -> float:
        return statistics.quantiles(xs, n=100, method="inclusive")[q - 1]

    return {
        "part": name,
        "samples": len(applies),
        "apply_ms_p50": round(pct(applies, 50), 3),
        "apply_ms_p99": round(pct(applies, 99), 3),
        "restore_ms_p50": round(pct(restores, 50), 3),
        "restore_ms_p99": round(pct(restores, 99), 3),
        "peak_kib": round(kib, 1),
    }


def fake_part() -> dict[str, Any]:
    def fresh() -> FakeLinkOps:
        return FakeLinkOps([FakePf("pf0", "mlx5_core", num_vfs=128, link_speed_mbps=100_000)])

    applies, restores = run(fresh(), "pf0", 128)
    kib = peak_kib(lambda: run(fresh(), "pf0", 128))
    return summary("fake (mlx5_core, 128 VFs)", applies, restores, kib)


def _igb_pf(sysfs: SysfsReader) -> str:
    drivers = f"{sysfs.sys_dir}/bus/pci/drivers/igb"
    for name in sorted(n for n in sysfs.listdir(drivers) if ":" in n):
        try:
            sysfs.read(f"{sysfs.device_dir(name)}/sriov_totalvfs")
        except SysfsReadError:
            continue
        return name
    raise SystemExit("no SR-IOV PF bound to igb here")


def _bound(sysfs: SysfsReader, driver: str) -> int:
    return sum(":" in n for n in sysfs.listdir(f"{sysfs.sys_dir}/bus/pci/drivers/{driver}"))


def _wait(check: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + 60
    while not check():
        if time.monotonic() > end:
            raise SystemExit(f"gave up waiting for {what}")
        time.sleep(0.1)


def kernel_part() -> dict[str, Any]:
    """Inside the VM guest: 7 igb VFs, PF up, then the timed runs through pyroute2."""
    from vfkeeper.agent.linkops.pyroute2_impl import Pyroute2LinkOps

    sysfs = SysfsReader("/")
    pf_addr = _igb_pf(sysfs)
    device = sysfs.device_dir(pf_addr)
    total = int(sysfs.read(f"{device}/sriov_totalvfs"))
    for count in (0, total):
        Path(device, "sriov_numvfs").write_text(str(count))
    _wait(lambda: _bound(sysfs, "igbvf") == total, f"{total} VFs bound to igbvf")
    pf = sysfs.listdir(f"{device}/net")[0]
    subprocess.run(["ip", "link", "set", pf, "up"], check=True)
    _wait(lambda: sysfs.read(f"{sysfs.sys_dir}/class/net/{pf}/carrier") == "1", "carrier")
    with Pyroute2LinkOps() as ops:
        applies, restores = run(ops, pf, total)
        kib = peak_kib(lambda: run(ops, pf, total))
    return summary(f"kernel (igb in QEMU TCG, {total} VFs)", applies, restores, kib)


def kernel_via_vm() -> dict[str, Any] | str:
    """Boot the VM tier and run the kernel part inside; a string says why it was skipped."""
    sys.path.insert(0, str(ROOT / "tests/vm"))
    import vm_harness

    try:
        vm_harness.find_image()
    except vm_harness.VmUnavailable as exc:
        return f"skipped: {exc}"
    cmd = [sys.executable, str(ROOT / "tests/vm/vm_harness.py"), "run", "--",
           sys.executable, str(Path(__file__).resolve()), "--kernel-only"]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if line.startswith(MARK):
            result: dict[str, Any] = json.loads(line[len(MARK) :])
            return result
    return "failed: the guest printed no result; console tail:\n" + "\n".join(
        out.splitlines()[-15:]
    )


def show(result: dict[str, Any]) -> None:
    print(
        f"{result['part']}: {result['samples']} programmings; apply (snapshot + 5 attributes) "
        f"p50 {result['apply_ms_p50']} ms p99 {result['apply_ms_p99']} ms per VF; restore "
        f"p50 {result['restore_ms_p50']} ms p99 {result['restore_ms_p99']} ms per VF; "
        f"peak Python memory {result['peak_kib']} KiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-vm", action="store_true", help="skip the real-kernel part")
    parser.add_argument("--kernel-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.kernel_only:  # inside the guest
        print(MARK + json.dumps(kernel_part()), flush=True)
        return
    show(fake_part())
    if args.no_vm:
        print("kernel: skipped (--no-vm)")
        return
    if os.environ.get("VFKEEPER_IN_VM") == "1":
        show(kernel_part())
        return
    kernel = kernel_via_vm()
    if isinstance(kernel, str):
        print(f"kernel: {kernel}")
    else:
        show(kernel)


if __name__ == "__main__":
    main()
