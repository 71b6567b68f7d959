"""An 802.1Qbh port (a Cisco VIC VF tagged with a ``profileid`` by its device spec) reaches the
agent with its port profile: the desired state carries ``profileid`` and the agent can build the
libvirt device (:class:`vfkeeper.domain.vif.BoundVif`, which refuses 802.1qbh without one)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from vfkeeper.agent.desired import HostIndex, bound_vif
from vfkeeper.domain.desired_state import DesiredPort
from vfkeeper.domain.vif import BoundVif, VifType, render_interface

PROFILE = "vm-fex-tenant"


def test_an_802_1qbh_port_carries_its_profileid_to_the_agent(
    api: httpx.Client, inventory: Callable[..., dict[str, Any]]
) -> None:
    assert api.put("/v1/hosts/vic-1/inventory", json=inventory("vic-1", vfs=2)).is_success
    api.put("/v1/device-specs", json={"entries": [
        {"vendor_id": "15b3", "product_id": "1018", "physical_network": "physnet1",
         "profileid": PROFILE}]})
    api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                   "segmentation": {"type": "vlan", "id": 100}})
    port_id = api.post("/v1/ports", json={"network": "n1", "vnic_type": "direct"}).json()["id"]

    resp = api.post("/v1/instances", json={"name": "vm", "ports": [port_id]})

    assert resp.status_code == 201, resp.text
    port = api.get(f"/v1/ports/{port_id}").json()
    assert port["binding:vif_type"] == "802.1qbh"
    assert port["binding:vif_details"]["profileid"] == PROFILE
    [vf] = api.get("/v1/hosts/vic-1/desired-state").json()["vfs"]
    assert (vf["vif_type"], vf["profileid"], vf["port_id"]) == ("802.1qbh", PROFILE, port_id)
    vif = bound_vif(DesiredPort.model_validate(vf), HostIndex({}, frozenset()))
    assert isinstance(vif, BoundVif)
    assert (vif.vif_type, vif.profileid, vif.mac) == (VifType.QBH, PROFILE, port["mac"])
    assert f'<parameters profileid="{PROFILE}"' in render_interface(vif)


def test_a_port_without_a_profile_has_no_profileid(
    api: httpx.Client, inventory: Callable[..., dict[str, Any]]
) -> None:
    assert api.put("/v1/hosts/h1/inventory", json=inventory("h1", vfs=2)).is_success
    api.put("/v1/device-specs", json={"entries": [
        {"vendor_id": "15b3", "product_id": "1018", "physical_network": "physnet1"}]})
    api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                   "segmentation": {"type": "vlan", "id": 100}})
    port_id = api.post("/v1/ports", json={"network": "n1", "vnic_type": "direct"}).json()["id"]
    assert api.post("/v1/instances", json={"name": "vm", "ports": [port_id]}).status_code == 201

    [vf] = api.get("/v1/hosts/h1/desired-state").json()["vfs"]

    assert (vf["vif_type"], vf["profileid"]) == ("hw_veb", None)
    vif = bound_vif(DesiredPort.model_validate(vf), HostIndex({}, frozenset()))
    assert vif.profileid is None
