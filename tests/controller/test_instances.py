"""Boot = schedule + claim; delete releases; 409 names every host; in-use devices are kept."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from vfkeeper.domain.inventory import Device

Inventory = Callable[..., dict[str, Any]]
SPECS = [{"vendor_id": "15b3", "product_id": "1018", "physical_network": "physnet1"},
         {"vendor_id": "15b3", "product_id": "1017", "physical_network": "physnet1"}]


@pytest.fixture
def cluster(api: httpx.Client, inventory: Inventory) -> httpx.Client:
    for name in ("host-a", "host-b"):
        assert api.put(f"/v1/hosts/{name}/inventory", json=inventory(name, vfs=2)).is_success
    api.put("/v1/device-specs", json={"entries": SPECS})
    api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                   "segmentation": {"type": "vlan", "id": 100}})
    return api


def _port(api: httpx.Client, vnic_type: str = "direct", **kw: Any) -> str:
    resp = api.post("/v1/ports", json={"network": "n1", "vnic_type": vnic_type, **kw})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _boot(api: httpx.Client, ports: list[str], **kw: Any) -> httpx.Response:
    return api.post("/v1/instances", json={"name": "vm", "ports": ports, **kw})


def test_boot_claims_a_vf_and_binds_the_port(cluster: httpx.Client) -> None:
    port_id = _port(cluster, trusted=False)
    before = {h: cluster.get(f"/v1/hosts/{h}/desired-state").json()["generation"]
              for h in ("host-a", "host-b")}
    resp = _boot(cluster, [port_id])
    assert resp.status_code == 201, resp.text
    inst = resp.json()
    port = cluster.get(f"/v1/ports/{port_id}").json()
    assert port["binding:host_id"] == inst["host"]
    assert port["binding:vif_type"] == "hw_veb"
    assert port["binding:vif_details"]["vlan"] == "100"
    profile = port["binding:profile"]
    assert profile["pci_vendor_info"] == "15b3:1018" and profile["physical_network"] == "physnet1"
    assert profile["pci_slot"] == inst["allocations"][0]["device"]
    assert profile["request_id"] == inst["allocations"][0]["request_id"]
    assert port["mac"].startswith("02:76:66:")
    state = cluster.get(f"/v1/hosts/{inst['host']}/desired-state").json()
    assert state["generation"] == before[inst["host"]] + 1
    assert [(v["address"], v["mac"], v["vlan"]) for v in state["vfs"]] == [
        (profile["pci_slot"], port["mac"], 100)]


def test_delete_releases_everything_and_the_port_keeps_its_mac(cluster: httpx.Client) -> None:
    port_id = _port(cluster)
    inst = _boot(cluster, [port_id]).json()
    mac = cluster.get(f"/v1/ports/{port_id}").json()["mac"]
    assert cluster.delete(f"/v1/instances/{inst['id']}").status_code == 204
    assert cluster.get("/v1/allocations").json() == []
    port = cluster.get(f"/v1/ports/{port_id}").json()
    assert port["binding:host_id"] is None and port["instance_id"] is None and port["mac"] == mac
    assert cluster.get(f"/v1/hosts/{inst['host']}/desired-state").json()["vfs"] == []


def test_a_pf_and_its_vfs_are_exclusive(cluster: httpx.Client) -> None:
    _boot(cluster, [_port(cluster, "direct-physical")], host="host-a")
    used_pf = cluster.get("/v1/allocations").json()[0]["device"]
    pools = cluster.get("/v1/pools", params={"host": "host-a"}).json()
    vf_pool = next(p for p in pools if p["dev_type"] == "type-VF" and p["parent_pf"] == used_pf)
    assert vf_pool["free"] == 0


def test_nothing_fits_is_409_naming_every_host_and_its_reason(cluster: httpx.Client) -> None:
    cluster.patch("/v1/hosts/host-b", json={"enabled": False, "disabled_reason": "maintenance"})
    ports = [_port(cluster) for _ in range(5)]  # host-a has 4 VFs
    resp = _boot(cluster, ports)
    assert resp.status_code == 409
    err = resp.json()["error"]
    assert err["code"] == "no_valid_host"
    assert {h["host"] for h in err["details"]["hosts"]} == {"host-a", "host-b"}
    assert "host-a: " in err["message"] and "host-b: " in err["message"]
    assert cluster.get("/v1/instances").json() == []
    assert all(cluster.get(f"/v1/ports/{p}").json()["instance_id"] is None for p in ports)


def test_a_bound_port_cannot_boot_twice_or_be_deleted(cluster: httpx.Client) -> None:
    port_id = _port(cluster)
    _boot(cluster, [port_id])
    assert _boot(cluster, [port_id]).status_code == 409
    assert cluster.delete(f"/v1/ports/{port_id}").status_code == 409


def test_a_spec_change_keeps_in_use_devices_and_reports_them(cluster: httpx.Client) -> None:
    inst = _boot(cluster, [_port(cluster)], host="host-a").json()
    device = inst["allocations"][0]["device"]
    resp = cluster.put("/v1/device-specs", json={"entries": [
        {"vendor_id": "8086", "physical_network": "physnet1"}]})  # a typo'd whitelist
    kept = resp.json()["in_use_devices_kept"]
    assert [(k["host"], k["address"]) for k in kept] == [("host-a", device)]
    host = cluster.get("/v1/hosts/host-a").json()
    assert [p["address"] for p in host["problems"]] == [device]
    assert cluster.get("/v1/allocations").json()[0]["device_problem"]
    assert cluster.delete(f"/v1/instances/{inst['id']}").status_code == 204


def test_a_vanished_in_use_device_is_kept_until_release(
    cluster: httpx.Client, inventory: Inventory
) -> None:
    inst = _boot(cluster, [_port(cluster)], host="host-a").json()
    device = inst["allocations"][0]["device"]
    resp = cluster.put("/v1/hosts/host-a/inventory", json=inventory("host-a", vfs=0))
    assert [k["address"] for k in resp.json()["in_use_devices_kept"]] == [device]
    assert cluster.delete(f"/v1/instances/{inst['id']}").status_code == 204


def test_parallel_boots_never_share_a_vf_or_mac(cluster: httpx.Client) -> None:
    ports = [_port(cluster) for _ in range(10)]  # 8 VFs in the cluster
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: _boot(cluster, [p]), ports))
    assert sorted(r.status_code for r in results) == [201] * 8 + [409] * 2
    allocs = cluster.get("/v1/allocations").json()
    assert len({(a["host"], a["device"]) for a in allocs}) == len(allocs) == 8
    macs = [p["mac"] for p in cluster.get("/v1/ports").json() if p["mac"]]
    assert len(macs) == len(set(macs)) == 8


def test_type_pci_devices_with_a_physnet_are_pooled_but_never_scheduled(
    api: httpx.Client, inventory: Inventory
) -> None:
    """A plain PCI device a spec gives a physnet shows as a pool, and boots still schedule
    (the scheduler takes only VF and PF pools) instead of failing on it."""
    doc = inventory("host-p", vfs=2)
    doc["devices"].append(Device(address="0000:5e:00.0", vendor_id="8086", product_id="0a54",
                                 dev_type="type-PCI", driver="nvme", numa_node=0
                                 ).model_dump(mode="json"))
    assert api.put("/v1/hosts/host-p/inventory", json=doc).is_success
    api.put("/v1/device-specs", json={"entries": [*SPECS, {"vendor_id": "8086",
                                                           "physical_network": "physnet1"}]})
    pools = api.get("/v1/pools", params={"host": "host-p"}).json()
    assert ("type-PCI", 1, 1) in {(p["dev_type"], p["total"], p["free"]) for p in pools}
    api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                   "segmentation": {"type": "flat"}})
    resp = _boot(api, [_port(api)])
    assert resp.status_code == 201, resp.text
    devices = {a["device"] for a in api.get("/v1/allocations").json()}
    assert "0000:5e:00.0" not in devices


def _report(api: httpx.Client, host: str, port_id: str, address: str, status: str) -> None:
    generation = api.get(f"/v1/hosts/{host}/desired-state").json()["generation"]
    error = "program failed: the driver refused the MAC" if status == "ERROR" else None
    resp = api.put(f"/v1/hosts/{host}/actual-state", json={
        "host": host, "desired_generation": generation,
        "ports": [{"port_id": port_id, "address": address, "phase": "recorded",
                   "status": status, "last_error": error}]})
    assert resp.is_success, resp.text


def test_an_instance_with_a_port_in_error_is_shown_error_not_active(
        cluster: httpx.Client) -> None:
    port_id = _port(cluster)
    inst = _boot(cluster, [port_id]).json()
    assert inst["status"] == "ACTIVE"
    device = inst["allocations"][0]["device"]
    _report(cluster, inst["host"], port_id, device, "ERROR")
    shown = cluster.get(f"/v1/instances/{inst['id']}").json()
    assert shown["status"] == "ERROR"
    assert [i["status"] for i in cluster.get("/v1/instances").json()] == ["ERROR"]
    _report(cluster, inst["host"], port_id, device, "ACTIVE")  # the agent repaired it
    assert cluster.get(f"/v1/instances/{inst['id']}").json()["status"] == "ACTIVE"


def test_desired_vlan_is_an_integer_also_for_claims_stored_before_it_was(
        cluster: httpx.Client, app: Any) -> None:
    from sqlalchemy import select

    from vfkeeper.store.models import Allocation

    port_id = _port(cluster)
    inst = _boot(cluster, [port_id]).json()
    with app.state.ctx.db.write() as s:  # as a claim of schema 0005 stored it
        allocation = s.scalar(select(Allocation))
        allocation.desired = {**allocation.desired, "vlan": "100"}
    state = cluster.get(f"/v1/hosts/{inst['host']}/desired-state").json()
    assert [v["vlan"] for v in state["vfs"]] == [100]
    assert cluster.get(f"/v1/ports/{port_id}").json()["desired"]["vlan"] == 100
