"""Guest-metadata benchmark (issue 12): ``python bench/metadata.py [-n 10000] [-m 2]``.

``-n`` instances with ``-m`` ports each (alternately an Ethernet VF on a dual-stack network
— static IPv4 and IPv6, a host route, DNS — and an InfiniBand VF on an IPv4 network), every
port with its fixed addresses. Per instance, p50/p99:

* ``validate``: building the input model (:class:`vfkeeper.guest.models.Instance`) from plain
  dicts, which checks every rule (addresses inside subnets, 6-byte collisions, ...);
* ``render``: all six documents (network_data.json, meta_data.json, NoCloud network-config,
  meta-data, user-data) as text;
* ``config drive``: the config-2 ISO image with pycdlib (on the first ``--drives`` instances).

Throughput is instances per second of validate + render. Peak Python heap (tracemalloc) over
validating and rendering all of them one after the other, keeping nothing, and keeping every
instance's documents.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
import tracemalloc
from typing import Any

from vfkeeper.guest.config_drive import config_drive
from vfkeeper.guest.documents import render
from vfkeeper.guest.models import Instance


def networks() -> list[dict[str, Any]]:
    return [
        {"id": "net-eth", "name": "tenant", "mtu": 9000, "subnets": [
            {"id": "v4", "cidr": "10.0.0.0/8", "gateway": "10.0.0.1",
             "dns_servers": ["10.0.0.53"],
             "host_routes": [{"destination": "192.168.0.0/16", "nexthop": "10.0.0.254"}]},
            {"id": "v6", "cidr": "2001:db8::/64", "gateway": "2001:db8::1",
             "ipv6_mode": "static", "dns_servers": ["2001:db8::53"]}]},
        {"id": "net-ib", "name": "ib", "mtu": 2044, "subnets": [
            {"id": "ib4", "cidr": "172.16.0.0/12"}]},
    ]


def instance(i: int, ports: int) -> dict[str, Any]:
    out = []
    for p in range(ports):
        n = i * ports + p + 2
        if p % 2 == 0:
            out.append({"id": f"port-{n}", "network_id": "net-eth",
                        "mac": f"fa:16:3e:{n >> 16 & 0xff:02x}:{n >> 8 & 0xff:02x}:{n & 0xff:02x}",
                        "addresses": [{"subnet_id": "v4", "ip": f"10.{n >> 16 & 0xff}."
                                       f"{n >> 8 & 0xff}.{n & 0xff or 1}"},
                                      {"subnet_id": "v6", "ip": f"2001:db8::{n:x}"}]})
        else:
            out.append({"id": f"port-{n}", "network_id": "net-ib", "link_type": "infiniband",
                        "port_guid": f"0x0002c90300{n:06x}",
                        "addresses": [{"subnet_id": "ib4", "ip": f"172.16.{n >> 8 & 0xff}."
                                       f"{n & 0xff or 1}"}]})
    return {"uuid": f"00000000-0000-4000-8000-{i:012x}", "name": f"vm-{i}",
            "hostname": f"vm-{i}.example.org",
            "public_keys": [{"name": "ops", "data": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5 ops"}],
            "user_data": "#cloud-config\npackages: [rdma-core]\n",
            "ports": out, "networks": networks()}


def row(name: str, seconds: list[float]) -> None:
    p50 = statistics.median(seconds)
    p99 = statistics.quantiles(seconds, n=100, method="inclusive")[-1] if len(seconds) > 1 \
        else p50
    print(f"  {name:<16} p50 {p50 * 1e3:7.3f} ms   p99 {p99 * 1e3:7.3f} ms   (n={len(seconds)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", "--instances", type=int, default=10_000)
    ap.add_argument("-m", "--ports", type=int, default=2)
    ap.add_argument("--drives", type=int, default=200, help="config-drive ISOs to build")
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, {platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}; {args.instances:,} instances x {args.ports} ports")
    raw = [instance(i, args.ports) for i in range(args.instances)]
    t_val, t_ren = [], []
    size = 0
    t_all = time.perf_counter()
    for data in raw:
        t0 = time.perf_counter()
        inst = Instance(**data)
        t1 = time.perf_counter()
        docs = render(inst)
        t_val.append(t1 - t0)
        t_ren.append(time.perf_counter() - t1)
        size += len(docs.network_data_json) + len(docs.nocloud_network_config)
    wall = time.perf_counter() - t_all
    row("validate", t_val)
    row("render", t_ren)
    print(f"  throughput       {args.instances / wall:,.0f} instances/s (validate + render; "
          f"{wall:.2f} s in all), network documents {size / args.instances / 1024:.1f} KiB "
          "an instance")
    t_iso = []
    for data in raw[:args.drives]:
        docs = render(Instance(**data))
        t0 = time.perf_counter()
        image = config_drive(docs, "config-2")
        t_iso.append(time.perf_counter() - t0)
    if t_iso:
        row("config drive", t_iso)
        print(f"  image size       {len(image) / 1024:.0f} KiB")
    tracemalloc.start()
    for data in raw:
        render(Instance(**data))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  peak Python heap, validate + render of all, streaming: {peak / 2**20:.2f} MiB")
    tracemalloc.start()
    kept = [render(Instance(**data)) for data in raw]
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  peak Python heap, all {len(kept):,} instances' documents kept: "
          f"{peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
