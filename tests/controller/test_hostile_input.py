"""Hostile values into every write endpoint, on SQLite and on PostgreSQL: never a 5xx.

A property test (Hypothesis, derandomized so every run sends the same requests): each example
takes one write endpoint's valid request and spoils one thing in it — a path parameter, one
value anywhere in the body (NUL bytes, lone surrogates, integers beyond 32 and 64 bits, NaN,
over-long strings, wrong types, deep nesting), an extra key, or the whole body. Whatever comes
back must not be a 5xx, and every 4xx must carry the one error envelope.

Bodies are sent as the bytes ``json.dumps`` writes (lone surrogates as ``\\ud800`` escapes, NaN
as ``NaN``), as a client that does not check its strings would send them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

Inventory = Callable[..., dict[str, Any]]
EXAMPLES = 1000
"""Per database: about 15 s for both on a 2-core machine."""
SPECS = [{"vendor_id": "15b3", "product_id": "1018", "physical_network": "physnet1"}]

NASTY_TEXT = ["\x00", "a\x00b", "\ud800", "x\udfffy", "\udc80", "x" * 256, "y" * 2049,
              "z" * 5000, "", " ", "\n", "\t\x1b[31m", "../../etc/passwd", "%00", "ÿ", "\u202e",
              "0000:03:00.9", "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "00:00:00:00:00:00",
              "0x0", "0xffffffffffffffff", "h\x00st-a"]
NASTY_NUMBERS: list[Any] = [2**31, 2**31 - 1, -(2**31) - 1, 2**63, -(2**63) - 1, 2**64, 10**30,
                            -1, 0, 1.5, -0.0, math.nan, math.inf, -math.inf, 1e308, True, False]


def _deep(depth: int, kind: type) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = [value] if kind is list else {"a": value}
    return value


NASTY_SHAPES: list[Any] = [None, [], {}, [None], {"": None}, {"\x00": 1}, {"\ud800": 1},
                           _deep(40, list), _deep(40, dict), _deep(900, list),
                           list(range(2000)), ["x"] * 300]

hostile = st.one_of(
    st.sampled_from([*NASTY_TEXT, *NASTY_NUMBERS, *NASTY_SHAPES]),
    st.one_of(st.text(max_size=40), st.integers(), st.floats(),
              st.lists(st.one_of(st.text(max_size=5), st.integers()), max_size=4)),
)
"""Half the curated values above, half whatever Hypothesis makes of the types."""


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    params: dict[str, str]
    body: Any = None


@dataclass(frozen=True)
class Cluster:
    host: str
    network: str
    port: str
    free_port: str
    instance: str
    inventory: dict[str, Any]
    subnet: str


def _actual_state(cluster: Cluster) -> dict[str, Any]:
    return {
        "host": cluster.host, "desired_generation": 3,
        "ports": [{"port_id": cluster.port, "address": "0000:03:00.1", "phase": "attached",
                   "status": "ACTIVE", "last_error": None, "waiting_for": None,
                   "skipped": ["link_state"],
                   "observed": {"domain": "vm", "domain_state": "running", "attached_live": True,
                                "attached_config": True, "mac": "fa:16:3e:00:00:01", "vlan": 100,
                                "port_guid": None}}],
        "foreign": [{"address": "0000:03:00.2", "domain": "other", "where": "live",
                     "device": "hostdev 0000:03:00.2"}],
        "vanished": [{"port_id": cluster.port, "address": "0000:03:00.3"}],
        "releasing": [{"port_id": cluster.port, "address": "0000:03:00.4", "domain": "vm",
                       "waiting_for": "the guest"}],
        "tasks": [{"task_id": "t1", "instance_id": cluster.instance, "role": "source",
                   "status": "waiting", "detail": "x", "netdevs": {cluster.port: "enp3s0v1"}}],
    }


def endpoints(c: Cluster) -> list[Endpoint]:
    host, inst = {"host": c.host}, {"instance": c.instance}
    both = {"instance": c.instance, "port": c.port}
    specs = {"entries": [*SPECS, '{"address": "0000:81:00.*", "physical_network": "p2"}']}
    return [
        Endpoint("PUT", "/v1/hosts/{host}/inventory", host, c.inventory),
        Endpoint("POST", "/v1/hosts/{host}/heartbeat", host,
                 {"migration_uri": "qemu+tcp://host-a/system"}),
        Endpoint("PUT", "/v1/hosts/{host}/actual-state", host, _actual_state(c)),
        Endpoint("PATCH", "/v1/hosts/{host}", host, {"enabled": True, "disabled_reason": "ok"}),
        Endpoint("POST", "/v1/networks", {}, {
            "name": "n2", "physical_network": "physnet1", "mtu": 9000,
            "segmentation": {"type": "vlan", "id": 7, "full_membership": False}}),
        Endpoint("DELETE", "/v1/networks/{network}", {"network": "n-unused"}),
        Endpoint("POST", "/v1/ports", {}, {
            "network": c.network, "name": "p", "vnic_type": "direct", "mac": "fa:16:3e:00:00:09",
            "trusted": False, "port_security": True, "link_state": "auto",
            "qos": {"min_kbps": 1000, "max_kbps": 2000},
            "fixed_ips": [{"ip_address": "192.0.2.77", "subnet_id": c.subnet}]}),
        Endpoint("DELETE", "/v1/ports/{port}", {"port": c.free_port}),
        Endpoint("POST", "/v1/networks/{network}/subnets", {"network": c.network}, {
            "cidr": "2001:db8:1::/64", "name": "v6", "ip_version": 6,
            "gateway_ip": "2001:db8:1::1", "dns_nameservers": ["2001:db8::53"],
            "host_routes": [{"destination": "2001:db8:2::/64", "nexthop": "2001:db8:1::fe"}],
            "allocation_pools": [{"start": "2001:db8:1::10", "end": "2001:db8:1::20"}],
            "ipv6_mode": "static"}),
        Endpoint("DELETE", "/v1/networks/{network}/subnets/{subnet}",
                 {"network": "n-unused", "subnet": "unused"}),
        Endpoint("POST", "/v1/instances", {}, {
            "name": "vm2", "ports": [c.free_port], "numa_policy": "legacy", "host": c.host,
            "hostname": "vm2.example", "user_data": "#cloud-config\n",
            "public_keys": {"k": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHz3 a@b"}}),
        Endpoint("DELETE", "/v1/instances/{instance}", inst),
        Endpoint("POST", "/v1/instances/{instance}/ports", inst, {"port_id": c.free_port}),
        Endpoint("DELETE", "/v1/instances/{instance}/ports/{port}", both),
        Endpoint("POST", "/v1/instances/{instance}/migrate", inst, {"host": "host-b"}),
        Endpoint("POST", "/v1/instances/{instance}/abort", inst),
        Endpoint("POST", "/v1/instances/{instance}/suspend", inst, {"detach_devices": True}),
        Endpoint("POST", "/v1/instances/{instance}/resume", inst),
        Endpoint("PUT", "/v1/device-specs", {}, specs),
        Endpoint("PUT", "/v1/hosts/{host}/device-specs", host, specs),
        Endpoint("DELETE", "/v1/hosts/{host}/device-specs", host),
    ]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every place in a JSON value a hostile value can go (the value itself included)."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _paths(item, (*prefix, index))


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[head] = _replace(copy[head], tuple(rest), new)
    return copy


@st.composite
def spoiled_requests(draw: st.DrawFn, table: list[Endpoint]) -> tuple[str, str, bytes | None]:
    """One endpoint's valid request with one thing spoiled: (method, URL, body bytes)."""
    ep = draw(st.sampled_from(table))
    params, body = dict(ep.params), ep.body
    where = draw(st.sampled_from(["path", "value", "key", "body"]) if params else
                 st.sampled_from(["value", "key", "body"]))
    if where == "path":
        name = draw(st.sampled_from(sorted(params)))
        params[name] = draw(st.one_of(st.sampled_from(NASTY_TEXT), st.text(max_size=20)))
    elif where == "value" and body is not None:
        body = _replace(body, draw(st.sampled_from(list(_paths(body)))), draw(hostile))
    elif where == "key" and isinstance(body, dict):
        body = {**body, draw(st.sampled_from(NASTY_TEXT)): draw(hostile)}
    else:
        body = draw(hostile)
    url = ep.path.format(**{k: quote(v.encode("utf-8", "surrogatepass"), safe="")
                            for k, v in params.items()})
    data = None if body is None else json.dumps(body).encode()
    return ep.method, url, data


