"""Partition reconcile benchmark (issue 11): ``python bench/partition_reconcile.py [-n 1000]``.

``n`` InfiniBand boots (a bound port with a GUID on one of 100 PKey networks, every other
network limited) are put straight into a SQLite database at head — hosts, devices, instances,
ports and allocations as claims leave them — and the controller's partition reconciler
(:class:`vfkeeper.controller.partition_reconciler.PartitionReconciler`) brings the OpenSM
backend (a real partitions file in a temp directory, validated and installed atomically; the
reload counted, not sent; no readback) in line with them:

* **batched**: all ``n`` boots arrive before one pass — what happens when they arrive within
  the loop's poll interval (1 s): one ChangeSet, one file write, one reload;
* **one by one**: a pass after each boot — what a reconciler without batching would do.

For each: wall time, controller CPU (``time.process_time``: the reconciler's queries, rendering,
validation and install, in this process), and reloads. Then a **steady pass** on the ``n``
members with nothing pending (what the loop costs each second once the fabric is in line), and
a **full sync** (reads the file back and compares).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from vfkeeper.controller.partition_reconciler import PartitionReconciler
from vfkeeper.sm.opensm import OpenSmBackend
from vfkeeper.store import migrate
from vfkeeper.store.database import Database
from vfkeeper.store.models import Allocation, Device, Host, Instance, Network, Port

N_NETWORKS = 100


class CountingReload:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1


def now() -> datetime:
    return datetime.now(UTC)


def setup(db: Database, n: int) -> list[tuple[Port, Allocation]]:
    """Networks and hosts in the database; returns ``n`` boots (port, allocation) not yet
    added."""
    nets = [Network(id=str(uuid.uuid4()), name=f"ib{i}", physical_network="fabric",
                    segmentation_type="pkey", segmentation_id=0x0A00 + i,
                    pkey_full_membership=bool(i % 2 == 0), pkey_shared=False, mtu=2044)
            for i in range(N_NETWORKS)]
    hosts = [Host(name=f"h{i}", enabled=True, generation=0) for i in range((n + 63) // 64)]
    with db.write() as s:
        s.add_all(nets)
        s.add_all(hosts)
        s.flush()
        devices = [Device(host_id=hosts[i // 64].id, address=f"0000:{i // 64 % 256:02x}:"
                          f"{i % 64 // 8:02x}.{i % 8}", dev_type="type-VF", tags={},
                          present=True, physical_network="fabric") for i in range(n)]
        s.add_all(devices)
        s.flush()
        boots = []
        for i, dev in enumerate(devices):
            inst = Instance(id=str(uuid.uuid4()), name=f"vm{i}", host_id=dev.host_id,
                            numa_policy="preferred", status="ACTIVE")
            port = Port(id=str(uuid.uuid4()), network_id=nets[i % N_NETWORKS].id,
                        vnic_type="direct", guid=f"0x0002c905{i:08x}", instance_id=inst.id,
                        host_id=dev.host_id, vif_details={}, binding_profile={},
                        status="ACTIVE", link_state="auto")
            s.add(inst)
            boots.append((port, Allocation(request_id=str(uuid.uuid4()), device_id=dev.id,
                                           host_id=dev.host_id, instance_id=inst.id,
                                           port_id=port.id, desired={})))
    return boots


def add(db: Database, boots: list[tuple[Port, Allocation]]) -> None:
    with db.write() as s:
        for port, alloc in boots:
            s.add(port)
            s.flush()
            s.add(alloc)


def run(n: int, batched: bool, workdir: Path) -> tuple[float, float, int, PartitionReconciler]:
    db = Database(f"sqlite:///{workdir / 'c.sqlite'}")
    migrate.upgrade(db.engine)
    reload = CountingReload()
    backend = OpenSmBackend(workdir / "partitions.conf", None, reload)
    rec = PartitionReconciler(db, backend, clock=now)
    rec.run_pass(full=True)  # the start-up sync, on the empty fabric
    reload.calls = 0
    boots = setup(db, n)
    wall = cpu = 0.0
    chunks = [boots] if batched else [[b] for b in boots]
    for chunk in chunks:
        add(db, chunk)
        w0, c0 = time.perf_counter(), time.process_time()
        report = rec.run_pass()
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        assert report.pending == 0 and report.error is None, report
    return wall, cpu, reload.calls, rec


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="boots (default 1000)")
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, {platform.machine()}, "
          f"{platform.platform(terse=True)}; n={args.n} boots across {N_NETWORKS} PKeys; SQLite")
    for batched in (True, False):
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu, reloads, rec = run(args.n, batched, Path(tmp))
            name = "batched (one pass)" if batched else "one by one (a pass per boot)"
            print(f"  {name:<30} wall {wall:7.2f} s   CPU {cpu:7.2f} s   reloads {reloads}")
            if batched:
                w0, c0 = time.perf_counter(), time.process_time()
                rec.run_pass()
                print(f"  {'steady pass (nothing pending)':<30} wall "
                      f"{time.perf_counter() - w0:7.3f} s   CPU {time.process_time() - c0:7.3f} s")
                w0 = time.perf_counter()
                report = rec.run_pass(full=True)
                print(f"  {'full sync (read + compare)':<30} wall "
                      f"{time.perf_counter() - w0:7.3f} s   differences "
                      f"{len(report.differences)}")
            rec.db.dispose()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
