"""Subnets and the ports' fixed addresses, through the API on SQLite and PostgreSQL: defaults,
refusals naming the field, an asked-for address honoured (409 when taken, 400 when outside),
exhaustion naming the subnet, SLAAC addresses formed from the MAC, and a subnet in use kept."""

from __future__ import annotations

import ipaddress
import threading
from typing import Any

import httpx
import pytest


def _net(api: httpx.Client, name: str = "tenant", seg: dict[str, Any] | None = None) -> str:
    resp = api.post("/v1/networks", json={"name": name, "physical_network": "physnet1",
                                          "segmentation": seg or {"type": "vlan", "id": 100}})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _subnet(api: httpx.Client, network: str = "tenant", **body: Any) -> dict[str, Any]:
    resp = api.post(f"/v1/networks/{network}/subnets", json=body)
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def _port(api: httpx.Client, network: str = "tenant", **body: Any) -> httpx.Response:
    return api.post("/v1/ports", json={"network": network, **body})


def test_a_subnet_gets_neutrons_defaults_and_is_listed(api: httpx.Client) -> None:
    _net(api)
    made = _subnet(api, cidr="192.0.2.0/24", name="v4", dns_nameservers=["192.0.2.53"])
    assert made["gateway_ip"] == "192.0.2.1" and made["ip_version"] == 4
    assert made["allocation_pools"] == [{"start": "192.0.2.2", "end": "192.0.2.254"}]
    assert made["capacity"] == 253 and made["allocated"] == 0
    assert [s["id"] for s in api.get("/v1/networks/tenant/subnets").json()] == [made["id"]]
    assert api.get("/v1/networks/tenant/subnets/v4").json()["cidr"] == "192.0.2.0/24"


def test_ports_get_a_free_address_in_every_allocating_subnet(api: httpx.Client) -> None:
    _net(api)
    v4 = _subnet(api, cidr="192.0.2.0/24", allocation_pools=[
        {"start": "192.0.2.100", "end": "192.0.2.199"}])
    v6 = _subnet(api, cidr="2001:db8:5::/64", ipv6_mode="static")
    made = [_port(api).json() for _ in range(6)]
    for port in made:
        assert [a["subnet_id"] for a in port["fixed_ips"]] == [v4["id"], v6["id"]]
        v4_address = ipaddress.ip_address(port["fixed_ips"][0]["ip_address"])
        v6_address = ipaddress.ip_address(port["fixed_ips"][1]["ip_address"])
        assert ipaddress.ip_address("192.0.2.100") <= v4_address <= \
            ipaddress.ip_address("192.0.2.199")
        assert v6_address in ipaddress.ip_network("2001:db8:5::/64")
        assert v6_address != ipaddress.ip_address("2001:db8:5::1")  # the gateway
        assert api.get(f"/v1/ports/{port['id']}").json()["fixed_ips"] == port["fixed_ips"]
    for i in (0, 1):
        assert len({p["fixed_ips"][i]["ip_address"] for p in made}) == 6
    assert api.get("/v1/networks/tenant/subnets").json()[0]["allocated"] == 6


def test_a_full_subnet_hands_out_a_deleted_ports_address_again(api: httpx.Client) -> None:
    _net(api)
    _subnet(api, cidr="192.0.2.0/29")
    made = [_port(api).json() for _ in range(5)]
    assert sorted(p["fixed_ips"][0]["ip_address"] for p in made) == [
        f"192.0.2.{n}" for n in range(2, 7)]
    freed = made[2]["fixed_ips"][0]["ip_address"]
    assert api.delete(f"/v1/ports/{made[2]['id']}").status_code == 204
    assert _port(api).json()["fixed_ips"][0]["ip_address"] == freed


def test_an_asked_for_address_is_honoured_409_when_taken_400_when_outside(
        api: httpx.Client) -> None:
    _net(api)
    _subnet(api, cidr="192.0.2.0/24")
    held = _port(api, fixed_ips=[{"ip_address": "192.0.2.77"}])
    assert held.status_code == 201
    assert held.json()["fixed_ips"][0]["ip_address"] == "192.0.2.77"
    taken = _port(api, fixed_ips=[{"ip_address": "192.0.2.77"}])
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "address_taken"
    assert held.json()["id"] in taken.json()["error"]["message"]
    outside = _port(api, fixed_ips=[{"ip_address": "198.51.100.7"}])
    assert outside.status_code == 400
    assert outside.json()["error"]["code"] == "address_outside_subnet"
    assert "192.0.2.0/24" in outside.json()["error"]["message"]
    gateway = _port(api, fixed_ips=[{"ip_address": "192.0.2.1"}])
    assert gateway.status_code == 422 and "gateway" in gateway.json()["error"]["message"]
    assert len(api.get("/v1/ports").json()) == 1  # nothing half-written


