"""Two real controller processes (``vfkeeper serve``, uvicorn, loopback) on one PostgreSQL
database: parallel boots alternating between them, more demand than supply, then parallel
deletes. The database must hold every invariant throughout (``vfkeeper.store.invariants``)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from servers import PostgresCluster, controller_process
from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.controller.auth import create_token
from vfkeeper.sim import simulate_host
from vfkeeper.store.database import Database
from vfkeeper.store.invariants import violations
from vfkeeper.store.models import Allocation, Instance, Port

pytestmark = pytest.mark.postgres

ETH_HOSTS, IB_HOSTS = ("eth-1", "eth-2"), ("ib-1", "ib-2")
PFS, VFS = 2, 4
SPEC = [{"vendor_id": "15b3", "physical_network": "physnet-eth"}]
IB_SPEC = [{"vendor_id": "15b3", "physical_network": "ib-fabric"}]


@pytest.fixture
def two_controllers(
    postgres_cluster: PostgresCluster, tmp_path: Path
) -> Iterator[tuple[str, list[httpx.Client]]]:
    """(database URL, [admin client of controller 1, of controller 2])."""
    url = postgres_cluster.new_database()
    with ExitStack() as stack:
        bases = [stack.enter_context(controller_process(url, tmp_path / f"serve-{i}.log"))
                 for i in (1, 2)]
        db = Database(url)
        stack.callback(db.dispose)
        with db.write() as s:
            token = create_token(s, "admin", "two-controllers test")
        clients = [stack.enter_context(httpx.Client(
            base_url=b, headers={"Authorization": f"Bearer {token}"}, timeout=60)) for b in bases]
        yield url, clients


def _inventory(tmp_path: Path, name: str, model: str) -> dict[str, Any]:
    root = tmp_path / name
    simulate_host(root, model, PFS, VFS, hostname=name)
    return discover(SysfsReader(root), hostname=name).model_dump(mode="json")


def _agent_reports(api: httpx.Client, host: str) -> None:
    """What the host's agent says after a pass: every desired port attached, nothing held."""
    desired = api.get(f"/v1/hosts/{host}/desired-state").json()
    ports = [{"port_id": v["port_id"], "address": v["address"], "phase": "attached",
              "status": "ACTIVE"} for v in desired["vfs"]]
    assert api.put(f"/v1/hosts/{host}/actual-state", json={
        "host": host, "desired_generation": desired["generation"], "ports": ports}).is_success


def _register(api: httpx.Client, tmp_path: Path) -> None:
    assert api.put("/v1/device-specs", json={"entries": SPEC}).is_success
    for name in ETH_HOSTS:
        doc = _inventory(tmp_path, name, "cx5-eth")
        assert api.put(f"/v1/hosts/{name}/inventory", json=doc).is_success
    for name in IB_HOSTS:
        doc = _inventory(tmp_path, name, "cx5-ib")
        assert api.put(f"/v1/hosts/{name}/inventory", json=doc).is_success
        assert api.put(f"/v1/hosts/{name}/device-specs", json={"entries": IB_SPEC}).is_success
    for body in ({"name": "eth", "physical_network": "physnet-eth",
                  "segmentation": {"type": "vlan", "id": 42}},
                 {"name": "ib", "physical_network": "ib-fabric",
                  "segmentation": {"type": "pkey", "id": 0x10, "full_membership": True}}):
        assert api.post("/v1/networks", json=body).status_code == 201


