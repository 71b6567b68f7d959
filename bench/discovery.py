"""Discovery benchmark: hosts of 256, 1,040 and 4,160 PCI functions, half InfiniBand.

Each host is N PFs x 64 VFs (4 x 63 for the smallest), alternating ConnectX-5 InfiniBand and
ConnectX-5 Ethernet PFs (the Ethernet half still carries RoCE RDMA devices, so every function
has an RDMA block to read). Reports, per size: functions/second of ``discover()`` in-process
(best of N runs, wall and CPU time), the CPU per function and its ratio to the smallest host's
(linearity: 1.00 means a constant cost per function), the peak Python memory of an in-process
scan (tracemalloc) and this process's peak RSS, the wall time and peak RSS of one ``vfkeeper
discover --json`` process (best of N/2), and the load average (other work on the machine
inflates wall times; CPU time is the steadier figure).

    .venv/bin/python bench/discovery.py [--pkey-table 128] [--runs 5] [--sizes 256,1040]
                                        [--dir /dev/shm]

Trees are built in /dev/shm when it exists (tmpfs, in memory like sysfs), else the temp dir.
The PKey table size drives the cost of InfiniBand functions (one file per entry): real mlx5
ports show 128 entries; ``--pkey-table`` picks what the simulated ports show.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.sim import HostSpec, PfSpec, build_tree

SIZES = ((4, 63), (16, 64), (64, 64))  # (PFs, VFs per PF): 256, 1,040, 4,160 functions
VFKEEPER = Path(sys.executable).with_name("vfkeeper")


def host_spec(pfs: int, vfs: int, pkey_table: int) -> HostSpec:
    return HostSpec(
        hostname=f"bench-{pfs}x{vfs}",
        pfs=tuple(
            PfSpec("cx5-ib" if k % 2 == 0 else "cx5-eth", vfs=vfs, numa_node=k % 2,
                   pkey_table=pkey_table)
            for k in range(pfs)
        ),
        extra_devices=(),
    )


def in_process(root: Path, runs: int) -> tuple[float, float, int]:
    """Best wall and CPU seconds over ``runs`` scans, and the function count."""
    walls, cpus, count = [], [], 0
    for _ in range(runs):
        gc.collect()
        w, c = time.perf_counter(), time.process_time()
        inv = discover(SysfsReader(root))
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
        count = len(inv.devices)
        if inv.warnings:
            raise SystemExit(f"unexpected warnings: {inv.warnings[:3]}")
    return min(walls), min(cpus), count


def peak_python_mib(root: Path) -> float:
    tracemalloc.start()
    discover(SysfsReader(root))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def cli(root: Path, runs: int) -> tuple[float, float]:
    """Best wall seconds of ``vfkeeper discover --json`` and its peak RSS in MiB."""
    best, rss = float("inf"), 0.0
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.Popen(
            [str(VFKEEPER), "discover", "--json", "--sysfs-root", str(root)],
            stdout=subprocess.DEVNULL,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        best = min(best, time.perf_counter() - start)
        if status != 0:
            raise SystemExit(f"vfkeeper discover failed with status {status}")
        rss = max(rss, usage.ru_maxrss / 1024)
        proc.returncode = 0
    return best, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pkey-table", type=int, default=128)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="256,1040,4160",
                        help="which hosts, by function count (of 256, 1040, 4160)")
    parser.add_argument("--dir", default="/dev/shm" if os.path.isdir("/dev/shm") else None)
    args = parser.parse_args()
    wanted = {int(n) for n in args.sizes.split(",")}

    print(f"pkey table: {args.pkey_table} entries per InfiniBand port; best of {args.runs}")
    print("| functions | scan wall s | scan CPU s | functions/s (wall) | functions/s (CPU) "
          "| µs/function (CPU) | vs smallest | Python peak MiB | process RSS MiB "
          "| `discover --json` wall s | its peak RSS MiB | load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    first: float | None = None
    for pfs, vfs in SIZES:
        if pfs * (vfs + 1) not in wanted:
            continue
        tmp = Path(tempfile.mkdtemp(prefix="vfkeeper-bench-", dir=args.dir))
        try:
            build_tree(host_spec(pfs, vfs, args.pkey_table), tmp)
            wall, cpu, count = in_process(tmp, args.runs)
            peak = peak_python_mib(tmp)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            cli_wall, cli_rss = cli(tmp, max(1, args.runs // 2))
        finally:
            shutil.rmtree(tmp)
        per = cpu / count * 1e6
        first = first or per
        print(f"| {count:,} | {wall:.3f} | {cpu:.3f} | {count / wall:,.0f} | {count / cpu:,.0f} "
              f"| {per:.0f} | {per / first:.2f} | {peak:.1f} | {rss:.0f} | {cli_wall:.2f} "
              f"| {cli_rss:.0f} | {os.getloadavg()[0]:.1f} |", flush=True)


if __name__ == "__main__":
    main()
