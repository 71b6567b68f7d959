"""Scheduler benchmark (issue 4): how fast are decisions, and what do they cost as hosts grow?

Section (a): pure scheduling decisions on an in-memory cluster. 1,000 hosts x 4 PFs x 32 VFs,
4 physical networks, 2 NUMA nodes; 10,000 boots of 1-4 ports with a mix of NUMA policies,
weighers and ``direct-physical`` ports. Each placement is applied to the view (free counts go
down, PF/VF exclusivity included) so later boots see a fuller cluster. Then:

* the same boots on hosts with 8 and with 64 VFs per PF (cost must not depend on VF counts);
* the cluster is filled until boots keep failing (cost of a NoValidHost that explains every
  host).

Section (b), boots through the REST API, is added when the controller exists: add a function
``section_b(args)`` and list it in ``SECTIONS``.

Run: ``.venv/bin/python bench/scheduler.py`` (``--quick`` for a smoke run, ``--help``).
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from vfkeeper.scheduler import (
    ClusterView,
    HostView,
    InstanceRequest,
    NoValidHost,
    PciRequest,
    PoolView,
    apply_placement,
    schedule,
)

PHYSNETS = 4
PFS_PER_HOST = 4
NUMA_NODES = 2


def build_hosts(n_hosts: int, vfs_per_pf: int) -> list[HostView]:
    """Host ``i`` carries the physnet pair ``i % 2`` (physnets 0+1 or 2+3): one PF of each
    physnet on each of its 2 NUMA nodes. Each PF gives a VF pool and a PF pool (for
    ``direct-physical``)."""
    hosts = []
    for i in range(n_hosts):
        pools: list[PoolView] = []
        for j in range(PFS_PER_HOST):
            physnet = f"physnet{2 * (i % 2) + j % 2}"
            node = j * NUMA_NODES // PFS_PER_HOST
            addr = f"0000:{0x3B + j:02x}:00.0"
            pools.append(
                PoolView(physnet, "type-VF", node, "15b3", "101e", addr, vfs_per_pf, vfs_per_pf)
            )
            pools.append(PoolView(physnet, "type-PF", node, "15b3", "101d", addr, 1, 1))
        hosts.append(HostView(f"host-{i:04d}", tuple(pools), numa_nodes=(0, 1)))
    return hosts


def make_boots(n: int, seed: int) -> list[InstanceRequest]:
    """1-4 ports each, on the physnets of one pair (the networks an instance attaches to exist
    on the same hosts); 10% ``direct-physical``; NUMA policy none 40%, legacy / preferred /
    required 20% each, half of them with an instance NUMA node; weigher spread 20%."""
    rng = random.Random(seed)
    boots = []
    for b in range(n):
        pair = rng.randrange(PHYSNETS // 2)
        policy = rng.choice([None, None, "legacy", "preferred", "required"])
        reqs = tuple(
            PciRequest(
                f"b{b}-p{p}",
                f"physnet{2 * pair + rng.randrange(2)}",
                "type-PF" if rng.random() < 0.10 else "type-VF",
            )
            for p in range(rng.randint(1, 4))
        )
        boots.append(
            InstanceRequest(
                reqs,
                numa_policy=policy,  # type: ignore[arg-type]
                instance_numa_node=rng.choice([None, 0, 1]) if policy else None,
                weigher="spread" if rng.random() < 0.2 else "pack",
            )
        )
    return boots


@dataclass
class Run:
    ok_ns: list[int] = field(default_factory=list)
    fail_ns: list[int] = field(default_factory=list)
    cpu_ns: int = 0
    apply_ns: int = 0
    cpu_each_ns: list[int] = field(default_factory=list)
    first_failure: int | None = None
    first_full: int | None = None
    """First failure that would have fit on the empty cluster: the cluster is filling up."""
    unsatisfiable: int = 0
    fail_filters: Counter[str] = field(default_factory=Counter)

    @property
    def decisions(self) -> int:
        return len(self.ok_ns) + len(self.fail_ns)

    def add(self, other: Run) -> None:
        self.ok_ns += other.ok_ns
        self.fail_ns += other.fail_ns
        self.cpu_ns += other.cpu_ns
        self.cpu_each_ns += other.cpu_each_ns
        self.apply_ns += other.apply_ns
        self.unsatisfiable += other.unsatisfiable
        self.fail_filters.update(other.fail_filters)
        if self.first_failure is None:
            self.first_failure = other.first_failure
        if self.first_full is None:
            self.first_full = other.first_full


def run_boots(
    cluster: ClusterView,
    boots: Sequence[InstanceRequest],
    start: int = 0,
    empty: ClusterView | None = None,
) -> Run:
    """Schedule each boot (timed: wall clock and this thread's CPU time) and apply its placement
    to ``cluster`` (timed apart). A failed boot is also tried on ``empty`` (untimed) to tell
    "the cluster is full" from "no host of this topology could ever take it"."""
    run = Run()
    wall, cpu = time.perf_counter_ns, time.thread_time_ns
    for k, req in enumerate(boots):
        c0 = cpu()
        t0 = wall()
        result = schedule(req, cluster)
        t1 = wall()
        spent = cpu() - c0
        run.cpu_ns += spent
        run.cpu_each_ns.append(spent)
        if isinstance(result, NoValidHost):
            run.fail_ns.append(t1 - t0)
            run.fail_filters.update(r.filter for r in result.rejections)
            if run.first_failure is None:
                run.first_failure = start + k
            if empty is not None and isinstance(schedule(req, empty), NoValidHost):
                run.unsatisfiable += 1
            elif empty is not None and run.first_full is None:
                run.first_full = start + k
            continue
        run.ok_ns.append(t1 - t0)
        t2 = wall()
        host = cluster.get(result.host)
        assert host is not None
        cluster.upsert(apply_placement(host, result))
        run.apply_ns += wall() - t2
    return run


def pct(values: Sequence[int], q: float) -> float:
    """Percentile ``q`` (0-100) of nanosecond values, in microseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] / 1000


