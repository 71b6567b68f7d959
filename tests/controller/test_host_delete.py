"""``DELETE /v1/hosts/{name}``: a host goes with its devices and reports, never while an
instance holds anything of it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from vfkeeper.store.agent_models import HostActual, PortActual
from vfkeeper.store.models import Device, Host


def _count(app: FastAPI, model: type) -> int:
    with app.state.ctx.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _boot(api: httpx.Client, **body: object) -> httpx.Response:
    port = api.post("/v1/ports", json={"network": "n1"}).json()["id"]
    return api.post("/v1/instances", json={"name": "vm", "ports": [port], **body})


def _report(api: httpx.Client, host: str) -> None:
    desired = api.get(f"/v1/hosts/{host}/desired-state").json()
    ports = [{"port_id": v["port_id"], "address": v["address"], "phase": "attached",
              "status": "ACTIVE"} for v in desired["vfs"]]
    assert api.put(f"/v1/hosts/{host}/actual-state", json={
        "host": host, "desired_generation": desired["generation"], "ports": ports}).is_success


def test_a_host_in_use_is_refused_naming_its_instances(app: FastAPI,
                                                       vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api, host="host-b").json()
    _report(api, "host-b")
    devices = _count(app, Device)
    resp = api.delete("/v1/hosts/host-b")
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["code"] == "in_use" and f"instance {inst['id']}" in error["message"]
    assert error["details"]["used_by"] == [f"instance {inst['id']}"]
    assert api.get("/v1/hosts/host-b").status_code == 200 and _count(app, Device) == devices
    assert _count(app, PortActual) == 1


def test_a_host_goes_with_its_devices_and_reports(app: FastAPI,
                                                  vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api, host="host-b").json()
    _report(api, "host-b")
    assert api.delete(f"/v1/instances/{inst['id']}").status_code == 204
    _report(api, "host-b")  # released: the agent reports no port, but a host summary
    before = _count(app, Device)
    assert api.delete("/v1/hosts/host-b").status_code == 204
    assert api.get("/v1/hosts/host-b").status_code == 404
    assert [h["name"] for h in api.get("/v1/hosts").json()] == ["host-a", "host-c"]
    assert {p["host"] for p in api.get("/v1/pools").json()} == {"host-a", "host-c"}
    assert _count(app, Device) == before - 6  # 2 PFs and 4 VFs
    with app.state.ctx.db.read() as s:
        assert s.scalar(select(Host).where(Host.name == "host-b")) is None
        assert s.scalars(select(HostActual)).all() == []
    assert api.delete("/v1/hosts/host-b").status_code == 404


def test_the_scheduler_forgets_a_deleted_host(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    assert _boot(api).status_code == 201  # the scheduling cache has every host
    assert api.delete("/v1/hosts/host-c").status_code == 204
    refused = _boot(api, host="host-c")
    assert refused.status_code == 409
    assert "host hint host-c names no known host" in refused.json()["error"]["message"]


def test_only_an_admin_deletes_hosts(vlan_cluster: httpx.Client,
                                     client: Callable[[str | None], httpx.Client]) -> None:
    for role in ("viewer", "agent:host-a"):
        with client(role) as c:
            assert c.delete("/v1/hosts/host-a").status_code == 403
    assert vlan_cluster.get("/v1/hosts/host-a").status_code == 200
