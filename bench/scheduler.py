"""Scheduler benchmark (issue 4): how fast are decisions, and what do they cost as hosts grow?

Section (a): pure scheduling decisions on an in-memory cluster. 1,000 hosts x 4 PFs x 32 VFs,
4 physical networks, 2 NUMA nodes; 10,000 boots of 1-4 ports with a mix of NUMA policies,
weighers and ``direct-physical`` ports. Each placement is applied to the view (free counts go
down, PF/VF exclusivity included) so later boots see a fuller cluster. Then:

* the same boots on hosts with 8 and with 64 VFs per PF (cost must not depend on VF counts);
* the cluster is filled until boots keep failing (cost of a NoValidHost that explains every
  host).

Section (b): boots per second through the REST API of a real ``vfkeeper serve`` (uvicorn,
``--workers 1`` and ``2`` by default, loopback) with 8 concurrent clients, on SQLite and on
PostgreSQL (a throwaway cluster started like the tests do, ``tests/servers.py``). The cluster
(default 1,000 hosts x 4 PFs x 32 VFs, one physnet) is registered through the API (inventory
PUTs), then ports are created, then untimed warm-up boots load every worker's cached view, then
the timed boots run (one ``direct`` port each); p50/p99 latency per boot, the CPU seconds the
server, PostgreSQL and the clients spent per boot, and the store's invariants
(``vfkeeper.store.invariants``) checked at the end. No agent heartbeats during the run, so the
server runs with a long ``--agent-timeout``.

Run: ``.venv/bin/python bench/scheduler.py`` (``--quick`` for a smoke run, ``--help``).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import resource
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

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

T = TypeVar("T")
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


# --- section (b): boots through the REST API --------------------------------------------------

API_SPECS = [{"vendor_id": "15b3", "physical_network": "physnet1"}]


def api_inventory(name: str, vfs_per_pf: int = 32) -> dict[str, object]:
    """A host as its agent reports it: 4 ConnectX-5 PFs (2 per NUMA node), 32 VFs each."""
    from vfkeeper.domain.inventory import Device, HostInventory

    devices = []
    for j in range(PFS_PER_HOST):
        bus = 0x3B + j
        pf = f"0000:{bus:02x}:00.0"
        node = j * NUMA_NODES // PFS_PER_HOST
        devices.append(Device(address=pf, vendor_id="15b3", product_id="1017", dev_type="type-PF",
                              sriov_totalvfs=vfs_per_pf, sriov_numvfs=vfs_per_pf,
                              driver="mlx5_core", numa_node=node))
        for i in range(vfs_per_pf):
            slot, func = divmod(i + 1, 8)
            devices.append(Device(address=f"0000:{bus:02x}:{slot:02x}.{func}", vendor_id="15b3",
                                  product_id="1018", dev_type="type-VF", parent_addr=pf,
                                  vf_index=i, driver="mlx5_core", numa_node=node))
    return HostInventory(hostname=name, devices=tuple(devices)).model_dump(mode="json")


def _parallel(clients: int, jobs: Sequence[Callable[[httpx.Client], T]],
              client_of: Callable[[], httpx.Client]) -> list[T]:
    """Run ``jobs`` on ``clients`` threads, each with its own HTTP client (keep-alive)."""
    local = threading.local()
    made: list[httpx.Client] = []

    def run(job: Callable[[httpx.Client], T]) -> T:
        if not hasattr(local, "client"):
            local.client = client_of()
            made.append(local.client)
        return job(local.client)

    try:
        with ThreadPoolExecutor(clients) as pool:
            return list(pool.map(run, jobs))
    finally:
        for c in made:
            c.close()


def _ok(resp: httpx.Response) -> httpx.Response:
    if resp.is_error:
        raise RuntimeError(f"{resp.request.method} {resp.request.url}: {resp.text[:500]}")
    return resp


def _populate(client_of: Callable[[], httpx.Client], hosts: int, ports: int,
              subnets: bool = False) -> list[str]:
    with client_of() as c:
        _ok(c.put("/v1/device-specs", json={"entries": API_SPECS}))
        _ok(c.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                         "segmentation": {"type": "vlan", "id": 100}}))
        if subnets:  # every port then gets an IPv4 and an IPv6 address at creation
            _ok(c.post("/v1/networks/n1/subnets", json={"cidr": "10.64.0.0/16"}))
            _ok(c.post("/v1/networks/n1/subnets", json={"cidr": "fd00:64::/64"}))
    t0 = time.perf_counter()
    _parallel(4, [lambda c, i=i: _ok(c.put(f"/v1/hosts/host-{i:04d}/inventory",
                                           json=api_inventory(f"host-{i:04d}")))
                  for i in range(hosts)], client_of)
    print(f"    registered {hosts} hosts ({hosts * PFS_PER_HOST * 33:,} devices) through "
          f"inventory PUTs in {time.perf_counter() - t0:.0f} s (4 clients)")
    def create(c: httpx.Client) -> tuple[str, int]:
        t = time.perf_counter_ns()
        made = _ok(c.post("/v1/ports", json={"network": "n1", "vnic_type": "direct"})).json()
        assert len(made["fixed_ips"]) == (2 if subnets else 0), made
        return str(made["id"]), time.perf_counter_ns() - t

    t0 = time.perf_counter()
    made = _parallel(8, [create] * ports, client_of)
    wall = time.perf_counter() - t0
    ns = [t for _, t in made]
    print(f"    {ports} port creations, 8 clients{' (IPv4 + IPv6 address each)' if subnets else ''}"
          f": {ports / wall:,.0f} ports/s, p50 {pct(ns, 50) / 1000:.1f} ms, p99 "
          f"{pct(ns, 99) / 1000:.1f} ms")
    return [p for p, _ in made]


def _timed_boots(client_of: Callable[[], httpx.Client], ports: list[str], clients: int
                 ) -> tuple[float, list[int], Counter[str]]:
    def boot(port: str) -> Callable[[httpx.Client], tuple[int, int]]:
        def run(c: httpx.Client) -> tuple[int, int]:
            t = time.perf_counter_ns()
            resp = c.post("/v1/instances", json={"name": "vm", "ports": [port]})
            return resp.status_code, time.perf_counter_ns() - t
        return run

    t0 = time.perf_counter()
    results = _parallel(clients, [boot(p) for p in ports], client_of)
    wall = time.perf_counter() - t0
    return wall, [ns for _, ns in results], Counter(str(code) for code, _ in results)


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rpartition(")")[2].split()


def _cmdline(pid: int) -> str:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode(errors="replace")


def _cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` so far (the ones still running)."""
    total = 0
    for pid in pids:
        try:
            fields = _proc_stat(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def _processes(port: int, database: str | None) -> tuple[list[int], list[int]]:
    """The ``vfkeeper serve`` processes listening on ``port`` (its session: parent and
    workers), and the PostgreSQL backends connected to ``database``."""
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    server, backends, session = [], [], None
    for pid in pids:
        try:
            cmd = _cmdline(pid)
            if f"127.0.0.1:{port}" in cmd and "serve" in cmd:
                session = _proc_stat(pid)[3]
            elif database and cmd.startswith("postgres:") and f" {database} " in cmd:
                backends.append(pid)
        except OSError:
            continue
    for pid in pids:
        try:
            if session is not None and _proc_stat(pid)[3] == session:
                server.append(pid)
        except OSError:
            continue
    return server, backends


def _warm_up(client_of: Callable[[], httpx.Client], ports: list[str], clients: int) -> None:
    """Untimed boots from ``clients`` connections, so every worker loads its cached view."""
    t0 = time.perf_counter()
    _, _, codes = _timed_boots(client_of, ports, clients)
    assert set(codes) == {"201"}, codes
    print(f"    warm-up: {len(ports)} boots from {clients} clients (every worker loads its cached "
          f"view of every host: 132,000 device rows at 1,000 hosts) in "
          f"{time.perf_counter() - t0:.1f} s")


def _api_run(args: argparse.Namespace, backend: str, url: str, workdir: Path,
             workers: int, *, subnets: bool = False) -> None:
    from servers import controller_process
    from vfkeeper.controller.auth import create_token
    from vfkeeper.store import migrate
    from vfkeeper.store.database import Database
    from vfkeeper.store.invariants import violations

    db = Database(url)
    migrate.upgrade(db.engine)
    with db.write() as s:
        token = create_token(s, "admin", "benchmark")
    headers = {"Authorization": f"Bearer {token}"}
    serve_args = ("--workers", str(workers), "--agent-timeout", "86400")
    with controller_process(url, workdir / f"serve-{backend}-{workers}.log",
                            args=serve_args) as base:
        def client_of() -> httpx.Client:
            return httpx.Client(base_url=base, headers=headers, timeout=120)

        print(f"  {backend}, `vfkeeper serve --workers {workers}` on {base}"
              f"{', network with IPv4 + IPv6 subnets' if subnets else ''}")
        warm = 8 * workers
        ports = _populate(client_of, args.hosts, args.api_boots + warm, subnets)
        _warm_up(client_of, ports[-warm:], args.api_clients)
        ports = ports[:-warm]
        server, backends = _processes(int(base.rsplit(":", 1)[1]),
                                      url.rsplit("/", 1)[1] if backend == "postgresql" else None)
        cpu0 = (_cpu_s(server), _cpu_s(backends), time.process_time())
        load0 = os.getloadavg()
        wall, ns, codes = _timed_boots(client_of, ports, args.api_clients)
        cpu1 = (_cpu_s(server), _cpu_s(backends), time.process_time())
        load1 = os.getloadavg()
    with db.read() as s:
        broken = violations(s)
    db.dispose()
    ok = codes.get("201", 0)
    per = [(b - a) / max(ok, 1) * 1000 for a, b in zip(cpu0, cpu1, strict=False)]
    print(f"    {len(ports)} boots, {args.api_clients} clients: {ok / wall:,.0f} boots/s "
          f"({ok} placed in {wall:.1f} s; statuses {dict(codes)}); per boot p50 "
          f"{pct(ns, 50) / 1000:.1f} ms, p99 {pct(ns, 99) / 1000:.1f} ms")
    print(f"    CPU per boot: server {per[0]:.1f} ms ({len(server)} processes), PostgreSQL "
          f"backends {per[1]:.1f} ms ({len(backends)}), clients {per[2]:.1f} ms; "
          f"load average {load0[0]:.1f} before, {load1[0]:.1f} after")
    print(f"    invariant violations: {len(broken)}" + "".join(f"\n      {b}" for b in broken[:10]))


def section_b(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import servers

    print(f"(b) boots through the REST API: {args.hosts} hosts x {PFS_PER_HOST} PFs x 32 VFs, "
          f"{args.api_boots} boots of one direct port, {args.api_clients} clients")
    workdir = Path(tempfile.mkdtemp(prefix="vfkeeper-bench-"))
    print(f"  servers' logs and the SQLite databases: {workdir}")
    runs = [(b, w, sub) for b in args.backend or ("sqlite", "postgresql")
            for w in args.api_workers or (1, 2) for sub in args.subnets or ("off",)]
    for backend, workers, sub in runs:
        subnets = sub == "on"
        if backend == "sqlite":
            url = f"sqlite:///{workdir / f'bench-{workers}-{sub}.sqlite'}"
            _api_run(args, backend, url, workdir, workers, subnets=subnets)
            continue
        try:
            with servers.postgres_cluster() as cluster:
                _api_run(args, backend, cluster.new_database(), workdir, workers, subnets=subnets)
        except servers.ServerUnavailable as exc:
            print(f"  postgresql: skipped: {exc}")


SECTIONS: dict[str, Callable[[argparse.Namespace], None]] = {"a": section_a, "b": section_b}


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
    parser.add_argument("--api-boots", type=int, default=3000, help="(b): timed boots")
    parser.add_argument("--api-clients", type=int, default=8, help="(b): concurrent clients")
    parser.add_argument("--subnets", choices=("off", "on"), action="append",
                        help="(b): ports with no addresses (off) or an IPv4 and an IPv6 address "
                             "each (on); repeat for both, in the same run")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), action="append",
                        help="(b): only this database (repeatable)")
    parser.add_argument("--api-workers", type=int, action="append",
                        help="(b): `vfkeeper serve --workers N` (repeatable; default 1 and 2)")
    args = parser.parse_args(argv)
    if args.quick:
        args.hosts, args.boots, args.compare, args.api_boots = 100, 1000, 500, 300
    print(f"python {sys.version.split()[0]}")
    for name in args.section or sorted(SECTIONS):
        SECTIONS[name](args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