@pytest.fixture
def cluster(api: httpx.Client, inventory: Inventory) -> Cluster:
    doc = inventory("host-a", vfs=2)
    for name in ("host-a", "host-b"):
        assert api.put(f"/v1/hosts/{name}/inventory", json=inventory(name, vfs=2)).is_success
    assert api.put("/v1/device-specs", json={"entries": SPECS}).is_success
    net = api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                         "segmentation": {"type": "vlan", "id": 100}}).json()
    assert api.post("/v1/networks", json={"name": "n-unused", "physical_network": "x",
                                          "segmentation": {"type": "flat"}}).is_success
    subnet = api.post("/v1/networks/n1/subnets", json={"cidr": "192.0.2.0/24"}).json()["id"]
    assert api.post("/v1/networks/n-unused/subnets",
                    json={"cidr": "198.51.100.0/24", "name": "unused"}).is_success
    ports = [api.post("/v1/ports", json={"network": "n1"}).json()["id"] for _ in range(2)]
    inst = api.post("/v1/instances", json={"name": "vm", "ports": ports[:1], "host": "host-a"})
    assert inst.status_code == 201, inst.text
    return Cluster("host-a", net["id"], ports[0], ports[1], inst.json()["id"], doc, subnet)


def assert_answered(resp: httpx.Response) -> None:
    assert resp.status_code < 500, (resp.request.method, str(resp.request.url), resp.text)
    if resp.status_code >= 400:
        body = resp.json()
        assert set(body) == {"error"}, resp.text
        assert set(body["error"]) == {"code", "message", "details"}, resp.text
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]


def test_no_hostile_request_is_answered_with_a_5xx(api: httpx.Client, cluster: Cluster) -> None:
    table = endpoints(cluster)
    headers = {"content-type": "application/json"}

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(request=spoiled_requests(table))
    def check(request: tuple[str, str, bytes | None]) -> None:
        method, url, data = request
        assert_answered(api.request(method, url, content=data, headers=headers))

    check()
