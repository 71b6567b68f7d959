"""Benchmark of the VIF path: ``python bench/vif.py [-n 10000] [--json] [--section NAME]``.

Each entry of :data:`SECTIONS` is measured the same way: ``setup(n)`` prepares its inputs
(untimed) and returns ``op(i)``; the op runs ``n`` times, timed one by one (throughput and
latency percentiles), then ``n`` times again under :mod:`tracemalloc` for the peak Python heap.
To add a section (e.g. VF programming through the fake LinkOps and pyroute2), append a
:class:`Section` to :data:`SECTIONS`.

Sections here:

* ``render``: build a :class:`BoundVif` (all its checks) and render its device XML, cycling
  through every form (hostdev/direct/network interfaces, 802.1Qbh, PCI hostdevs, failover).
* ``render+validate``: the same, wrapped in a minimal ``<domain>`` and validated against
  libvirt's ``domain.rng`` with lxml, which is what the test suite does to every form.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfkeeper.domain.vif import (
    BoundVif,
    Failover,
    render_failover_pair,
    render_interface,
    render_test_domain,
)

DOMAIN_RNG = Path("/usr/share/libvirt/schemas/domain.rng")

Op = Callable[[int], object]


@dataclass(frozen=True)
class Section:
    name: str
    description: str
    setup: Callable[[int], Op]


@dataclass(frozen=True)
class Result:
    section: str
    n: int
    seconds: float
    latencies_ns: Sequence[int]
    peak_heap_bytes: int

    def summary(self) -> dict[str, Any]:
        q = statistics.quantiles(self.latencies_ns, n=100, method="inclusive")
        return {
            "section": self.section,
            "n": self.n,
            "ops_per_s": round(self.n / self.seconds),
            "p50_us": round(q[49] / 1000, 1),
            "p90_us": round(q[89] / 1000, 1),
            "p99_us": round(q[98] / 1000, 1),
            "max_us": round(max(self.latencies_ns) / 1000, 1),
            "peak_heap_kib": round(self.peak_heap_bytes / 1024),
        }


# --- the VIF forms, cycled -------------------------------------------------------------------


def _vif_kwargs(i: int) -> dict[str, Any]:
    """The i-th port: every form in turn, with addresses and MACs that change per port."""
    vf = f"0000:{3 + i // 2048 % 200:02x}:{i // 8 % 32:02x}.{i % 8}"
    mac = f"fa:16:3e:{i >> 16 & 0xFF:02x}:{i >> 8 & 0xFF:02x}:{i & 0xFF:02x}"
    vlan = 1 + i % 4094
    forms: list[dict[str, Any]] = [
        {"vif_type": "hw_veb", "vnic_type": "direct", "pci_address": vf, "mac": mac, "vlan": vlan},
        {"vif_type": "hw_veb", "vnic_type": "direct", "pci_address": vf, "mac": mac},
        {"vif_type": "hw_veb", "vnic_type": "macvtap", "mac": mac, "vlan": vlan,
         "netdev": f"ens1f0v{i % 64}"},
        {"vif_type": "802.1qbh", "vnic_type": "direct", "pci_address": vf, "mac": mac,
         "profileid": f"pp-{i % 16}"},
        {"vif_type": "802.1qbh", "vnic_type": "macvtap", "mac": mac, "netdev": f"enic0v{i % 64}",
         "profileid": f"pp-{i % 16}"},
        {"vif_type": "hostdev_physical", "vnic_type": "direct-physical",
         "pci_address": vf[:-1] + "0"},
        {"vif_type": "ib_hostdev", "vnic_type": "direct", "pci_address": vf},
        {"vif_type": "hw_veb", "vnic_type": "direct", "hostdev_network": "physnet1", "mac": mac,
         "vlan": vlan},
        {"vif_type": "hw_veb", "vnic_type": "direct", "pci_address": vf, "mac": mac, "vlan": vlan,
         "failover": Failover(bridge="br-ex")},
    ]
    return forms[i % len(forms)]


def _devices(vif: BoundVif) -> Sequence[str]:
    return render_failover_pair(vif) if vif.failover else (render_interface(vif),)


def _setup_render(n: int) -> Op:
    inputs = [_vif_kwargs(i) for i in range(n)]
    return lambda i: _devices(BoundVif(**inputs[i]))


def _setup_render_validate(n: int) -> Op:
    from lxml import etree

    rng = etree.RelaxNG(file=str(DOMAIN_RNG))
    inputs = [_vif_kwargs(i) for i in range(n)]

    def op(i: int) -> object:
        domain = render_test_domain(f"vm{i}", _devices(BoundVif(**inputs[i])))
        if not rng.validate(etree.fromstring(domain)):
            raise AssertionError(f"{rng.error_log}\n{domain}")
        return domain

    return op


SECTIONS: list[Section] = [
    Section("render", "BoundVif checks + device XML, all forms", _setup_render),
    Section(
        "render+validate",
        "the same in a <domain>, validated against libvirt's domain.rng (lxml)",
        _setup_render_validate,
    ),
]


# --- measuring -------------------------------------------------------------------------------


def measure(section: Section, n: int) -> Result:
    op = section.setup(n)
    op(0)  # warm-up: imports, caches
    latencies = [0] * n
    clock = time.perf_counter_ns
    start = clock()
    for i in range(n):
        t0 = clock()
        op(i)
        latencies[i] = clock() - t0
    seconds = (clock() - start) / 1e9
    tracemalloc.start()
    for i in range(n):
        op(i)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return Result(section.name, n, seconds, latencies, peak)


def _table(rows: list[dict[str, Any]]) -> str:
    cols = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in cols]
    cells = [cols] + [[str(r[c]) for c in cols] for r in rows]
    return "\n".join(
        "  ".join(v.rjust(w) for v, w in zip(line, widths, strict=True)) for line in cells
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=10_000, help="operations per section")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--section", action="append", choices=[s.name for s in SECTIONS],
        help="run only this section (repeatable)",
    )
    args = parser.parse_args(argv)
    chosen = [s for s in SECTIONS if not args.section or s.name in args.section]
    rows = [measure(s, args.n).summary() for s in chosen]
    if args.json:
        print(json.dumps({"python": platform.python_version(), "results": rows}, indent=2))
    else:
        print(f"Python {platform.python_version()}, n={args.n}")
        print(_table(rows))


if __name__ == "__main__":
    main()
