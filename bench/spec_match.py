"""Benchmark of device-spec matching: ``python bench/spec_match.py [-n 100000] [--json]``.

Workload: ``n`` devices of one synthetic host (SR-IOV PFs of three NIC families, each followed
by its VFs on the same bus, plus plain PCI NICs) against 32 Nova-syntax specs mixing globs,
regex objects, PF-address expansions (with and without a VF product_id), devnames and tags; a
fair share of devices match no spec, so they are checked against all 32.

Measured, each on the same input:

* vfkeeper: compile the 32 specs (once), index the host (``HostView.from_records``), bind, then
  the first matching spec for every device;
* Nova (``nova.pci.whitelist.Whitelist`` + ``PciDeviceSpec.match``, in the venv that
  ``scripts/nova-venv.sh`` builds, one subprocess): parse the specs, then the first matching
  spec for every device. Nova's four ``/sys`` look-ups answer from the same host description
  (in-memory dict look-ups, faster than the real ``/sys`` Nova would read);
* both results are compared device by device: the benchmark fails if they differ.

Throughput is reported as devices/s and device-x-spec checks/s (vfkeeper evaluates all 32 specs
per device at once; for Nova the number of ``match`` calls it made is counted). Peak Python heap
(tracemalloc, in a separate untimed-for-speed pass) and the process's max RSS are reported too.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOVA_PYTHON = Path(os.environ.get("NOVA_PYTHON", ROOT / ".cache/nova-venv/bin/python"))

FAMILIES = [  # vendor, PF product, VF product, netdev prefix
    ("15b3", "1017", "1018", "ens"),
    ("15b3", "101b", "101c", "ib"),
    ("8086", "1593", "1889", "eth"),
]
VFS_PER_PF = 63


def make_devices(n: int) -> list[dict[str, Any]]:
    """``n`` devices: per bus one PF, its VFs, and every 8th bus a plain PCI NIC."""
    devices: list[dict[str, Any]] = []
    bus_no = 0
    while len(devices) < n:
        domain, bus = divmod(bus_no, 256)
        vendor, pf_product, vf_product, prefix = FAMILIES[bus_no % len(FAMILIES)]
        pf = f"{domain:04x}:{bus:02x}:00.0"
        devices.append({"address": pf, "vendor_id": vendor, "product_id": pf_product,
                        "dev_type": "type-PF", "parent_addr": None,
                        "netdevs": [f"{prefix}{bus_no}"]})
        for i in range(VFS_PER_PF):
            slot, func = divmod(i + 1, 8)
            devices.append({"address": f"{domain:04x}:{bus:02x}:{slot:02x}.{func}",
                            "vendor_id": vendor, "product_id": vf_product, "dev_type": "type-VF",
                            "parent_addr": pf, "vf_index": i})
        if bus_no % 8 == 7:
            devices.append({"address": f"{domain:04x}:{bus:02x}:1f.7", "vendor_id": "8086",
                            "product_id": "15b7", "dev_type": "type-PCI", "parent_addr": None,
                            "netdevs": [f"eno{bus_no}"]})
        bus_no += 1
    return devices[:n]


def make_specs() -> list[str]:
    specs: list[dict[str, Any]] = []
    for b in range(0, 48, 6):  # PF address expansions, half narrowed to the VFs
        spec: dict[str, Any] = {"address": f"0000:{b:02x}:00.0", "physical_network": f"pf{b}"}
        if b % 12 == 0:
            spec["product_id"] = FAMILIES[b % 3][2]
        specs.append(spec)
    for b in range(1, 40, 5):  # globs
        specs.append({"address": f"*:{b:02x}:0{b % 8}.*", "vendor_id": "15b3",
                      "physical_network": "glob", "trusted": "true"})
    for b in range(2, 64, 8):  # regex objects
        specs.append({"address": {"domain": "000[01]", "bus": f"{b:02x}",
                                  "function": "[1-7]"}, "physical_network": "rx",
                      "managed": "yes"})
    for b in range(3, 60, 12):  # devnames of PFs
        specs.append({"devname": f"{FAMILIES[b % 3][3]}{b}", "physical_network": "dev"})
    specs += [
        {"vendor_id": "8086", "product_id": "15b7", "physical_network": None},
        {"vendor_id": "15b3", "product_id": "101c", "address": "0002:*:*.*",
         "physical_network": "ib", "live_migratable": "false"},
        {"address": ":ff:1f.7", "physical_network": "last"},
    ]
    assert len(specs) == 32, len(specs)
    return [json.dumps(s) for s in specs]


def run_vfkeeper(devices: list[dict[str, Any]], specs: list[str]) -> dict[str, Any]:
    from vfkeeper.domain.devspec import DeviceSpecSet, HostView

    t0 = time.perf_counter()
    spec_set = DeviceSpecSet.parse(specs, extensions=False)
    t1 = time.perf_counter()
    host = HostView.from_records(devices)
    t2 = time.perf_counter()
    matcher = spec_set.bind(host)
    first = matcher.first_index
    results = [first(d) for d in host.devices]
    t3 = time.perf_counter()
    return {"compile_s": t1 - t0, "index_s": t2 - t1, "match_s": t3 - t2, "results": results}


def vfkeeper_peak(devices: list[dict[str, Any]], specs: list[str]) -> int:
    tracemalloc.start()
    run_vfkeeper(devices, specs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def nova_worker(path: str) -> None:
    """Runs under the Nova venv: time Nova on the workload in ``path``; print JSON."""
    spec = importlib.util.spec_from_file_location(
        "nova_runner", ROOT / "tests" / "nova" / "nova_runner.py")
    assert spec is not None and spec.loader is not None
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    whitelist = runner.whitelist
    data = json.loads(Path(path).read_text())
    devices, specs = data["devices"], data["specs"]
    runner.install_host(devices)
    dicts = [runner.nova_dict(d) for d in devices]
    t0 = time.perf_counter()
    wl = whitelist.Whitelist(specs)
    t1 = time.perf_counter()
    results, calls = [], 0
    for dev in dicts:
        found = -1
        for i, s in enumerate(wl.specs):
            calls += 1
            if s.match(dev):
                found = i
                break
        results.append(found)
    t2 = time.perf_counter()
    print(json.dumps({"compile_s": t1 - t0, "match_s": t2 - t1, "calls": calls,
                      "results": results, "maxrss_kib": _vm_hwm_kib()}))


def _vm_hwm_kib() -> int:
    """This process's peak RSS. Not ``ru_maxrss``: a child inherits its parent's across
    fork+exec on Linux, which would charge the parent's memory to Nova."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_nova(devices: list[dict[str, Any]], specs: list[str]) -> dict[str, Any] | None:
    if not NOVA_PYTHON.exists():
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"devices": devices, "specs": specs}, f)
    try:
        proc = subprocess.run([str(NOVA_PYTHON), __file__, "--nova-worker", f.name],
                              capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", "--devices", type=int, default=100_000)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--no-nova", action="store_true", help="skip the Nova comparison")
    ap.add_argument("--nova-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.nova_worker:
        nova_worker(args.nova_worker)
        return 0
    devices, specs = make_devices(args.devices), make_specs()
    n, k = len(devices), len(specs)
    ours = run_vfkeeper(devices, specs)
    ours_total = ours["index_s"] + ours["match_s"]
    report: dict[str, Any] = {
        "devices": n, "specs": k,
        "python": platform.python_version(), "machine": platform.machine(),
        "matched": sum(1 for r in ours["results"] if r >= 0),
        "vfkeeper": {
            "compile_ms": round(ours["compile_s"] * 1e3, 2),
            "index_s": round(ours["index_s"], 3),
            "match_s": round(ours["match_s"], 3),
            "devices_per_s": round(n / ours["match_s"]),
            "checks_per_s": round(n * k / ours["match_s"]),
            "devices_per_s_incl_index": round(n / ours_total),
            "peak_heap_mib": round(vfkeeper_peak(devices, specs) / 2**20, 1),
            "maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        },
    }
    nova = None if args.no_nova else run_nova(devices, specs)
    if nova is not None:
        if nova["results"] != ours["results"]:
            diff = sum(1 for a, b in zip(nova["results"], ours["results"], strict=True) if a != b)
            print(f"RESULTS DIFFER from Nova's on {diff} devices", file=sys.stderr)
            return 1
        report["nova"] = {
            "compile_ms": round(nova["compile_s"] * 1e3, 2),
            "match_s": round(nova["match_s"], 3),
            "devices_per_s": round(n / nova["match_s"]),
            "checks_per_s": round(nova["calls"] / nova["match_s"]),
            "match_calls": nova["calls"],
            "maxrss_mib": round(nova["maxrss_kib"] / 1024, 1),
        }
        report["speedup_match"] = round(nova["match_s"] / ours["match_s"], 1)
        report["speedup_incl_index"] = round(nova["match_s"] / ours_total, 1)
        report["results_equal"] = True
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        v = report["vfkeeper"]
        print(f"{n} devices x {k} specs, {report['matched']} matched")
        print(f"vfkeeper: {v['devices_per_s']:,} devices/s, {v['checks_per_s']:,} device x spec "
              f"checks/s (match {v['match_s']} s; index {v['index_s']} s; compile "
              f"{v['compile_ms']} ms); peak heap {v['peak_heap_mib']} MiB, "
              f"max RSS {v['maxrss_mib']} MiB")
        if "nova" in report:
            nv = report["nova"]
            print(f"Nova:     {nv['devices_per_s']:,} devices/s, {nv['checks_per_s']:,} match "
                  f"calls/s (match {nv['match_s']} s, {nv['match_calls']:,} calls); "
                  f"max RSS {nv['maxrss_mib']} MiB")
            print(f"speed-up: {report['speedup_match']}x on matching, "
                  f"{report['speedup_incl_index']}x including vfkeeper's host indexing; "
                  "results identical")
        else:
            print(f"Nova: not measured (no venv at {NOVA_PYTHON}; run scripts/nova-venv.sh)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
