"""Partitions-file benchmark (issue 11): ``python bench/partitions.py [-r 20] [--no-opensm]``.

10,000 GUID memberships across 100 PKeys (100 GUIDs each, every other one limited), below an
operator base of 3 partitions. Timed over ``-r`` repeats, p50/p95 each:

* ``render``: the file from (base text, vfkeeper's partitions);
* ``validate``: parse it back the way OpenSM reads it and compare with what was meant (what
  ``OpenSmBackend.apply`` does before installing);
* ``install``: temp file, write, fsync, rename, fsync of the directory (in a temp directory:
  the figure depends on that file system);
* ``apply, 10,000 new``: ``OpenSmBackend.apply`` of the whole batch into an empty file (read
  base and file, render, validate, install; the reload is a no-op, no readback);
* ``apply, +1 to 10,000``: one more GUID into the full file (what a reconcile pass costs once
  the fabric is full: the file is always rewritten whole).

Peak Python heap (tracemalloc) over one render + validate + install; the file's size.

Anchor (unless ``--no-opensm`` or ibsim/OpenSM are missing): the real OpenSM under ibsim (the
test tier's harness, ``tests/sm/ibsim_fabric.py``) re-reads the file on each heavy sweep; the
time from SIGHUP to its "SUBNET UP" with the 10,000-GUID file minus the same with a 1-partition
file is OpenSM's own cost of parsing it (and of looking up 10,000 GUIDs that are not on the
8-port fabric). Coarse (polled at 5 ms, sweep noise), so it is a median of a few sweeps.

The batching half of the issue's benchmark (1,000 boots in one second reach the SM in <= 2
reloads) needs the controller's partition reconciler, which is not built yet.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from vfkeeper.sm.opensm import OpenSmBackend, install_atomically
from vfkeeper.sm.partitions_file import normalized, parse, render
from vfkeeper.sm.protocol import ChangeSet, Membership, Partition

N_PKEYS, PER_PKEY = 100, 100
BASE = ("# operator partitions\n"
        "Default=0x7fff, ipoib : ALL=limited, SELF=full ;\n"
        "storage=0x7f01, ipoib : 0x0002c90300e00101=full, 0x0002c90300e00201=full ;\n"
        "mgmt=0x7f02 : ALL_SWITCHES=full ;\n")


def memberships() -> dict[int, dict[str, Membership]]:
    return {0x0A00 + p: {f"0x0002c904{p:04x}{i:04x}": "limited" if i % 2 else "full"
                         for i in range(PER_PKEY)} for p in range(N_PKEYS)}


def partitions() -> list[Partition]:
    return [Partition(pkey, members) for pkey, members in memberships().items()]


def timed(n: int, op: Callable[[], object]) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        op()
        out.append(time.perf_counter() - t0)
    return out


def row(name: str, seconds: list[float]) -> None:
    p50 = statistics.median(seconds)
    p95 = statistics.quantiles(seconds, n=20, method="inclusive")[-1] if len(seconds) > 1 \
        else p50
    print(f"  {name:<24} p50 {p50 * 1e3:8.1f} ms   p95 {p95 * 1e3:8.1f} ms   (n={len(seconds)})")


def validate(text: str, parts: list[Partition]) -> None:
    meant = {p.pkey: normalized(p) for p in parts}
    assert parse(text).partitions(operator=False) == meant


def section_file(repeats: int, workdir: Path) -> str:
    parts = partitions()
    text = render(BASE, parts)
    target = workdir / "partitions.conf"
    print(f"file: {len(text.encode()):,} bytes, {text.count(chr(10)):,} lines, "
          f"{N_PKEYS} PKeys x {PER_PKEY} GUIDs")
    row("render", timed(repeats, lambda: render(BASE, parts)))
    row("validate", timed(repeats, lambda: validate(text, parts)))
    row("install", timed(repeats, lambda: install_atomically(target, text)))
    tracemalloc.start()
    install_atomically(target, render(BASE, parts))
    validate(target.read_text(), parts)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    print(f"  peak Python heap, render + validate + install: {peak / 2**20:.1f} MiB")
    return text


def section_apply(repeats: int, workdir: Path) -> None:
    base = workdir / "base.conf"
    base.write_text(BASE)
    batch = ChangeSet(add=memberships())

    def fresh() -> OpenSmBackend:
        return OpenSmBackend(workdir / "apply.conf", base, lambda: None)

    def apply_all() -> None:
        (workdir / "apply.conf").unlink(missing_ok=True)
        fresh().apply(batch)

    row("apply, 10,000 new", timed(max(3, repeats // 4), apply_all))
    sm = fresh()
    sm.apply(batch)
    extra = iter(range(10**6))
    row("apply, +1 to 10,000", timed(repeats, lambda: sm.apply(ChangeSet(
        add={0x0A00: {f"0x0002c905{next(extra):08x}": "full"}}))))


def section_opensm(big: str, workdir: Path, sweeps: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "sm"))
    from ibsim_fabric import PORT_GUIDS, Fabric, FabricUnavailable, missing_tools

    if missing_tools():
        print(f"opensm anchor: skipped ({', '.join(missing_tools())} missing)")
        return
    small = render(BASE, [Partition(0x0A01, {PORT_GUIDS[0]: "full"})])
    fabric = Fabric(workdir, PORT_GUIDS)
    try:
        fabric.start(small)
        times = {"1 partition": [], "10,000 GUIDs": []}
        for _ in range(sweeps):
            for name, text in (("1 partition", small), ("10,000 GUIDs", big)):
                install_atomically(fabric.partitions_file, text)
                times[name].append(_sweep(fabric))
    except FabricUnavailable as exc:
        print(f"opensm anchor: skipped ({exc})")
        return
    finally:
        fabric.stop()
    assert fabric.fail_opens() == 0, "OpenSM could not parse a file vfkeeper validated"
    print("OpenSM 3.3 under ibsim, SIGHUP to SUBNET UP (heavy sweep, 9-node fabric):")
    for name, seconds in times.items():
        row(name, seconds)
    delta = statistics.median(times["10,000 GUIDs"]) - statistics.median(times["1 partition"])
    print(f"  OpenSM's own parse of the 10,000-GUID file ~ {delta * 1e3:.0f} ms (difference of "
          "medians)")


def _sweep(fabric: object) -> float:
    before = fabric.heavy_sweeps()  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    fabric.hup()  # type: ignore[attr-defined]
    while fabric.heavy_sweeps() <= before:  # type: ignore[attr-defined]
        time.sleep(0.005)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-r", "--repeats", type=int, default=20)
    ap.add_argument("--sweeps", type=int, default=5, help="OpenSM sweeps per file")
    ap.add_argument("--no-opensm", action="store_true", help="skip the OpenSM anchor")
    args = ap.parse_args()
    print(f"Python {platform.python_version()}, {platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}")
    with tempfile.TemporaryDirectory(prefix="vfk-bench-partitions-") as tmp:
        workdir = Path(tmp)
        text = section_file(args.repeats, workdir)
        section_apply(args.repeats, workdir)
        if not args.no_opensm:
            (workdir / "ibsim").mkdir()
            section_opensm(text, workdir / "ibsim", args.sweeps)


if __name__ == "__main__":
    main()
