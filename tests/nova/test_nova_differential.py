"""Differential test: vfkeeper's matcher against Nova's own, on the same specs and host.

Nova runs in its own venv (``scripts/nova-venv.sh`` → ``.cache/nova-venv``), in one subprocess
for the whole batch (``nova_runner.py``). Cases are generated from a fixed seed so a failure
always reproduces; they aim at Nova's corners: hex normalisation, glob vs regex addresses, PF
expansion, devname resolution, tag normalisation, falsy values, wrong types, remote_managed.
For every case Nova accepts, the matched spec and the tags must be equal for every device; for
every case Nova refuses, vfkeeper must refuse it for the same reason (the same Nova exception,
or — where Nova fails with a bare TypeError/AttributeError — a vfkeeper error of its own).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vfkeeper.domain.devspec import DeviceSpecError, DeviceSpecSet, HostView, SpecEntry

pytestmark = pytest.mark.nova

ROOT = Path(__file__).resolve().parents[2]
NOVA_PYTHON = Path(os.environ.get("NOVA_PYTHON", ROOT / ".cache/nova-venv/bin/python"))
RUNNER = Path(__file__).with_name("nova_runner.py")
CASES = int(os.environ.get("NOVA_DIFF_CASES", "3000"))

PF0, PF1, IB = "0000:3b:00.0", "0000:3b:00.1", "0000:5e:00.0"


def _dev(addr: str, product: str, dev_type: str, parent: str | None = None,
         vendor: str = "15b3", **kw: Any) -> dict[str, Any]:
    return {"address": addr, "vendor_id": vendor, "product_id": product, "dev_type": dev_type,
            "parent_addr": parent, **kw}


HOST = [
    _dev(PF0, "1017", "type-PF", netdevs=["ens1f0"]),
    _dev("0000:3b:00.2", "1018", "type-VF", PF0, netdevs=["ens1f0v0"]),
    _dev("0000:3b:00.3", "1018", "type-VF", PF0, card_serial_number="MT2113X0001"),
    _dev(PF1, "1017", "type-PF", netdevs=["ens1f1"]),
    _dev("0000:3b:08.2", "1018", "type-VF", PF1),
    _dev(IB, "101b", "type-PF", netdevs=["ib0"]),
    _dev("0000:5e:00.1", "101c", "type-VF", IB, card_serial_number="MT2113X0002"),
    _dev("0000:5e:01.7", "101c", "type-VF", IB),
    _dev("0000:00:19.0", "15b7", "type-PCI", vendor="8086", netdevs=["eno1"]),
    _dev("0001:3b:00.0", "1572", "type-PCI", vendor="8086"),
    _dev("0000:af:00.0", "1593", "type-PF", vendor="8086", sriov_totalvfs=0, netdevs=["ens5"]),
]

VENDORS = ["15b3", "8086", "*", " 15b3 ", "0x15B3", "15B3", "0015b3", "15_b3", " *", "-1",
           "zz", "", None, 8086, "10000"]
PRODUCTS = ["1017", "1018", "101c", "*", "0x1018", "1018 ", "101C", "15b7", "ffff",
            " *", "", None, "fffff"]
WEIRD = 0.12  # share of picks drawn from the whole list rather than its valid head
GLOB_FIELDS = ["", "*", "0", "0000", "0001", "3b", "5e", "00", "01", "08", "3", "af", "0x3b",
               " 3b ", "-1", "zz", "20"]
FUNCS = ["", "*", "0", "1", "2", "7", "0x2", "8", " ", "0.1"]
REGEX_VALUES = ["3b", "5e", "0000", "00", "0", "[0-9]", ".*", "", "3", "0[0-8]", "[1-7]",
                "3b$", "af", "[", 5]
DEVNAMES = ["ens1f0", "ens1f0v0", "ib0", "eno1", "ens5", "nope", "", None, 0, 5]
FALSY_ADDRESSES: list[Any] = [0, False, [], {}, None, "", 5, True, [1]]
TAGS: dict[str, list[Any]] = {
    "physical_network": ["physnet1", None, "physnet2"],
    "trusted": ["true", "false", True],
    "managed": ["yes", "no", "maybe", True, 1, None, "TRUE", 1.0],
    "live_migratable": ["false", "on", 2, None],
    "remote_managed": ["true", "false", "yes", True, "bogus"],
    "one_time_use": ["false", "true", "off"],
    "resource_class": ["CUSTOM_A"],
    "drivers": [["vfio-pci"]],
    "x": [1, "y"],
}


def _pick(rng: random.Random, values: list[Any], valid: int) -> Any:
    """Mostly one of the first ``valid`` values, sometimes anything (the corners)."""
    return rng.choice(values if rng.random() < WEIRD else values[:valid])


def _glob(rng: random.Random) -> str:
    shape = rng.randrange(6)
    f = [_pick(rng, GLOB_FIELDS, 11) for _ in range(4)]
    fn = _pick(rng, FUNCS, 7)
    if shape == 0:
        return f"{f[0]}:{f[1]}:{f[2]}.{fn}"
    if shape == 1:
        return f"{f[1]}:{f[2]}.{fn}"
    if shape == 2:
        return f"{f[2]}.{fn}" if rng.random() < 0.5 else f"{f[2]}"
    if shape == 3:
        return rng.choice([PF0, PF1, IB, "0000:3b:00.2", "0000:5e:01.7", "0000:af:00.0",
                           "0:3b:0.0", "3b:00.0", "0000:3B:00.0"])
    if shape == 4:
        return f"{f[0]}:{f[1]}:{f[2]}:{f[3]}.{fn}"
    return f":{f[1]}:" if rng.random() < 0.5 else f".{fn}"


def _address(rng: random.Random) -> Any:
    roll = rng.random()
    if roll < 0.55:
        return _glob(rng)
    if roll < 0.9:
        keys = rng.sample(["domain", "bus", "slot", "function", "func"], rng.randrange(1, 5))
        obj = {k: _pick(rng, REGEX_VALUES, 8) for k in keys}
        if rng.random() < 0.3:
            obj = {"domain": "0000", "bus": rng.choice(["3b", "5e"]), "slot": "00",
                   "function": rng.choice(["0", "1"])}
        return obj
    return _pick(rng, FALSY_ADDRESSES, 6)


def _spec(rng: random.Random) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if rng.random() < 0.5:
        spec["vendor_id"] = _pick(rng, VENDORS, 9)
    if rng.random() < 0.4:
        spec["product_id"] = _pick(rng, PRODUCTS, 9)
    roll = rng.random()
    if roll < 0.5:
        spec["address"] = _address(rng)
    elif roll < 0.8:
        spec["devname"] = rng.choice(DEVNAMES)
    elif roll < 0.85:
        spec["address"], spec["devname"] = _address(rng), rng.choice(DEVNAMES)
    for tag in rng.sample(list(TAGS), rng.randrange(0, 3)):
        spec[tag] = rng.choice(TAGS[tag]) if rng.random() < 0.3 else TAGS[tag][0]
    return spec


def _entries(rng: random.Random) -> list[str]:
    out = []
    for _ in range(rng.randrange(1, 4)):
        roll = rng.random()
        if roll < 0.02:
            out.append(rng.choice(['{"vendor_id": ', '"8086"', "5", '[{"a": 1}, 2]']))
        elif roll < 0.7:
            out.append(json.dumps(_spec(rng)))
        else:
            out.append(json.dumps([_spec(rng) for _ in range(rng.randrange(0, 3))]))
    return out


def _ours(entries: list[str]) -> dict[str, Any]:
    host = HostView.from_records(HOST)
    try:
        matcher = DeviceSpecSet.parse([SpecEntry(e) for e in entries], extensions=False,
                                      host=host).bind(host)
    except DeviceSpecError as exc:
        return {"error": getattr(exc, "nova_error", "?"), "message": str(exc)}
    return {"results": [[m.spec_index, dict(m.tags)] if (m := matcher.match(d)) else None
                        for d in host.devices]}


def _nova(cases: list[list[str]]) -> list[dict[str, Any]]:
    payload = json.dumps({"host": HOST, "cases": [{"specs": c, "devices": HOST} for c in cases]})
    proc = subprocess.run([str(NOVA_PYTHON), str(RUNNER)], input=payload, capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: list[dict[str, Any]] = json.loads(proc.stdout)
    return out


def _agrees(nova: dict[str, Any], ours: dict[str, Any]) -> bool:
    if "error" not in nova:
        return ours == nova
    if "error" not in ours:
        return False
    if nova["error"].startswith("Pci"):  # one of Nova's own exceptions: same reason
        return bool(ours["error"] == nova["error"])
    return ours["error"] is None  # Nova failed with a bare Python error; we explain instead


@pytest.fixture(scope="module")
def nova_ready() -> None:
    if not NOVA_PYTHON.exists():
        pytest.skip(f"Nova venv not found at {NOVA_PYTHON}: run scripts/nova-venv.sh "
                    "(downloads nova from PyPI, ~1 min) or set NOVA_PYTHON")


def test_generated_cases_agree_with_nova(nova_ready: None) -> None:
    rng = random.Random(20261121)
    cases = [_entries(rng) for _ in range(CASES)]
    nova = _nova(cases)
    mismatches = [(c, n, o) for c, n in zip(cases, nova, strict=True)
                  if not _agrees(n, o := _ours(c))]
    assert not mismatches, json.dumps(mismatches[:5], indent=1)
    accepted = [n for n in nova if "results" in n]
    assert len(accepted) > CASES // 3, "the generator should produce mostly valid specs"
    assert sum(1 for n in accepted for r in n["results"] if r) > CASES, "and matches"


TABLE = [
    ['{"devname": "ens1f0", "physical_network": "p1"}'],
    ['{"address": "0000:3b:00.0", "product_id": "1018"}'],
    ['{"address": "0000:af:00.0"}'],  # a PF without SR-IOV capability: no expansion
    ['{"address": {"domain": "0000", "bus": "5e", "slot": "00", "function": "0"}}'],
    ['{"devname": "ib0", "remote_managed": "true", "product_id": "101c"}'],
    ['{"devname": "ib0", "remote_managed": "true"}'],
    ['{"devname": "nope", "remote_managed": "true"}'],
    ['{"address": "0000:5e:00.0", "remote_managed": "true", "product_id": "101c"}'],
    ['{"vendor_id": "15b3", "remote_managed": "true"}'],
    ['{"address": "*:3b:00.*", "vendor_id": " 15b3 ", "managed": "YES"}'],
    ['{"address": ":3b:", "product_id": " *"}'],
    ['{"address": 0, "devname": "eno1"}'],
    ['{"address": [], "vendor_id": "8086"}'],
    ["[]", '{"one_time_use": "true"}'],
]


def test_table_cases_agree_with_nova(nova_ready: None) -> None:
    nova = _nova(TABLE)
    for case, n in zip(TABLE, nova, strict=True):
        assert _agrees(n, _ours(case)), (case, n, _ours(case))
