"""What the API's views show, on SQLite and PostgreSQL: every timestamp in UTC ending in ``Z``,
each allocation's NUMA node, PKeys in hex."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d")


def _timestamps(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Every string of a JSON document that reads as an ISO 8601 date and time."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _timestamps(item, f"{path}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from _timestamps(item, f"{path}[{n}]")
    elif isinstance(value, str) and ISO.match(value):
        yield path, value


def _booted(api: httpx.Client) -> dict[str, Any]:
    port = api.post("/v1/ports", json={"network": "n1"}).json()
    inst = api.post("/v1/instances", json={"name": "vm", "ports": [port["id"]],
                                           "numa_policy": "required"})
    assert inst.status_code == 201, inst.text
    host = inst.json()["host"]
    assert api.post(f"/v1/hosts/{host}/heartbeat").status_code == 204
    desired = api.get(f"/v1/hosts/{host}/desired-state").json()
    vf = desired["vfs"][0]
    report = {"host": host, "desired_generation": desired["generation"], "ports": [{
        "port_id": vf["port_id"], "address": vf["address"], "phase": "attached",
        "status": "ACTIVE"}]}
    assert api.put(f"/v1/hosts/{host}/actual-state", json=report).is_success
    return dict(inst.json())


def test_every_timestamp_of_every_view_is_utc_ending_in_z(vlan_cluster: httpx.Client) -> None:
    api = vlan_cluster
    inst = _booted(api)
    host = inst["host"]
    documents = {
        "boot": inst,
        "hosts": api.get("/v1/hosts").json(),
        "host": api.get(f"/v1/hosts/{host}").json(),
        "instances": api.get("/v1/instances").json(),
        "instance": api.get(f"/v1/instances/{inst['id']}").json(),
        "ports": api.get("/v1/ports").json(),
        "networks": api.get("/v1/networks").json(),
        "allocations": api.get("/v1/allocations").json(),
    }
    found = {name: dict(_timestamps(doc)) for name, doc in documents.items()}
    wrong = {f"{name}{path}": value for name, stamps in found.items()
             for path, value in stamps.items() if not value.endswith("Z")}
    assert not wrong
    # and the views do hold timestamps of each kind (the test would pass on none)
    assert {".agent.last_seen", ".inventory_updated_at", ".agent_report.reported_at"} <= set(
        found["host"])
    assert "[0].actual.reported_at" in found["ports"] and "[0].created_at" in found["ports"]
    assert ".created_at" in found["instance"] and "[0].created_at" in found["networks"]
    assert "[0].created_at" in found["allocations"] and ".created_at" in found["boot"]


def test_an_instance_shows_the_numa_node_of_each_claim(vlan_cluster: httpx.Client) -> None:
    inst = _booted(vlan_cluster)
    node = vlan_cluster.get("/v1/allocations").json()[0]["numa_node"]
    assert node in (0, 1)
    assert [a["numa_node"] for a in inst["allocations"]] == [node]  # the boot's own answer
    shown = vlan_cluster.get(f"/v1/instances/{inst['id']}").json()
    assert [a["numa_node"] for a in shown["allocations"]] == [node]


def test_pkey_networks_show_the_pkey_in_hex(api: httpx.Client) -> None:
    made = api.post("/v1/networks", json={"name": "ib", "physical_network": "fabric",
                                          "segmentation": {"type": "pkey", "id": "0x0a01",
                                                           "full_membership": True}})
    assert made.status_code == 201, made.text
    seg = made.json()["segmentation"]
    assert seg == {"type": "pkey", "id": 0x0A01, "full_membership": True, "shared": False,
                   "pkey": "0x8a01", "partition": "0x0a01"}
