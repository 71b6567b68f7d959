"""The rendered documents: valid against Nova's schema, and carrying what the guest needs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from guest_scenarios import ALL, IB_GUID, IB_GUID_6, MAC_A, UUID, dual_stack, infiniband

from vfkeeper.guest import nocloud, openstack
from vfkeeper.guest.documents import render
from vfkeeper.guest.models import Instance

SCHEMA = json.loads((Path(__file__).parent / "nova_network_data.schema.json").read_text())


def _validate(document: object) -> None:
    jsonschema.Draft7Validator(SCHEMA).validate(document)


@pytest.mark.parametrize("name", sorted(ALL))
def test_network_data_is_valid_against_novas_schema(name: str) -> None:
    _validate(json.loads(render(ALL[name]()).network_data_json))


def test_the_schema_check_is_live() -> None:
    """Nova's own IB link type fails the schema: the validation above can fail."""
    doc = openstack.network_data(infiniband())
    doc["links"][1]["type"] = "ib_hostdev"
    with pytest.raises(jsonschema.ValidationError):
        _validate(doc)


def test_dhcpv6_stateful_is_published_in_a_schema_type() -> None:
    inst = dual_stack()
    data = inst.model_dump()
    data["networks"][0]["subnets"][1]["ipv6_mode"] = "dhcpv6-stateful"
    doc = openstack.network_data(Instance(**data))
    _validate(doc)
    assert [n["type"] for n in doc["networks"]] == ["ipv4", "ipv6_dhcp"]
    assert nocloud.network_config(Instance(**data))["ethernets"]["vf0"]["dhcp6"] is True


def test_infiniband_link_publishes_the_six_byte_form_and_the_network_mtu() -> None:
    link = openstack.network_data(infiniband())["links"][1]
    assert link == {"id": "vf-port-ib", "vif_id": "port-ib", "type": "phy",
                    "ethernet_mac_address": IB_GUID_6, "mtu": 2044,
                    "vfkeeper_port_guid": IB_GUID}


def test_network_data_carries_addresses_routes_and_dns() -> None:
    doc = openstack.network_data(dual_stack())
    v4, v6 = doc["networks"]
    assert (v4["ip_address"], v4["netmask"]) == ("192.0.2.10", "255.255.255.0")
    assert v4["routes"] == [
        {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "192.0.2.1"},
        {"network": "198.51.100.0", "netmask": "255.255.255.0", "gateway": "192.0.2.254"}]
    assert (v6["type"], v6["ip_address"], v6["netmask"]) == (
        "ipv6", "2001:db8:10::10", "ffff:ffff:ffff:ffff::")
    assert doc["services"] == [{"type": "dns", "address": "192.0.2.53"},
                               {"type": "dns", "address": "2001:db8:10::53"}]
    assert doc["links"][0]["ethernet_mac_address"] == MAC_A


def test_meta_data_json() -> None:
    docs = render(dual_stack())
    meta = json.loads(docs.meta_data_json)
    assert (meta["uuid"], meta["name"], meta["hostname"]) == (UUID, "vm-1", "vm-1.example.org")
    assert meta["public_keys"] == {"ops": "ssh-ed25519 AAAAC3Nza ops@x"}
    assert docs.files("config-2")["openstack/latest/user_data"] == (
        b"#cloud-config\nhostname: vm-1\n")


def test_nocloud_meta_and_user_data() -> None:
    docs = render(infiniband())
    assert yaml.safe_load(docs.nocloud_meta_data) == {
        "instance-id": UUID, "local-hostname": "vm-1.example.org",
        "public-keys": ["ssh-ed25519 AAAAC3Nza ops@x"]}
    assert docs.nocloud_user_data == nocloud.EMPTY_USER_DATA
    assert "openstack/latest/user_data" not in docs.files("config-2")
    assert set(docs.files("nocloud")) == {"meta-data", "user-data", "network-config"}


def test_nocloud_network_config_for_infiniband_is_keyed_by_ipoib_name() -> None:
    cfg = yaml.safe_load(render(infiniband()).nocloud_network_config)
    assert cfg["version"] == 2
    assert cfg["ethernets"]["ib0"] == {
        "infiniband-mode": "datagram", "mtu": 2044, "dhcp4": False, "dhcp6": False,
        "addresses": ["10.20.0.5/16"]}
    assert cfg["ethernets"]["vf0"]["match"] == {"macaddress": MAC_A}