def test_exhaustion_is_409_naming_the_subnet_and_writes_no_port(api: httpx.Client) -> None:
    _net(api)
    _subnet(api, cidr="192.0.2.0/29", name="tiny")
    for _ in range(5):
        assert _port(api).status_code == 201
    full = _port(api)
    assert full.status_code == 409 and full.json()["error"]["code"] == "subnet_exhausted"
    assert "tiny" in full.json()["error"]["message"] and "all 5" in full.json()["error"]["message"]
    assert len(api.get("/v1/ports").json()) == 5


@pytest.mark.parametrize(("body", "field", "says"), [
    ({"cidr": "192.0.2.0/24", "gateway_ip": "198.51.100.1"}, "gateway", "outside the subnet"),
    ({"cidr": "2001:db8::/56", "ipv6_mode": "slaac"}, "ipv6_mode", "needs a /64"),
    ({"cidr": "192.0.2.9/24"}, "cidr", "host bits"),
    ({"cidr": "192.0.2.0/24", "ip_version": 6}, "ip_version", "is IPv4"),
    ({"cidr": "192.0.2.0/24", "allocation_pools": [{"start": "192.0.2.1", "end": "192.0.2.9"}]},
     "allocation_pools[0]", "gateway"),
])
def test_bad_subnets_are_422_naming_the_field_and_nothing_is_written(
        api: httpx.Client, body: dict[str, Any], field: str, says: str) -> None:
    _net(api)
    resp = api.post("/v1/networks/tenant/subnets", json=body)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["details"]["field"] == field and says in error["message"]
    assert api.get("/v1/networks/tenant/subnets").json() == []


def test_overlapping_subnets_on_one_network_are_refused_on_two_they_are_not(
        api: httpx.Client) -> None:
    _net(api)
    _net(api, "other", {"type": "vlan", "id": 200})
    _subnet(api, cidr="10.0.0.0/16")
    overlap = api.post("/v1/networks/tenant/subnets", json={"cidr": "10.0.5.0/24"})
    assert overlap.status_code == 422 and "overlaps subnet 10.0.0.0/16" in overlap.text
    _subnet(api, "other", cidr="10.0.5.0/24")  # another network may reuse the range


def test_slaac_addresses_are_formed_from_the_mac_and_asking_for_one_is_refused(
        api: httpx.Client) -> None:
    _net(api)
    slaac = _subnet(api, cidr="2001:db8:7::/64", ipv6_mode="slaac")
    assert slaac["capacity"] is None
    port = _port(api, mac="52:54:00:12:34:56").json()
    assert port["fixed_ips"] == [{"subnet_id": slaac["id"], "mode": "slaac",
                                  "ip_address": "2001:db8:7:0:5054:ff:fe12:3456"}]
    asked = _port(api, fixed_ips=[{"ip_address": "2001:db8:7::9"}])
    assert asked.status_code == 422 and "SLAAC" in asked.json()["error"]["message"]


def test_a_subnet_with_ports_cannot_be_deleted_and_names_them(api: httpx.Client) -> None:
    _net(api)
    subnet = _subnet(api, cidr="192.0.2.0/24")
    port = _port(api).json()
    resp = api.delete(f"/v1/networks/tenant/subnets/{subnet['id']}")
    assert resp.status_code == 409 and port["id"] in resp.json()["error"]["message"]
    assert api.delete(f"/v1/ports/{port['id']}").status_code == 204
    assert api.delete(f"/v1/networks/tenant/subnets/{subnet['id']}").status_code == 204
    assert api.get("/v1/networks/tenant/subnets").json() == []


def test_unknown_network_and_subnet_are_404(api: httpx.Client) -> None:
    assert api.get("/v1/networks/nope/subnets").status_code == 404
    _net(api)
    assert api.get("/v1/networks/tenant/subnets/nope").status_code == 404
    assert api.delete("/v1/networks/tenant/subnets/nope").status_code == 404


def test_a_network_with_subnets_and_no_ports_deletes_its_subnets(api: httpx.Client) -> None:
    _net(api)
    _subnet(api, cidr="192.0.2.0/24")
    assert api.delete("/v1/networks/tenant").status_code == 204
    _net(api)
    assert api.get("/v1/networks/tenant/subnets").json() == []


def test_concurrent_port_creations_never_share_an_address(api: httpx.Client) -> None:
    _net(api)
    _subnet(api, cidr="192.0.2.0/26")
    results: list[httpx.Response] = []
    lock = threading.Lock()

    def create() -> None:
        resp = _port(api)
        with lock:
            results.append(resp)

    threads = [threading.Thread(target=create) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.status_code for r in results] == [201] * 16
    addresses = [r.json()["fixed_ips"][0]["ip_address"] for r in results]
    assert len(set(addresses)) == 16
