"""A VF is free only when its host says so: a device the controller freed (instance deleted,
port unplugged, instance migrated away) stays ``releasing`` — counted, shown, never claimed —
until its host's agent reports, for a desired state at least as new as the release, that it no
longer holds it; or until an admin forces it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from vfkeeper.store.invariants import violations
from vfkeeper.store.models import Allocation, DeviceRelease

HOST = "host-b"


def _ports(api: httpx.Client, n: int) -> list[str]:
    return [api.post("/v1/ports", json={"network": "n1"}).json()["id"] for _ in range(n)]


def _boot(api: httpx.Client, n: int = 1, host: str = HOST) -> httpx.Response:
    return api.post("/v1/instances", json={"name": "vm", "ports": _ports(api, n),
                                           "host": host})


def _report(api: httpx.Client, host: str = HOST, *, generation: int | None = None,
            **extra: Any) -> dict[str, Any]:
    """What the host's agent says after a pass: every desired port attached (plus ``extra``,
    e.g. devices still ``releasing``), answering ``generation`` (default: the current one)."""
    desired = api.get(f"/v1/hosts/{host}/desired-state").json()
    ports = [{"port_id": v["port_id"], "address": v["address"], "phase": "attached",
              "status": "ACTIVE"} for v in desired["vfs"]]
    resp = api.put(f"/v1/hosts/{host}/actual-state", json={
        "host": host, "ports": ports, **extra,
        "desired_generation": desired["generation"] if generation is None else generation})
    assert resp.is_success, resp.text
    return dict(resp.json())


def _pool_counts(api: httpx.Client, host: str = HOST) -> tuple[int, int, int]:
    """(used, releasing, free) summed over the host's VF pools."""
    pools = [p for p in api.get("/v1/pools", params={"host": host}).json()
             if p["dev_type"] == "type-VF"]
    return (sum(p["used"] for p in pools), sum(p["releasing"] for p in pools),
            sum(p["free"] for p in pools))


def _generation(api: httpx.Client, host: str = HOST) -> int:
    return int(api.get(f"/v1/hosts/{host}/desired-state").json()["generation"])


def _releasing(api: httpx.Client, host: str = HOST) -> list[dict[str, Any]]:
    return list(api.get(f"/v1/hosts/{host}").json()["releasing"])


def _fill_and_delete_one(api: httpx.Client) -> tuple[str, int]:
    """Host-b's 4 VFs taken by two instances (3 + 1); the one-VF instance deleted. Returns its
    device's address and the host's generation before the delete."""
    assert _boot(api, 3).status_code == 201
    small = _boot(api, 1).json()
    _report(api)
    before = _generation(api)
    [device] = [a["device"] for a in small["allocations"]]
    assert api.delete(f"/v1/instances/{small['id']}").status_code == 204
    return device, before


