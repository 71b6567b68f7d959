"""The per-controller cached cluster view: refreshed from hosts whose generation moved, with
agent liveness decided at decision time, and never the source of truth for a claim."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from manual_clock import ManualClock
from vfkeeper.controller.app import create_app
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.scheduler import Placement, PoolAllocation

Inventory = Callable[..., dict[str, Any]]
SPECS = [{"vendor_id": "15b3", "physical_network": "physnet1"}]
HOSTS = ("host-a", "host-b", "host-c")


@pytest.fixture
def make_api(
    migrated_db_url: str, clock: ManualClock, asgi_transport: Callable[[Any], Any]
) -> Iterator[Callable[[], tuple[FastAPI, httpx.Client]]]:
    """``make_api()`` -> (app, client): another controller on the same database each call."""
    apps: list[FastAPI] = []

    def make() -> tuple[FastAPI, httpx.Client]:
        settings = ControllerSettings(db_url=migrated_db_url, auth=False, agent_timeout_s=60)
        app = create_app(settings, clock=clock, seed=len(apps))
        apps.append(app)
        return app, httpx.Client(transport=asgi_transport(app), base_url="http://vfkeeper")

    yield make
    for app in apps:
        app.state.ctx.db.dispose()


def _setup(api: httpx.Client, inventory: Inventory) -> None:
    for name in HOSTS:
        assert api.put(f"/v1/hosts/{name}/inventory", json=inventory(name, vfs=2)).is_success
    assert api.put("/v1/device-specs", json={"entries": SPECS}).is_success
    assert api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                          "segmentation": {"type": "flat"}}).is_success


def _boot(api: httpx.Client, **kw: Any) -> httpx.Response:
    port = api.post("/v1/ports", json={"network": "n1", "vnic_type": "direct"}).json()["id"]
    return api.post("/v1/instances", json={"name": "vm", "ports": [port], **kw})


def _generation(api: httpx.Client, host: str) -> int:
    return int(api.get(f"/v1/hosts/{host}/desired-state").json()["generation"])


def _heartbeat_all(api: httpx.Client) -> None:
    for name in HOSTS:
        assert api.post(f"/v1/hosts/{name}/heartbeat").status_code == 204


def test_every_change_to_what_a_host_offers_bumps_its_generation(
    make_api: Callable[[], tuple[FastAPI, httpx.Client]], inventory: Inventory, clock: ManualClock
) -> None:
    _, api = make_api()
    _setup(api, inventory)
    steps: list[tuple[str, Callable[[], object]]] = [
        ("inventory", lambda: api.put("/v1/hosts/host-a/inventory", json=inventory("host-a"))),
        ("specs", lambda: api.put("/v1/device-specs", json={"entries": SPECS})),
        ("host specs", lambda: api.put("/v1/hosts/host-a/device-specs",
                                       json={"entries": SPECS})),
        ("disable", lambda: api.patch("/v1/hosts/host-a", json={"enabled": False})),
        ("enable", lambda: api.patch("/v1/hosts/host-a", json={"enabled": True})),
        ("boot", lambda: _boot(api, host="host-a")),
    ]
    for what, step in steps:
        before = _generation(api, "host-a")
        step()
        assert _generation(api, "host-a") == before + 1, what
    before = _generation(api, "host-a")
    api.patch("/v1/hosts/host-a", json={"enabled": True})  # no change
    api.post("/v1/hosts/host-a/heartbeat")  # alive already
    assert _generation(api, "host-a") == before
    clock.now += timedelta(seconds=61)
    api.post("/v1/hosts/host-a/heartbeat")  # back from the dead
    assert _generation(api, "host-a") == before + 1


def test_a_boot_rereads_only_the_hosts_that_changed(
    make_api: Callable[[], tuple[FastAPI, httpx.Client]], inventory: Inventory
) -> None:
    app, api = make_api()
    _setup(api, inventory)
    cache = app.state.ctx.scheduling
    assert _boot(api).status_code == 201
    assert cache.reloads == len(HOSTS)  # the first decision reads every host
    assert _boot(api).status_code == 201
    assert cache.reloads == len(HOSTS)  # its own claim was applied to the view, not re-read
    api.put("/v1/hosts/host-b/inventory", json=inventory("host-b", vfs=2))
    assert _boot(api).status_code == 201
    assert cache.reloads == len(HOSTS) + 1


def test_another_controllers_claims_are_seen_and_never_double_allocate(
    make_api: Callable[[], tuple[FastAPI, httpx.Client]], inventory: Inventory
) -> None:
    (_, api1), (app2, api2) = make_api(), make_api()
    _setup(api1, inventory)
    codes = [_boot(api).status_code for _ in range(8) for api in (api1, api2)]
    assert codes == [201] * 12 + [409] * 4  # 3 hosts x 2 PFs x 2 VFs
    allocs = api1.get("/v1/allocations").json()
    assert len({(a["host"], a["device"]) for a in allocs}) == len(allocs) == 12
    assert app2.state.ctx.scheduling.reloads > len(HOSTS)  # it re-read what app1 changed


def test_a_stale_view_costs_a_retry_not_a_double_allocation(
    make_api: Callable[[], tuple[FastAPI, httpx.Client]], inventory: Inventory
) -> None:
    """The view is refreshed before each decision, so force staleness: controller 2 decides on
    a view taken before controller 1 filled host-a (the fullest host, so ``pack`` picks it);
    the claim re-checks under the lock, loses, and the retry places the instance elsewhere."""
    (_, api1), (app2, api2) = make_api(), make_api()
    _setup(api1, inventory)
    cache2 = app2.state.ctx.scheduling
    assert _boot(api2, host="host-a").status_code == 201  # app2's view: host-a has 3 free
    for _ in range(3):
        assert _boot(api1, host="host-a").status_code == 201  # now it has none
    refresh = cache2._refresh
    calls: list[bool] = []

    def stale_first(session: Session, now: datetime) -> None:
        calls.append(bool(calls))
        if len(calls) > 1:  # the first decision keeps the stale view
            refresh(session, now)

    cache2._refresh = stale_first  # type: ignore[method-assign]
    resp = _boot(api2)
    assert resp.status_code == 201, resp.text
    assert resp.json()["host"] != "host-a"
    assert calls == [False, True]  # one lost claim, one retry on a refreshed view
    allocs = api1.get("/v1/allocations").json()
    assert len({(a["host"], a["device"]) for a in allocs}) == len(allocs) == 5


def test_agent_liveness_is_decided_at_decision_time(
    make_api: Callable[[], tuple[FastAPI, httpx.Client]], inventory: Inventory, clock: ManualClock
) -> None:
    _, api = make_api()
    _setup(api, inventory)
    assert _boot(api).status_code == 201  # the cache now holds every host, agents alive
    clock.now += timedelta(seconds=61)  # no write happened: only the clock moved
    resp = _boot(api)
    assert resp.status_code == 409
    reasons = {h["host"]: h["filter"] for h in resp.json()["error"]["details"]["hosts"]}
    assert reasons == dict.fromkeys(HOSTS, "agent_alive")
    assert "agent silent since" in resp.json()["error"]["message"]
    _heartbeat_all(api)
    assert _boot(api).status_code == 201


def test_a_placement_the_view_cannot_take_marks_the_host_for_rereading(
    make_api: Callable[[], tuple[FastAPI, httpx.Client]], inventory: Inventory
) -> None:
    """If the cached view already shows a claim (it was re-read between the claim's commit and
    ``claimed``), applying the placement again would overdraw it: the boot must still succeed
    and the host is re-read at the next decision instead."""
    app, api = make_api()
    _setup(api, inventory)
    for _ in range(4):
        assert _boot(api, host="host-a").status_code == 201  # host-a: no VF left
    cache = app.state.ctx.scheduling
    view = cache._cluster.get("host-a")
    pool = next(p for p in view.pools if p.dev_type == "type-VF")
    host_id = cache._ids["host-a"]
    placement = Placement("host-a", (PoolAllocation("r", pool.key, 1),), None, "pack")
    cache.claimed(placement, cache._generations[host_id] + 1)  # must not raise
    before = cache.reloads
    assert _boot(api).status_code == 201
    assert cache.reloads == before + 1