def describe(label: str, run: Run) -> None:
    all_ns = run.ok_ns + run.fail_ns
    print(f"  {label}")
    print(
        f"    decisions: {run.decisions}: {len(run.ok_ns)} placed, {len(run.fail_ns)} no valid "
        f"host; {run.unsatisfiable} of these fit no host even on the empty cluster, the other "
        f"{len(run.fail_ns) - run.unsatisfiable} failed because the cluster filled up (first at "
        f"boot {run.first_full})"
    )
    print(
        f"    throughput: {run.decisions / (sum(all_ns) / 1e9):,.0f} decisions/s wall, "
        f"{run.decisions / (run.cpu_ns / 1e9):,.0f} decisions/s CPU (scheduling time only)"
    )
    print(
        f"    per decision (wall): p50 {pct(all_ns, 50):.0f} us, p99 {pct(all_ns, 99):.0f} us;"
        f" placed p50 {pct(run.ok_ns, 50):.0f} / p99 {pct(run.ok_ns, 99):.0f} us;"
        f" no valid host p50 {pct(run.fail_ns, 50):.0f} / p99 {pct(run.fail_ns, 99):.0f} us"
    )
    if run.ok_ns:
        print(
            f"    apply placement to the view: {run.apply_ns / len(run.ok_ns) / 1000:.0f} us/boot"
        )
    if run.fail_filters:
        top = ", ".join(f"{k}: {v}" for k, v in run.fail_filters.most_common())
        print(f"    host rejections inside failed decisions, by filter: {top}")


def section_a(args: argparse.Namespace) -> None:
    print(
        f"(a) pure scheduling decisions: {args.hosts} hosts x {PFS_PER_HOST} PFs x 32 VFs, "
        f"{PHYSNETS} physnets, {NUMA_NODES} NUMA nodes, {args.boots} boots of 1-4 ports"
    )
    tracemalloc.start()
    cluster = ClusterView(build_hosts(args.hosts, 32))
    view_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    print(f"  cluster view: {view_bytes / 2**20:.1f} MiB (host views + index, tracemalloc)")
    if args.gc_freeze:
        gc.freeze()
        print("  gc.freeze() after building the view")
    empty = ClusterView(build_hosts(args.hosts, 32))
    boots = make_boots(args.boots, args.seed)
    describe("main run", run_boots(cluster, boots, empty=empty))

    n = min(args.boots, args.compare)
    print(
        f"  VF-count independence: the first {n} boots on 8 vs 64 VFs per PF "
        f"(three alternating rounds after a gc.collect(), the quietest round of each shown)"
    )
    best: dict[int, Run] = {}
    for _ in range(3):
        for vfs in (8, 64):
            view = ClusterView(build_hosts(args.hosts, vfs))
            gc.collect()
            run = run_boots(view, boots[:n])
            if vfs not in best or run.cpu_ns < best[vfs].cpu_ns:
                best[vfs] = run
    for vfs, run in best.items():
        mean_us = run.cpu_ns / run.decisions / 1000
        print(
            f"    {vfs:>2} VFs/PF: CPU per decision mean {mean_us:.0f} us,"
            f" p50 {pct(run.cpu_each_ns, 50):.0f} us, p99 {pct(run.cpu_each_ns, 99):.0f} us;"
            f" {len(run.fail_ns)} no valid host"
        )
    ratio = best[64].cpu_ns / best[8].cpu_ns
    p50_ratio = pct(best[64].cpu_each_ns, 50) / pct(best[8].cpu_each_ns, 50)
    print(f"    ratio 64/8: mean {ratio:.2f}, p50 {p50_ratio:.2f}")

    if args.fill:
        print(f"  fill: keep booting until {args.fill} boots in a row find no host")
        extra = make_boots(args.fill_max, args.seed + 1)
        fill = Run()
        streak = 0
        for k, req in enumerate(extra):
            one = run_boots(cluster, [req], start=args.boots + k, empty=empty)
            fill.add(one)
            streak = streak + 1 if one.fail_ns else 0
            if streak >= args.fill:
                break
        free = sum(h.total_free for h in cluster.hosts())
        describe(f"fill run (the cluster has {free} free devices left)", fill)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak memory: {rss:.0f} MiB RSS (whole process)")


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"a": section_a}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append")
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--boots", type=int, default=10_000)
    parser.add_argument("--compare", type=int, default=2000, help="boots for the 8-vs-64 check")
    parser.add_argument(
        "--fill", type=int, default=200, help="stop filling after N failures in a row (0: skip)"
    )
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() after the build")
    parser.add_argument("--fill-max", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--quick", action="store_true", help="100 hosts, 1,000 boots")
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.boots, args.compare = 100, 1000, 500
    print(f"python {sys.version.split()[0]}")
    for name in args.section or sorted(SECTIONS):
        SECTIONS[name](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