def test_a_deleted_instance_s_device_is_releasing_and_never_claimed(
        app: FastAPI, vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    device, _ = _fill_and_delete_one(api)
    assert _pool_counts(api) == (3, 1, 0)
    [row] = _releasing(api)
    assert row["address"] == device and row["reason"] == "instance deleted"
    assert row["released_at"].endswith("Z")
    host = api.get(f"/v1/hosts/{HOST}").json()
    assert host["devices_releasing"] == 1 and host["free"] == 0
    assert [d["releasing"] for d in host["devices"] if d["address"] == device] == [True]

    refused = _boot(api, 1)
    assert refused.status_code == 409
    assert f"1 releasing on host {HOST}" in refused.json()["error"]["message"]
    with app.state.ctx.db.read() as s:
        assert violations(s) == []


def test_a_report_of_an_older_desired_state_keeps_it(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    device, before = _fill_and_delete_one(api)
    _report(api, generation=before)  # the agent had not read the release yet
    assert [r["address"] for r in _releasing(api)] == [device]
    assert _boot(api, 1).status_code == 409


def test_a_report_still_holding_it_keeps_it(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    device, _ = _fill_and_delete_one(api)
    _report(api, releasing=[{"port_id": "p-old", "address": device, "domain": "vm"}])
    assert [r["address"] for r in _releasing(api)] == [device]
    _report(api, problems=[{"kind": "journal", "message": "record damaged", "address": device,
                            "port_id": "p-old"}])  # a damaged record naming it holds it too
    assert [r["address"] for r in _releasing(api)] == [device]
    _report(api, foreign=[{"address": device, "domain": "stranger", "where": "live",
                           "device": "hostdev"}])
    assert [r["address"] for r in _releasing(api)] == [device]
    _report(api, problems=[{"kind": "reconcile", "message": "the pass failed"}])  # says nothing
    assert [r["address"] for r in _releasing(api)] == [device]
    assert _boot(api, 1).status_code == 409


def test_a_report_of_the_new_desired_state_not_holding_it_frees_it(
        vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    _fill_and_delete_one(api)
    _report(api)
    assert _releasing(api) == []
    assert _pool_counts(api) == (3, 0, 1)
    assert _boot(api, 1).status_code == 201


def test_a_silent_agent_keeps_its_releasing_devices(app: FastAPI,
                                                    vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    device, _ = _fill_and_delete_one(api)
    for other in ("host-a", "host-c"):  # other hosts' reports change nothing here
        _report(api, other)
    assert api.post(f"/v1/hosts/{HOST}/heartbeat").is_success
    assert [r["address"] for r in _releasing(api)] == [device]
    with app.state.ctx.db.read() as s:
        assert len(s.scalars(select(DeviceRelease)).all()) == 1


def test_a_hot_unplugged_port_s_device_is_releasing(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    assert _boot(api, 3).status_code == 201
    inst = _boot(api, 1).json()
    [alloc] = inst["allocations"]
    assert api.delete(f"/v1/instances/{inst['id']}/ports/{alloc['port_id']}").status_code == 204
    [row] = _releasing(api)
    assert (row["address"], row["reason"], row["port_id"]) == (
        alloc["device"], "port unplugged", alloc["port_id"])
    attach = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": alloc["port_id"]})
    assert attach.status_code == 409 and f"1 releasing on host {HOST}" in attach.text
    _report(api)
    assert api.post(f"/v1/instances/{inst['id']}/ports",
                    json={"port_id": alloc["port_id"]}).status_code == 200


def test_a_migrated_instance_s_source_devices_are_releasing(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    for host in ("host-a", "host-b"):
        assert api.post(f"/v1/hosts/{host}/heartbeat",
                        json={"migration_uri": f"qemu+tcp://{host}/system"}).is_success
    inst = _boot(api, 1, host="host-a").json()
    [source_device] = [a["device"] for a in inst["allocations"]]
    moving = api.post(f"/v1/instances/{inst['id']}/migrate", json={"host": HOST})
    assert moving.status_code == 202, moving.text
    task = moving.json()["task"]
    arrived = {"task_id": task["id"], "instance_id": inst["id"], "role": "target",
               "status": "arrived", "domain_uuid": inst["id"]}
    _report(api, HOST, tasks=[arrived])
    assert api.get(f"/v1/instances/{inst['id']}").json()["host"] == HOST
    [row] = _releasing(api, "host-a")
    assert (row["address"], row["reason"]) == (source_device, "migrated away")
    _report(api, "host-a")
    assert _releasing(api, "host-a") == []


def test_an_arrival_naming_another_domain_does_not_end_the_migration(
        vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    for host in ("host-a", "host-b"):
        assert api.post(f"/v1/hosts/{host}/heartbeat",
                        json={"migration_uri": f"qemu+tcp://{host}/system"}).is_success
    inst = _boot(api, 1, host="host-a").json()
    task = api.post(f"/v1/instances/{inst['id']}/migrate", json={"host": HOST}).json()["task"]
    report = {"task_id": task["id"], "instance_id": inst["id"], "role": "target",
              "status": "arrived"}
    for uuid in (None, "0f6e2ac4-5a1b-4f43-9d3e-111111111111"):
        said = _report(api, HOST, tasks=[{**report, "domain_uuid": uuid}])
        assert said["tasks_ended"] == []
        [refused] = said["tasks_refused"]
        assert refused["task_id"] == task["id"] and inst["id"] in refused["message"]
        view = api.get(f"/v1/instances/{inst['id']}").json()
        assert view["status"] == "MIGRATING" and view["host"] == "host-a"
    assert _releasing(api, "host-a") == []


def test_force_release(vlan_cluster: httpx.Client,
                       client: Callable[[str | None], httpx.Client]) -> None:
    api = vlan_cluster
    device, _ = _fill_and_delete_one(api)
    path = f"/v1/hosts/{HOST}/devices/{device}/force-release"
    with client("viewer") as viewer:
        assert viewer.post(path).status_code == 403
    assert api.post(f"/v1/hosts/nowhere/devices/{device}/force-release").status_code == 404
    assert api.post(f"/v1/hosts/{HOST}/devices/0000:99:00.1/force-release").status_code == 404
    forced = api.post(path)
    assert forced.status_code == 200, forced.text
    body = forced.json()
    assert body["address"] == device and body["reason"] == "instance deleted"
    assert "old domain" in body["risk"]
    assert _releasing(api) == [] and _pool_counts(api) == (3, 0, 1)
    again = api.post(path)
    assert again.status_code == 409 and "not releasing" in again.json()["error"]["message"]
    assert _boot(api, 1).status_code == 201


def test_a_host_with_releasing_devices_cannot_be_deleted(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api, 2).json()
    assert api.delete(f"/v1/instances/{inst['id']}").status_code == 204
    refused = api.delete(f"/v1/hosts/{HOST}")
    assert refused.status_code == 409
    assert "2 releasing devices" in refused.json()["error"]["message"]
    _report(api)
    assert api.delete(f"/v1/hosts/{HOST}").status_code == 204


def test_a_rolled_back_reservation_is_releasing_on_the_destination(
        vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    for host in ("host-a", "host-b"):
        assert api.post(f"/v1/hosts/{host}/heartbeat",
                        json={"migration_uri": f"qemu+tcp://{host}/system"}).is_success
    inst = _boot(api, 1, host="host-a").json()
    moving = api.post(f"/v1/instances/{inst['id']}/migrate", json={"host": HOST}).json()
    [reserved] = [i["device"] for i in moving["task"]["incoming"]]
    failed = {"task_id": moving["task"]["id"], "instance_id": inst["id"], "role": "target",
              "status": "failed", "detail": "cannot program the VF"}
    assert _report(api, HOST, tasks=[failed])["tasks_ended"] == [moving["task"]["id"]]
    [row] = _releasing(api)
    assert (row["address"], row["reason"]) == (reserved, "migration rolled back")
    assert api.get(f"/v1/instances/{inst['id']}").json()["host"] == "host-a"


def test_invariants_name_a_device_both_allocated_and_releasing(
        app: FastAPI, vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api, 1).json()
    with app.state.ctx.db.write() as s:
        alloc_device = s.scalar(select(Allocation.device_id)
                                .where(Allocation.instance_id == inst["id"]))
        host_id = s.scalar(select(Allocation.host_id).where(Allocation.instance_id == inst["id"]))
        assert alloc_device is not None and host_id is not None
        s.add(DeviceRelease(device_id=alloc_device, host_id=host_id, port_id="p", instance_id="i",
                            generation=0, reason="instance deleted"))
    with app.state.ctx.db.read() as s:
        [found] = violations(s)
    assert "both releasing" in found and "allocated" in found
