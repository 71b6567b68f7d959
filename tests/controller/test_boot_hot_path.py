"""The boot's hot path: one transaction per attempt, an answer that needs no read-back, and
concurrent boots of one controller spread over equally good hosts instead of queueing on one
host's lock."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from sqlalchemy import event

from vfkeeper.controller import instances
from vfkeeper.scheduler import InstanceRequest, PciRequest, Placement

HOSTS = ("host-a", "host-b", "host-c")


@pytest.fixture
def cluster(vlan_cluster: httpx.Client) -> httpx.Client:
    return vlan_cluster


def _ports(api: httpx.Client, *vnic_types: str) -> list[str]:
    return [api.post("/v1/ports", json={"network": "n1", "vnic_type": v}).json()["id"]
            for v in vnic_types]


def test_a_boot_is_one_transaction_and_answers_what_a_read_shows(
    app: FastAPI, cluster: httpx.Client
) -> None:
    ctx = app.state.ctx
    body = instances.InstanceCreate(name="vm", ports=_ports(cluster, "direct", "normal",
                                                            "direct-physical"))
    assert cluster.post("/v1/instances", json={"name": "warm", "ports": _ports(
        cluster, "direct")}).status_code == 201  # the cache has loaded every host
    begins: list[object] = []
    listener = begins.append
    event.listen(ctx.db.engine, "begin", listener)
    try:
        view = instances.boot_instance(ctx, body)
    finally:
        event.remove(ctx.db.engine, "begin", listener)

    assert len(begins) == 1
    read = cluster.get(f"/v1/instances/{view['id']}").json()
    mine = jsonable_encoder(view)
    assert {k: v for k, v in mine.items() if k != "created_at"} == {
        k: v for k, v in read.items() if k != "created_at"}
    assert mine["created_at"][:19] == read["created_at"][:19]  # SQLite keeps no zone
    assert len(read["allocations"]) == 2 and len(read["ports"]) == 3


def test_concurrent_decisions_of_one_controller_go_to_different_hosts(
    app: FastAPI, cluster: httpx.Client
) -> None:
    """``pack`` ranks host-a first every time; while a claim on it is unsettled the next
    decision takes the next-best host, and once it settles host-a is first again."""
    cache, now = app.state.ctx.scheduling, app.state.ctx.clock()

    def decide(n: int) -> Placement:
        result = cache.schedule(InstanceRequest((PciRequest(f"r{n}", "physnet1"),)), now)
        assert isinstance(result, Placement)
        return result

    first, second, third = decide(1), decide(2), decide(3)
    assert [first.host, second.host, third.host] == list(HOSTS)
    fourth = decide(4)  # every host busy: the weigher's first choice after all
    assert fourth.host == "host-a"
    for placement in (first, second, third, fourth):
        cache.settle(placement, None)  # abandoned: nothing applied, nothing busy
    assert decide(5).host == "host-a"
    cache.settle(decide(6), None)


def test_a_failed_boot_leaves_no_host_busy(app: FastAPI, cluster: httpx.Client) -> None:
    bound = _ports(cluster, "direct")
    assert cluster.post("/v1/instances", json={"name": "a", "ports": bound}).status_code == 201
    resp = cluster.post("/v1/instances", json={"name": "b", "ports": bound})
    assert resp.status_code == 409  # the port is bound already
    assert app.state.ctx.scheduling._busy == {}
    resp = cluster.post("/v1/instances", json={"name": "c", "ports": _ports(cluster, "direct"),
                                               "host": "nowhere"})
    assert resp.status_code == 409
    assert app.state.ctx.scheduling._busy == {}
