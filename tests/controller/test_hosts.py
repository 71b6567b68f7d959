"""Hosts: inventory intake, views, interfaces, enable/disable, agent tokens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from vfkeeper.domain.inventory import SCHEMA_VERSION

Inventory = Callable[..., dict[str, Any]]


def test_inventory_put_registers_the_host_and_its_devices(
    api: httpx.Client, inventory: Inventory
) -> None:
    resp = api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=4))
    assert resp.status_code == 200, resp.text
    assert resp.json()["devices"] == 10
    hosts = api.get("/v1/hosts").json()
    assert [h["name"] for h in hosts] == ["h1"]
    assert hosts[0]["agent"]["alive"] is True
    host = api.get("/v1/hosts/h1").json()
    assert host["devices_total"] == 10
    assert {d["address"] for d in host["devices"]} >= {"0000:03:00.0", "0000:03:00.1"}


def test_a_new_inventory_replaces_devices_that_vanished(
    api: httpx.Client, inventory: Inventory
) -> None:
    api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=4))
    api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=2))
    host = api.get("/v1/hosts/h1").json()
    assert host["devices_total"] == 6
    assert host["problems"] == []


def test_schema_version_mismatch_is_422_naming_the_accepted_versions(
    api: httpx.Client, inventory: Inventory
) -> None:
    doc = inventory("h1")
    doc["schema_version"] = 99
    resp = api.put("/v1/hosts/h1/inventory", json=doc)
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["details"]["accepted"] == [1, SCHEMA_VERSION]
    assert "99" in err["message"] and f"accepted: 1, {SCHEMA_VERSION}" in err["message"]
    assert api.get("/v1/hosts/h1").status_code == 404  # nothing half-written


def test_an_agent_of_the_previous_release_reporting_version_1_is_accepted(
    api: httpx.Client, inventory: Inventory
) -> None:
    doc = inventory("h1", vfs=2)
    doc["schema_version"] = 1
    for device in doc["devices"]:
        device.pop("vpd_serial", None)
        device.pop("sriov_vf_device", None)
    resp = api.put("/v1/hosts/h1/inventory", json=doc)
    assert resp.status_code == 200, resp.text
    assert api.get("/v1/hosts/h1").json()["devices_total"] == 6


def test_an_invalid_inventory_is_422_with_the_field(
    api: httpx.Client, inventory: Inventory
) -> None:
    doc = inventory("h1")
    doc["devices"][0]["dev_type"] = "type-XX"
    err = api.put("/v1/hosts/h1/inventory", json=doc).json()["error"]
    assert err["code"] == "invalid_input"
    assert err["details"]["errors"][0]["loc"][:3] == ["devices", 0, "dev_type"]


def test_inventory_for_another_host_is_refused(api: httpx.Client, inventory: Inventory) -> None:
    resp = api.put("/v1/hosts/h1/inventory", json=inventory("h2"))
    assert resp.status_code == 422
    assert "/v1/hosts/h2/inventory" in resp.json()["error"]["message"]


def test_interfaces_list_every_nic_with_bus_info_and_driver(
    api: httpx.Client, inventory: Inventory
) -> None:
    api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=1))
    nics = api.get("/v1/hosts/h1/interfaces").json()
    assert len(nics) == 4
    pf = next(n for n in nics if n["pci_address"] == "0000:03:00.0")
    assert pf["bus_info"] == "0000:03:00.0"
    assert pf["driver"] == "mlx5_core"
    assert pf["name"] == "enp3s0" and pf["numa_node"] == 0 and pf["link_type"] == "ethernet"


def test_hosts_can_be_disabled_for_scheduling_and_enabled_again(
    api: httpx.Client, inventory: Inventory
) -> None:
    api.put("/v1/hosts/h1/inventory", json=inventory("h1"))
    resp = api.patch("/v1/hosts/h1", json={"enabled": False, "disabled_reason": "BIOS update"})
    assert resp.json()["enabled"] is False
    assert api.get("/v1/hosts/h1").json()["disabled_reason"] == "BIOS update"
    assert api.patch("/v1/hosts/h1", json={"enabled": True}).json()["disabled_reason"] is None


def test_an_agent_token_writes_only_its_own_host(
    client: Callable[[str | None], httpx.Client], inventory: Inventory
) -> None:
    agent = client("agent:h1")
    assert agent.put("/v1/hosts/h1/inventory", json=inventory("h1")).status_code == 200
    assert agent.post("/v1/hosts/h1/heartbeat").status_code == 204
    assert agent.get("/v1/hosts/h1").status_code == 200
    resp = agent.put("/v1/hosts/h2/inventory", json=inventory("h2"))
    assert resp.status_code == 403
    assert agent.get("/v1/hosts").status_code == 403


def test_a_viewer_reads_but_does_not_write(
    client: Callable[[str | None], httpx.Client], inventory: Inventory
) -> None:
    viewer = client("viewer")
    assert viewer.get("/v1/hosts").status_code == 200
    assert viewer.put("/v1/hosts/h1/inventory", json=inventory("h1")).status_code == 403
