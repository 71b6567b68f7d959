"""Hot-plug (``POST /v1/instances/{id}/ports``) claims on the instance's own host through the one
claim path; hot-unplug (``DELETE /v1/instances/{id}/ports/{port}``) releases that port only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from vfkeeper.controller import claims


def _port(api: httpx.Client, vnic_type: str = "direct") -> str:
    resp = api.post("/v1/ports", json={"network": "n1", "vnic_type": vnic_type})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _boot(api: httpx.Client, host: str = "host-a", **kw: Any) -> dict[str, Any]:
    resp = api.post("/v1/instances", json={"name": "vm", "ports": [_port(api)], "host": host,
                                           **kw})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _generation(api: httpx.Client, host: str) -> int:
    return int(api.get(f"/v1/hosts/{host}/desired-state").json()["generation"])


def _numa(api: httpx.Client, host: str, address: str) -> int:
    devices = api.get(f"/v1/hosts/{host}", params={"detail": True}).json()["devices"]
    return int(next(d["numa_node"] for d in devices if d["address"] == address))


def test_attach_claims_a_vf_on_the_instances_host(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api)
    before = {h: _generation(api, h) for h in ("host-a", "host-b")}
    port_id = _port(api)
    resp = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": port_id})
    assert resp.status_code == 200, resp.text
    view = resp.json()
    assert view["host"] == "host-a" and port_id in view["ports"] and len(view["ports"]) == 2
    [new] = [a for a in view["allocations"] if a["port_id"] == port_id]
    port = api.get(f"/v1/ports/{port_id}").json()
    assert (port["instance_id"], port["binding:host_id"], port["status"]) == (
        inst["id"], "host-a", "BUILD")
    assert port["binding:profile"]["pci_slot"] == new["device"]
    assert port["binding:profile"]["request_id"] == new["request_id"]
    assert port["mac"] and port["binding:vif_details"]["vlan"] == "7"
    assert _generation(api, "host-a") == before["host-a"] + 1
    assert _generation(api, "host-b") == before["host-b"]
    vfs = api.get("/v1/hosts/host-a/desired-state").json()["vfs"]
    assert {v["address"] for v in vfs} == {a["device"] for a in view["allocations"]}
    assert api.get(f"/v1/instances/{inst['id']}").json() == view


def test_attach_honours_a_required_numa_policy_and_409_names_only_its_host(
        vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api, numa_policy="required")
    node = _numa(api, "host-a", inst["allocations"][0]["device"])
    second = _port(api)
    view = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": second}).json()
    assert {_numa(api, "host-a", a["device"]) for a in view["allocations"]} == {node}

    third = _port(api)  # the node's two VFs are taken; the other node and host-b have room
    generation = _generation(api, "host-a")
    resp = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": third})
    assert resp.status_code == 409, resp.text
    error = resp.json()["error"]
    assert error["code"] == "no_valid_host"
    assert [h["host"] for h in error["details"]["hosts"]] == ["host-a"]
    assert "host-a" in error["message"] and f"NUMA node {node}" in error["message"]
    port = api.get(f"/v1/ports/{third}").json()
    assert (port["instance_id"], port["binding:host_id"], port["mac"]) == (None, None, None)
    assert len(api.get("/v1/allocations").json()) == 2
    assert _generation(api, "host-a") == generation


def test_attach_refuses_when_the_instances_host_is_full(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api)
    for _ in range(3):  # host-a has 4 VFs
        assert api.post(f"/v1/instances/{inst['id']}/ports",
                        json={"port_id": _port(api)}).status_code == 200
    resp = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": _port(api)})
    assert resp.status_code == 409
    assert [h["host"] for h in resp.json()["error"]["details"]["hosts"]] == ["host-a"]


def test_a_normal_port_is_attached_without_a_device(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api)
    port_id = _port(api, "normal")
    view = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": port_id}).json()
    assert port_id in view["ports"] and len(view["allocations"]) == 1
    port = api.get(f"/v1/ports/{port_id}").json()
    assert (port["instance_id"], port["binding:host_id"]) == (inst["id"], "host-a")


def test_attach_refuses_bound_and_unknown_ports_and_instances(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api)
    other = _boot(api, host="host-b")
    resp = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": other["ports"][0]})
    assert resp.status_code == 409 and "already bound" in resp.json()["error"]["message"]
    resp = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": "nope"})
    assert resp.status_code == 404 and "no port 'nope'" in resp.json()["error"]["message"]
    resp = api.post("/v1/instances/nope/ports", json={"port_id": _port(api)})
    assert resp.status_code == 404 and "no instance 'nope'" in resp.json()["error"]["message"]
    assert api.post(f"/v1/instances/{inst['id']}/ports", json={}).status_code == 422


def test_detach_releases_only_that_port(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api)
    kept = inst["ports"][0]
    port_id = _port(api)
    api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": port_id})
    mac = api.get(f"/v1/ports/{port_id}").json()["mac"]
    generation = _generation(api, "host-a")
    assert api.delete(f"/v1/instances/{inst['id']}/ports/{port_id}").status_code == 204
    view = api.get(f"/v1/instances/{inst['id']}").json()
    assert view["ports"] == [kept] and [a["port_id"] for a in view["allocations"]] == [kept]
    port = api.get(f"/v1/ports/{port_id}").json()
    assert (port["instance_id"], port["binding:host_id"], port["status"], port["mac"]) == (
        None, None, "DOWN", mac)
    assert port["binding:profile"] == {} and port["desired"] is None
    assert _generation(api, "host-a") == generation + 1
    vfs = api.get("/v1/hosts/host-a/desired-state").json()["vfs"]
    assert [v["port_id"] for v in vfs] == [kept]
    again = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": port_id})
    assert again.status_code == 200 and api.get(f"/v1/ports/{port_id}").json()["mac"] == mac


def test_detach_of_a_port_the_instance_lacks_is_refused(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _boot(api)
    other = _boot(api, host="host-b")
    loose = _port(api)
    resp = api.delete(f"/v1/instances/{inst['id']}/ports/{loose}")
    assert resp.status_code == 409
    assert "not attached to any instance" in resp.json()["error"]["message"]
    resp = api.delete(f"/v1/instances/{inst['id']}/ports/{other['ports'][0]}")
    assert resp.status_code == 409
    assert f"attached to instance {other['id']}" in resp.json()["error"]["message"]
    assert api.delete(f"/v1/instances/{inst['id']}/ports/nope").status_code == 404
    assert api.delete(f"/v1/instances/nope/ports/{loose}").status_code == 404
    assert len(api.get("/v1/allocations").json()) == 2


def test_a_viewer_may_not_hot_plug(vlan_cluster: httpx.Client,
                                   client: Callable[[str | None], httpx.Client]) -> None:
    inst = _boot(vlan_cluster)
    port_id = _port(vlan_cluster)
    with client("viewer") as viewer:
        resp = viewer.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": port_id})
        assert resp.status_code == 403
        resp = viewer.delete(f"/v1/instances/{inst['id']}/ports/{inst['ports'][0]}")
        assert resp.status_code == 403


def test_a_delete_racing_an_attach_unbinds_the_late_port_too(
        vlan_cluster: httpx.Client, app: FastAPI, migrated_db_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The delete reads the instance's ports, then an attach commits one more before the
    delete takes the host's lock: the delete must still unbind it and free its VF."""
    if not migrated_db_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time, so this interleaving cannot happen")
    api = vlan_cluster
    inst = _boot(api)
    late_port = _port(api)
    real_lock = claims._lock_bound_ports
    attached: list[int] = []

    def lock_then_let_an_attach_commit(*args: Any) -> Any:
        ports = real_lock(*args)
        if not attached:  # another connection attaches and commits in between
            resp = api.post(f"/v1/instances/{inst['id']}/ports", json={"port_id": late_port})
            attached.append(resp.status_code)
        return ports

    monkeypatch.setattr(claims, "_lock_bound_ports", lock_then_let_an_attach_commit)
    with app.state.ctx.db.write() as session:
        claims.release(session, inst["id"])
    assert attached == [200]
    monkeypatch.undo()
    assert api.get(f"/v1/instances/{inst['id']}").status_code == 404
    port = api.get(f"/v1/ports/{late_port}").json()
    assert (port["instance_id"], port["binding:host_id"]) == (None, None)
    assert api.get("/v1/allocations").json() == []