def _demand() -> list[tuple[str, list[tuple[str, str]]]]:
    """Instances as (name, [(network, vnic_type)]): Ethernet supply is 16 VFs or PFs instead,
    InfiniBand 16 VFs; this asks for about twice that."""
    boots: list[tuple[str, list[tuple[str, str]]]] = []
    for i in range(14):
        boots.append((f"eth-vm{i}", [("eth", "direct")] * (1 + i % 2)))
    for i in range(4):
        boots.append((f"eth-pf{i}", [("eth", "direct-physical")]))
    for i in range(20):
        boots.append((f"ib-vm{i}", [("ib", "direct")] * (1 + i % 3 // 2)))
    return boots


def _boot(api: httpx.Client, name: str, ports: list[tuple[str, str]]) -> httpx.Response:
    ids = []
    for network, vnic_type in ports:
        resp = api.post("/v1/ports", json={"network": network, "vnic_type": vnic_type})
        assert resp.status_code == 201, resp.text
        ids.append(resp.json()["id"])
    return api.post("/v1/instances", json={"name": name, "ports": ids})


def _check_failure(resp: httpx.Response) -> None:
    assert resp.status_code == 409, resp.text
    err = resp.json()["error"]
    assert err["code"] in ("no_valid_host", "claim_contended"), err
    assert err["message"]
    if err["code"] == "no_valid_host":
        named = {h["host"] for h in err["details"]["hosts"]}
        assert named == {*ETH_HOSTS, *IB_HOSTS}
        assert all(h["reason"] for h in err["details"]["hosts"])


def _assert_consistent(url: str) -> dict[str, int]:
    db = Database(url)
    try:
        with db.read() as s:
            assert violations(s) == []
            return {
                "instances": s.scalar(select(func.count()).select_from(Instance)) or 0,
                "allocations": s.scalar(select(func.count()).select_from(Allocation)) or 0,
                "bound_ports": s.scalar(select(func.count()).select_from(Port)
                                        .where(Port.instance_id.is_not(None))) or 0,
            }
    finally:
        db.dispose()


def test_parallel_boots_and_deletes_on_two_controllers_keep_every_invariant(
    two_controllers: tuple[str, list[httpx.Client]], tmp_path: Path
) -> None:
    url, apis = two_controllers
    _register(apis[0], tmp_path)
    demand = _demand()
    which = itertools.cycle(apis)
    jobs = [(next(which), name, ports) for name, ports in demand]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda job: _boot(*job), jobs))

    booted = [r.json() for r in results if r.status_code == 201]
    for r in results:
        if r.status_code != 201:
            _check_failure(r)
    assert len(booted) < len(demand), "demand must exceed supply"
    assert {b["host"] for b in booted} == {*ETH_HOSTS, *IB_HOSTS}
    counts = _assert_consistent(url)
    asked = {name: len(ports) for name, ports in demand}
    assert counts["instances"] == len(booted)
    assert counts["allocations"] == counts["bound_ports"] == sum(asked[b["name"]]
                                                                 for b in booted)
    # every controller answers the same about every instance
    for b in booted[:5]:
        assert apis[1].get(f"/v1/instances/{b['id']}").json() == b

    doomed, kept = booted[::2], booted[1::2]
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(lambda ij: apis[ij[0] % 2].delete(f"/v1/instances/{ij[1]['id']}")
                              .status_code, enumerate(doomed)))
    assert codes == [204] * len(doomed)
    counts = _assert_consistent(url)
    assert counts["instances"] == len(kept)
    assert counts["allocations"] == sum(asked[b["name"]] for b in kept)
    for b in doomed:
        assert apis[0].get(f"/v1/instances/{b['id']}").status_code == 404
        assert apis[1].get("/v1/allocations", params={"instance": b["id"]}).json() == []

    # what was released is releasing until its host's agent gives it back ...
    pools = apis[1].get("/v1/pools").json()
    assert sum(p["releasing"] for p in pools) == sum(asked[b["name"]] for b in doomed)
    early = _boot(apis[0], "early", [("ib", "direct")])
    assert early.status_code == 409 and "releasing on host ib-" in early.text
    for host in (*ETH_HOSTS, *IB_HOSTS):
        _agent_reports(apis[0], host)
    assert sum(p["releasing"] for p in apis[1].get("/v1/pools").json()) == 0
    # ... then it can be claimed again, through either controller
    again = [_boot(apis[i % 2], f"again-{i}", [("ib", "direct")]) for i in range(2)]
    assert [r.status_code for r in again] == [201, 201]
    _assert_consistent(url)
