"""Device specs: cluster-wide and per-host overrides; a change recomputes pools."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

Inventory = Callable[..., dict[str, Any]]
VFS_ON_PHYSNET1 = [{"vendor_id": "15b3", "product_id": "1018", "physical_network": "physnet1"}]


def _pools(api: httpx.Client, host: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/hosts/{host}").json()["pools"]  # type: ignore[no-any-return]


def test_without_specs_nothing_is_assignable(api: httpx.Client, inventory: Inventory) -> None:
    api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=4))
    host = api.get("/v1/hosts/h1").json()
    assert host["devices_assignable"] == 0 and host["pools"] == []


def test_a_cluster_spec_change_recomputes_every_hosts_pools(
    api: httpx.Client, inventory: Inventory
) -> None:
    for name in ("h1", "h2"):
        api.put(f"/v1/hosts/{name}/inventory", json=inventory(name, vfs=4))
    resp = api.put("/v1/device-specs", json={"entries": VFS_ON_PHYSNET1})
    assert resp.status_code == 200, resp.text
    assert resp.json()["recomputed_hosts"] == ["h1", "h2"]
    pools = _pools(api, "h1")
    assert [(p["physical_network"], p["numa_node"], p["total"], p["free"]) for p in pools] == [
        ("physnet1", 0, 4, 4), ("physnet1", 1, 4, 4)]
    assert {p["parent_pf"] for p in pools} == {"0000:03:00.0", "0000:81:00.0"}


def test_specs_apply_to_hosts_that_register_later(api: httpx.Client, inventory: Inventory) -> None:
    api.put("/v1/device-specs", json={"entries": VFS_ON_PHYSNET1})
    api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=2))
    assert sum(p["total"] for p in _pools(api, "h1")) == 4


def test_nova_conf_strings_are_accepted(api: httpx.Client, inventory: Inventory) -> None:
    api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=2))
    entry = '{"address": "0000:81:00.*", "physical_network": "ib-a", "trusted": "true"}'
    api.put("/v1/device-specs", json={"entries": [entry]})
    pools = _pools(api, "h1")
    assert {(p["physical_network"], p["dev_type"]) for p in pools} == {
        ("ib-a", "type-VF"), ("ib-a", "type-PF")}
    assert all(p["tags"] == {"trusted": "true"} for p in pools)


def test_a_host_override_replaces_the_cluster_specs_there_only(
    api: httpx.Client, inventory: Inventory
) -> None:
    for name in ("h1", "h2"):
        api.put(f"/v1/hosts/{name}/inventory", json=inventory(name, vfs=2))
    api.put("/v1/device-specs", json={"entries": VFS_ON_PHYSNET1})
    override = [{"address": "0000:03:00.*", "physical_network": "physnet9"}]
    resp = api.put("/v1/hosts/h2/device-specs", json={"entries": override})
    assert resp.json()["recomputed_hosts"] == ["h2"]
    assert {p["physical_network"] for p in _pools(api, "h2")} == {"physnet9"}
    assert {p["physical_network"] for p in _pools(api, "h1")} == {"physnet1"}
    assert api.get("/v1/device-specs").json()["overrides"] == {"h2": override}
    api.delete("/v1/hosts/h2/device-specs")
    assert {p["physical_network"] for p in _pools(api, "h2")} == {"physnet1"}


def test_an_invalid_spec_is_422_naming_entry_and_key_and_changes_nothing(
    api: httpx.Client, inventory: Inventory
) -> None:
    api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=2))
    api.put("/v1/device-specs", json={"entries": VFS_ON_PHYSNET1})
    bad = [*VFS_ON_PHYSNET1, {"vendor_id": "15b3x", "physical_network": "p"}]
    resp = api.put("/v1/device-specs", json={"entries": bad})
    assert resp.status_code == 422
    err = resp.json()["error"]
    assert err["details"]["entry"] == 1 and err["details"]["key"] == "vendor_id"
    assert api.get("/v1/device-specs").json()["cluster"] == VFS_ON_PHYSNET1


def test_a_spec_unusable_on_a_host_is_reported_on_that_host(
    api: httpx.Client, inventory: Inventory
) -> None:
    api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=2))
    # Nova refuses remote_managed with an address naming a PF at nova-compute start-up.
    resp = api.put("/v1/device-specs", json={"entries": [
        {"address": "0000:03:00.0", "remote_managed": "true", "physical_network": "p"}]})
    assert resp.status_code == 200
    problem = resp.json()["host_problems"]["h1"]
    assert "remote_managed" in problem and "0000:03:00.0" in problem
    assert api.get("/v1/hosts/h1").json()["spec_problem"] == problem
