"""``vfkeeper serve --workers 2``: two worker processes, each with its own scheduling cache,
behind one socket, on SQLite and on PostgreSQL. Parallel boots that ask for more than the
cluster has must leave every store invariant intact and hand out each VF exactly once."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from servers import controller_process
from vfkeeper.controller.auth import create_token
from vfkeeper.store.database import Database
from vfkeeper.store.invariants import violations

HOSTS = ("host-a", "host-b", "host-c")
SUPPLY = len(HOSTS) * 2 * 4  # 2 PFs x 4 VFs each; PFs are not asked for


def _register(api: httpx.Client, inventory: Callable[..., dict[str, Any]]) -> None:
    assert api.put("/v1/device-specs", json={"entries": [
        {"vendor_id": "15b3", "physical_network": "physnet1"}]}).is_success
    for name in HOSTS:
        assert api.put(f"/v1/hosts/{name}/inventory", json=inventory(name, vfs=4)).is_success
    assert api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                          "segmentation": {"type": "vlan", "id": 5}}).is_success


def _boot(api: httpx.Client) -> httpx.Response:
    port = api.post("/v1/ports", json={"network": "n1", "vnic_type": "direct"})
    assert port.status_code == 201, port.text
    return api.post("/v1/instances", json={"name": "vm", "ports": [port.json()["id"]]})


def test_two_workers_never_hand_out_a_vf_twice(
    db_url: str, tmp_path: Path, inventory: Callable[..., dict[str, Any]]
) -> None:
    with controller_process(db_url, tmp_path / "serve.log", args=("--workers", "2")) as base:
        db = Database(db_url)  # the parent upgraded the schema before the workers started
        try:
            with db.write() as s:
                token = create_token(s, "admin", "workers test")
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
                _register(api, inventory)

            def run(_: int) -> httpx.Response:
                with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                    return _boot(c)

            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(run, range(SUPPLY + 8)))
            booted = [r.json() for r in results if r.status_code == 201]
            for r in (r for r in results if r.status_code != 201):
                assert r.status_code == 409, r.text
                assert r.json()["error"]["code"] in ("no_valid_host", "claim_contended")
            with httpx.Client(base_url=base, headers=headers, timeout=60) as api:
                while (resp := _boot(api)).status_code == 201:  # take what a give-up left
                    booted.append(resp.json())
                assert resp.json()["error"]["code"] == "no_valid_host", resp.text
                allocations = api.get("/v1/allocations").json()
            with db.read() as s:
                assert violations(s) == []
        finally:
            db.dispose()
    devices = [(a["host"], a["device"]) for a in allocations]
    assert len(booted) == len(allocations) == len(set(devices)) == SUPPLY
    assert {b["host"] for b in booted} == set(HOSTS)
