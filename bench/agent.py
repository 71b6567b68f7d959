"""Agent benchmark: reconcile 1,000 desired ports on one simulated host, and the inventory
report of a 1,040-function host.

(a) One host: 8 ice PFs x 128 VFs (FakeLinkOps), 250 running domains (FakeDomainOps), a real
    journal on disk (one fsync'd record per port). Times the first pass (record, program,
    attach live + config for every port), a steady-state pass (nothing to do: observe + plan
    only) and the release of every port (detach, restore, forget). Reports ports/s.
(b) A simulated host of 8 ConnectX-5 PFs x 129 VFs (1,040 PCI functions): discovery + the
    inventory PUT to an in-process controller (SQLite, ASGI transport), and the agent's
    rescan when nothing changed (discovery + compare, no PUT).

    .venv/bin/python bench/agent.py [--ports 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from vfkeeper.agent.desired import HostIndex
from vfkeeper.agent.executor import Reconciler
from vfkeeper.agent.journal import Journal
from vfkeeper.agent.libvirt.fake import FakeDomainOps
from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
from vfkeeper.domain.desired_state import DesiredPort, DesiredState
from vfkeeper.domain.inventory import Device, HostInventory, Netdev
from vfkeeper.domain.vif import render_test_domain

PFS, VFS_PER_PF, PORTS_PER_DOMAIN = 8, 128, 4


def _host(ports: int) -> tuple[HostInventory, DesiredState, FakeLinkOps, FakeDomainOps]:
    devices, where = [], {}
    for p in range(PFS):
        pf_addr, netdev = f"0000:{0x10 + p:02x}:00.0", f"enp{p}s0"
        devices.append(Device(address=pf_addr, dev_type="type-PF", driver="ice",
                              sriov_numvfs=VFS_PER_PF, netdevs=(Netdev(name=netdev),)))
        for v in range(VFS_PER_PF):
            addr = f"0000:{0x10 + p:02x}:{(v + 1) // 8:02x}.{(v + 1) % 8}"
            devices.append(Device(address=addr, dev_type="type-VF", parent_addr=pf_addr,
                                  vf_index=v, netdevs=(Netdev(name=f"{netdev}v{v}"),)))
            where[addr] = (netdev, v)
    inventory = HostInventory(hostname="bench", devices=tuple(devices))
    linkops = FakeLinkOps([FakePf(f"enp{p}s0", "ice", VFS_PER_PF) for p in range(PFS)])
    libvirt = FakeDomainOps(linkops, where.get)
    vfs = [d for d in devices if d.dev_type == "type-VF"][:ports]
    desired = []
    for i, vf in enumerate(vfs):
        dom = f"vm{i // PORTS_PER_DOMAIN}"
        if dom not in libvirt.domains:
            libvirt.define(render_test_domain(dom, [], domain_type="kvm"))
            libvirt.start(dom)
        desired.append(DesiredPort(
            port_id=str(uuid.UUID(int=i + 1)), request_id=str(uuid.uuid4()),
            instance_id=str(uuid.uuid4()), instance_name=dom, address=vf.address,
            parent_pf=vf.parent_addr, vf_index=vf.vf_index, vnic_type="direct",
            vif_type="hw_veb", mac=f"02:76:66:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
            f"{i & 255:02x}", vlan=100 + i % 3000, trusted=False, spoofchk=True))
    return inventory, DesiredState(host="bench", generation=1, vfs=tuple(desired)), linkops, \
        libvirt


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_reconcile(ports: int, repeat: int) -> None:
    firsts, steadies, releases = [], [], []
    for _ in range(repeat):
        inventory, desired, linkops, libvirt = _host(ports)
        index = HostIndex.of(inventory)
        with tempfile.TemporaryDirectory() as tmp:
            agent = Reconciler(linkops, libvirt, Journal(tmp))
            firsts.append(_timed(lambda: agent.reconcile(desired, index)))  # noqa: B023
            steadies.append(_timed(lambda: agent.reconcile(desired, index)))  # noqa: B023
            empty = DesiredState(host="bench", generation=2)
            releases.append(_timed(lambda: agent.reconcile(empty, index)))  # noqa: B023
            assert agent.journal.load().records == {}
    first, steady, release = (statistics.median(x) for x in (firsts, steadies, releases))
    print(f"(a) reconcile {ports} ports on one host ({PFS} PFs x {VFS_PER_PF} VFs, "
          f"{ports // PORTS_PER_DOMAIN} domains), median of {repeat}:")
    print(f"    attach pass   {first:7.3f} s  {ports / first:8.0f} ports/s")
    print(f"    steady pass   {steady:7.3f} s  (observe + plan, nothing to do)")
    print(f"    release pass  {release:7.3f} s  {ports / release:8.0f} ports/s")


def bench_inventory(repeat: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    from conftest import SyncASGITransport
    from vfkeeper.agent.main import AgentConfig, build
    from vfkeeper.controller.app import create_app
    from vfkeeper.controller.settings import ControllerSettings
    from vfkeeper.sim import simulate_host

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "host"
        simulate_host(root, "cx5-eth", 8, 129, hostname="big", totalvfs=129, extra_devices=())
        app = create_app(ControllerSettings(db_url=f"sqlite:///{tmp}/c.sqlite", auth=False))
        config = AgentConfig(controller="http://vfk", token=None, host="big",
                             sysfs_root=str(root), state_dir=f"{tmp}/state",
                             fake_linkops=True, fake_libvirt=True)
        agent = build(config, transport=SyncASGITransport(app))
        functions = len(agent.scan().devices)
        scans, reports, unchanged = [], [], []
        for _ in range(repeat):
            scans.append(_timed(agent.scan))
            agent.inventory = None
            reports.append(_timed(agent.rescan))
            unchanged.append(_timed(agent.rescan))
        app.state.ctx.db.dispose()
    scan, report, same = (statistics.median(x) for x in (scans, reports, unchanged))
    print(f"(b) inventory of a {functions}-function host, median of {repeat}:")
    print(f"    discovery alone          {scan:7.3f} s")
    print(f"    discovery + PUT (report) {report:7.3f} s  (controller stores and re-pools)")
    print(f"    rescan, nothing changed  {same:7.3f} s  (no PUT)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ports", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    bench_reconcile(args.ports, args.repeat)
    bench_inventory(args.repeat)


if __name__ == "__main__":
    main()
