"""Networks and ports: validation as specified, MAC/GUID honoured if free else 409."""

from __future__ import annotations

import httpx
import pytest


def _net(api: httpx.Client, name: str, seg: dict[str, object], physnet: str = "physnet1") -> str:
    resp = api.post("/v1/networks", json={"name": name, "physical_network": physnet,
                                          "segmentation": seg})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


@pytest.mark.parametrize("seg", [{"type": "flat"}, {"type": "vlan", "id": 1},
                                 {"type": "vlan", "id": 4094}, {"type": "pkey", "id": "0x7ffe"},
                                 {"type": "pkey", "id": 1, "full_membership": True}])
def test_valid_segmentations_are_accepted(api: httpx.Client, seg: dict[str, object]) -> None:
    _net(api, "n", seg)
    shown = api.get("/v1/networks/n").json()
    assert shown["segmentation"]["type"] == seg["type"]


@pytest.mark.parametrize(
    ("seg", "says"),
    [({"type": "vlan", "id": 0}, "outside 1-4094"), ({"type": "vlan", "id": 4095}, "1-4094"),
     ({"type": "vlan"}, "needs a segmentation id"), ({"type": "flat", "id": 5}, "flat"),
     ({"type": "pkey", "id": 0}, "0x0001-0x7ffe"),
     ({"type": "pkey", "id": "0x7fff"}, "0x7fff is the default partition"),
     ({"type": "pkey", "id": 0xFFFF}, "membership bit"),
     ({"type": "pkey", "id": "0x8001"}, "set full_membership=true"),
     ({"type": "vxlan", "id": 5}, "type")],
)
def test_bad_segmentations_are_422_saying_why(
    api: httpx.Client, seg: dict[str, object], says: str
) -> None:
    resp = api.post("/v1/networks", json={"name": "n", "physical_network": "p",
                                          "segmentation": seg})
    assert resp.status_code == 422
    assert says in resp.json()["error"]["message"]
    assert api.get("/v1/networks").json() == []


def test_pkey_view_shows_the_table_value_with_membership(api: httpx.Client) -> None:
    _net(api, "ib", {"type": "pkey", "id": 0x10, "full_membership": True})
    assert api.get("/v1/networks/ib").json()["segmentation"]["pkey"] == "0x8010"


def test_network_names_are_unique(api: httpx.Client) -> None:
    _net(api, "n", {"type": "flat"})
    resp = api.post("/v1/networks", json={"name": "n", "physical_network": "p",
                                          "segmentation": {"type": "flat"}})
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "already_exists"


def test_a_network_with_ports_cannot_be_deleted(api: httpx.Client) -> None:
    _net(api, "n", {"type": "vlan", "id": 100})
    port = api.post("/v1/ports", json={"network": "n"}).json()
    resp = api.delete("/v1/networks/n")
    assert resp.status_code == 409 and port["id"] in resp.json()["error"]["message"]
    assert api.delete(f"/v1/ports/{port['id']}").status_code == 204
    assert api.delete("/v1/networks/n").status_code == 204
    assert api.get("/v1/networks/n").status_code == 404


def test_a_requested_mac_is_honoured_if_free_else_409(api: httpx.Client) -> None:
    _net(api, "n", {"type": "vlan", "id": 100})
    first = api.post("/v1/ports", json={"network": "n", "mac": "FA-16-3E-00-00-01"})
    assert first.json()["mac"] == "fa:16:3e:00:00:01"
    again = api.post("/v1/ports", json={"network": "n", "mac": "fa:16:3e:00:00:01"})
    assert again.status_code == 409
    err = again.json()["error"]
    assert err["code"] == "address_taken" and err["details"]["port"] == first.json()["id"]
    assert len(api.get("/v1/ports").json()) == 1


def test_a_requested_guid_is_honoured_if_free_else_409(api: httpx.Client) -> None:
    _net(api, "ib", {"type": "pkey", "id": 0x10})
    first = api.post("/v1/ports", json={"network": "ib", "guid": "00:02:c9:03:00:a1:b2:c3"})
    assert first.json()["guid"] == "0x0002c90300a1b2c3"
    assert api.post("/v1/ports", json={"network": "ib", "guid": "0x0002c90300a1b2c3"}
                    ).status_code == 409


@pytest.mark.parametrize(
    ("net_seg", "port", "field"),
    [({"type": "pkey", "id": 5}, {"mac": "02:00:00:00:00:01"}, "mac"),
     ({"type": "vlan", "id": 5}, {"guid": "0x1"}, "guid"),
     ({"type": "pkey", "id": 5}, {"vnic_type": "macvtap"}, "vnic_type"),
     ({"type": "pkey", "id": 5}, {"guid": "0xffffffffffffffff"}, "all-ones"),
     ({"type": "pkey", "id": 5}, {"guid": "0x0"}, "non-zero"),
     ({"type": "flat"}, {"vnic_type": "direct-physical", "mac": "02:00:00:00:00:01"}, "PF"),
     ({"type": "flat"}, {"qos": {"min_kbps": 10, "max_kbps": 5}}, "above max_kbps"),
     ({"type": "flat"}, {"vnic_type": "baremetal"}, "vnic_type")],
)
def test_bad_ports_are_422_and_nothing_is_written(
    api: httpx.Client, net_seg: dict[str, object], port: dict[str, object], field: str
) -> None:
    _net(api, "n", net_seg)
    resp = api.post("/v1/ports", json={"network": "n", **port})
    assert resp.status_code == 422, resp.text
    assert field in resp.text
    assert api.get("/v1/ports").json() == []


def test_a_port_on_an_unknown_network_is_404(api: httpx.Client) -> None:
    resp = api.post("/v1/ports", json={"network": "nope"})
    assert resp.status_code == 404 and resp.json()["error"]["details"]["kind"] == "network"


def test_ports_show_neutron_binding_fields_unbound(api: httpx.Client) -> None:
    _net(api, "n", {"type": "vlan", "id": 100})
    port = api.post("/v1/ports", json={"network": "n", "trusted": True}).json()
    shown = api.get(f"/v1/ports/{port['id']}").json()
    assert shown["binding:host_id"] is None and shown["binding:profile"] == {}
    assert shown["binding:vnic_type"] == "direct" and shown["trusted"] is True
    assert shown["status"] == "DOWN"
