"""What the edge refuses, case by case (issue 10, items 7 and 8), on SQLite and PostgreSQL: each
bad value is a 422 naming its field, and nothing is stored."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

Inventory = Callable[..., dict[str, Any]]
JSON = {"content-type": "application/json"}


def send(api: httpx.Client, method: str, url: str, body: Any = None) -> httpx.Response:
    """The body as ``json.dumps`` writes it: lone surrogates as escapes, NaN as ``NaN``."""
    data = None if body is None else json.dumps(body).encode()
    return api.request(method, url, content=data, headers=JSON)


def refused(resp: httpx.Response, field: str) -> dict[str, Any]:
    """The 422's error, after checking it names ``field`` (as ``details.field`` for our own
    errors, as the last part of a ``loc`` for request validation)."""
    assert resp.status_code == 422, resp.text
    err: dict[str, Any] = resp.json()["error"]
    assert err["code"] == "invalid_input"
    named = [err["details"].get("field")] + [
        ".".join(map(str, e["loc"][1:])) for e in err["details"].get("errors", [])
        if e.get("loc", [None])[0] in ("body", "path", "query")]
    assert field in named, (field, err)
    return err


# --- ports: addresses no VF can have -------------------------------------------------------------


@pytest.mark.parametrize("mac", ["01:00:5e:00:00:01", "33:33:00:00:00:01", "ff:ff:ff:ff:ff:ff",
                                 "FF-FF-FF-FF-FF-FF", "00:00:00:00:00:00", "03:00:00:00:00:01"])
def test_a_port_with_a_multicast_broadcast_or_zero_mac_is_refused(
    vlan_cluster: httpx.Client, mac: str
) -> None:
    err = refused(vlan_cluster.post("/v1/ports", json={"network": "n1", "mac": mac}), "mac")
    assert "unicast" in err["message"] or "all-zero" in err["message"]
    assert vlan_cluster.get("/v1/ports").json() == []


def test_a_unicast_mac_is_still_taken(vlan_cluster: httpx.Client) -> None:
    resp = vlan_cluster.post("/v1/ports", json={"network": "n1", "mac": "FA:16:3E:00:00:01"})
    assert resp.status_code == 201 and resp.json()["mac"] == "fa:16:3e:00:00:01"


@pytest.mark.parametrize("guid", ["0x0", "0000:0000:0000:0000", "0xffffffffffffffff"])
def test_a_port_with_a_zero_or_all_ones_guid_is_refused(api: httpx.Client, guid: str) -> None:
    api.post("/v1/networks", json={"name": "ib", "physical_network": "ib-a",
                                   "segmentation": {"type": "pkey", "id": 1}})
    refused(api.post("/v1/ports", json={"network": "ib", "guid": guid}), "guid")
    assert api.get("/v1/ports").json() == []


# --- path parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "url", "field"), [
    ("GET", "/v1/ports/%00", "port_id"),
    ("DELETE", "/v1/ports/%00", "port_id"),
    ("DELETE", "/v1/networks/a%00b", "key"),
    ("GET", "/v1/hosts/h%00", "name"),
    ("PATCH", "/v1/hosts/h%00", "name"),
    ("DELETE", "/v1/hosts/h%00/device-specs", "name"),
    ("DELETE", "/v1/instances/%00", "instance_id"),
    ("POST", "/v1/instances/%00/resume", "instance_id"),
    ("GET", "/v1/ports?network=%00", "network"),
    ("GET", f"/v1/ports/{'a' * 37}", "port_id"),
])
def test_a_path_or_query_parameter_with_a_nul_or_too_long_is_422(
    api: httpx.Client, method: str, url: str, field: str
) -> None:
    refused(send(api, method, url, {"enabled": True} if method == "PATCH" else None), field)


def test_a_well_formed_id_nobody_has_is_404(api: httpx.Client) -> None:
    resp = api.get("/v1/ports/00000000-0000-4000-8000-000000000000")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


# --- text and numbers in bodies -------------------------------------------------------------------


def _network(**kw: Any) -> dict[str, Any]:
    return {"name": "n2", "physical_network": "physnet1", "segmentation": {"type": "flat"}, **kw}


@pytest.mark.parametrize(("body", "field"), [
    (_network(name="a\x00b"), "name"),
    (_network(name="\ud800"), "name"),
    (_network(name="x" * 256), "name"),
    (_network(name="tab\there"), "name"),
    (_network(physical_network="p\x00"), "physical_network"),
    (_network(physical_network="p" * 256), "physical_network"),
])
def test_network_names_are_storable_text(vlan_cluster: httpx.Client, body: dict[str, Any],
                                         field: str) -> None:
    refused(send(vlan_cluster, "POST", "/v1/networks", body), field)
    assert [n["name"] for n in vlan_cluster.get("/v1/networks").json()] == ["n1"]


@pytest.mark.parametrize(("body", "field"), [
    ({"network": "n1", "name": "p\x00"}, "name"),
    ({"network": "n1", "name": "p" * 256}, "name"),
    ({"network": "n\x00"}, "network"),
    ({"network": "n1", "qos": {"max_kbps": 2**31}}, "qos.max_kbps"),
    ({"network": "n1", "qos": {"min_kbps": 2**63}}, "qos.min_kbps"),
    ({"network": "n1", "qos": {"max_kbps": -1}}, "qos.max_kbps"),
])
def test_port_fields_fit_their_columns(vlan_cluster: httpx.Client, body: dict[str, Any],
                                       field: str) -> None:
    refused(send(vlan_cluster, "POST", "/v1/ports", body), field)
    assert vlan_cluster.get("/v1/ports").json() == []


def test_the_largest_32_bit_rate_is_taken(vlan_cluster: httpx.Client) -> None:
    resp = vlan_cluster.post("/v1/ports", json={"network": "n1", "qos": {"max_kbps": 2**31 - 1}})
    assert resp.status_code == 201, resp.text


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "vm\x00", "ports": ["p"]}, "name"),
    ({"name": "vm", "ports": ["\x00"]}, "ports.0"),
    ({"name": "vm", "ports": ["p"], "host": "h" * 256}, "host"),
    ({"name": "vm", "ports": [f"p{i}" for i in range(257)]}, "ports"),
])
def test_instance_fields_fit_their_columns(vlan_cluster: httpx.Client, body: dict[str, Any],
                                           field: str) -> None:
    refused(send(vlan_cluster, "POST", "/v1/instances", body), field)
    assert vlan_cluster.get("/v1/instances").json() == []


@pytest.mark.parametrize("reason", ["\x00", "r" * 1025])
def test_a_disable_reason_is_storable_text(vlan_cluster: httpx.Client, reason: str) -> None:
    refused(send(vlan_cluster, "PATCH", "/v1/hosts/host-a",
                 {"enabled": False, "disabled_reason": reason}), "disabled_reason")
    assert vlan_cluster.get("/v1/hosts/host-a").json()["enabled"] is True


def test_a_multi_line_disable_reason_is_taken(vlan_cluster: httpx.Client) -> None:
    resp = vlan_cluster.patch("/v1/hosts/host-a",
                              json={"enabled": False, "disabled_reason": "BIOS\nupdate"})
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(("state", "field"), [
    ({"desired_generation": 2**31}, "desired_generation"),
    ({"desired_generation": 2**63}, "desired_generation"),
    ({"ports": [{"port_id": "p\x00", "address": "0000:03:00.1", "phase": "pending",
                 "status": "BUILD"}]}, "ports.0.port_id"),
    ({"ports": [{"port_id": "p", "address": "../../etc", "phase": "pending",
                 "status": "BUILD"}]}, "ports.0.address"),
    ({"releasing": [{"port_id": "p", "address": "0000:03:00.1", "domain": "vm\x00"}]},
     "releasing.0.domain"),
    ({"tasks": [{"task_id": "t", "instance_id": "i", "role": "target", "status": "ready",
                 "netdevs": {"p": "enp/3"}}]}, "tasks.0.netdevs.p"),
])
def test_an_actual_state_report_fits_its_columns(vlan_cluster: httpx.Client,
                                                 state: dict[str, Any], field: str) -> None:
    body = {"host": "host-a", "desired_generation": 1, **state}
    refused(send(vlan_cluster, "PUT", "/v1/hosts/host-a/actual-state", body), field)
    assert vlan_cluster.get("/v1/hosts/host-a").json()["agent_report"] is None


def test_an_agents_long_or_odd_error_is_cleaned_and_cut_not_refused(
    vlan_cluster: httpx.Client,
) -> None:
    api = vlan_cluster
    port_id = api.post("/v1/ports", json={"network": "n1"}).json()["id"]
    boot = api.post("/v1/instances", json={"name": "vm", "ports": [port_id], "host": "host-a"})
    address = boot.json()["allocations"][0]["device"]
    body = {"host": "host-a", "desired_generation": 1, "ports": [
        {"port_id": port_id, "address": address, "phase": "pending", "status": "ERROR",
         "last_error": "bad\x00\ud800" + "e" * 5000}]}
    resp = send(api, "PUT", "/v1/hosts/host-a/actual-state", body)
    assert resp.status_code == 200, resp.text
    error = api.get(f"/v1/ports/{port_id}").json()["actual"]["last_error"]
    assert error.startswith("bad\ufffd\ufffdeee") and error.endswith("…") and len(error) == 2048


# --- device specs ---------------------------------------------------------------------------------

SPEC = {"vendor_id": "15b3", "product_id": "1018"}


@pytest.mark.parametrize("physnet", [[], 123, None, "", "p\x00", "p" * 256, {"a": 1}, True])
def test_a_spec_whose_physical_network_is_no_network_name_is_refused(
    vlan_cluster: httpx.Client, physnet: Any
) -> None:
    before = vlan_cluster.get("/v1/device-specs").json()
    pools = vlan_cluster.get("/v1/pools").json()
    entries = [{**SPEC, "physical_network": "physnet1"}, {**SPEC, "physical_network": physnet}]
    err = refused(send(vlan_cluster, "PUT", "/v1/device-specs", {"entries": entries}),
                  "entries[1].physical_network")
    if physnet is None:
        assert "tunnelled" in err["message"] and "vfkeeper has no tunnelled" in err["message"]
    assert vlan_cluster.get("/v1/device-specs").json() == before  # all or nothing
    assert vlan_cluster.get("/v1/pools").json() == pools


def test_a_spec_without_a_physical_network_is_refused(vlan_cluster: httpx.Client) -> None:
    err = refused(vlan_cluster.put("/v1/hosts/host-a/device-specs", json={"entries": [SPEC]}),
                  "entries[0].physical_network")
    assert "missing" in err["message"]
    assert vlan_cluster.get("/v1/device-specs").json()["overrides"] == {}


@pytest.mark.parametrize(("entry", "field"), [
    ({**SPEC, "physical_network": "p", "x": "\ud800"}, "entries[0].x"),
    ({**SPEC, "physical_network": "p", "x": float("nan")}, "entries[0].x"),
    ({**SPEC, "physical_network": "p", "x": 2**64}, "entries[0].x"),
    ('{"vendor_id": "15b3", "physical_network": "p\\u0000"}', "entries[0].physical_network"),
    ('[{"vendor_id": "15b3", "physical_network": "p"}, {"physical_network": []}]',
     "entries[0][1].physical_network"),
    ("[" * 5000, "entries[0]"),
])
def test_spec_entries_hold_only_storable_values(vlan_cluster: httpx.Client, entry: Any,
                                                field: str) -> None:
    before = vlan_cluster.get("/v1/device-specs").json()
    refused(send(vlan_cluster, "PUT", "/v1/device-specs", {"entries": [entry]}), field)
    assert vlan_cluster.get("/v1/device-specs").json() == before
