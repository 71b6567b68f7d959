"""The guest's documents served by the controller, from what the store holds (SQLite and
PostgreSQL): network_data.json valid against Nova's schema with the port's MAC, addresses,
routes, DNS and MTU; an InfiniBand VF published under its GUID's 6-byte form; meta_data.json
and the NoCloud documents carrying what the boot gave; and Debian's real cloud-init turning
the served network_data.json into the guest's netplan file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from vfkeeper.domain.guid import guid_to_cloud_init_mac

Inventory = Any
SCHEMA = json.loads((Path(__file__).parent.parent / "guest" /
                     "nova_network_data.schema.json").read_text())
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHz3 alice@laptop"
MAC = "fa:16:3e:00:00:42"


@pytest.fixture
def booted(api: httpx.Client, inventory: Inventory) -> dict[str, Any]:
    """An instance with an Ethernet port (IPv4 + static IPv6, jumbo MTU) and an InfiniBand port
    (IPv4), booted with a host name, a key and user data."""
    assert api.put("/v1/hosts/host-a/inventory",
                   json=inventory("host-a", pfs=((3, 0, False), (0x81, 0, True)), vfs=2)
                   ).is_success
    assert api.put("/v1/device-specs", json={"entries": [
        {"vendor_id": "15b3", "product_id": "1018", "physical_network": "physnet1"}]}
                   ).is_success
    for name, seg, mtu in (("eth", {"type": "vlan", "id": 100}, 9000),
                           ("ib", {"type": "pkey", "id": "0x0a01"}, 2044)):
        assert api.post("/v1/networks", json={"name": name, "physical_network": "physnet1",
                                              "segmentation": seg, "mtu": mtu}).is_success
    assert api.post("/v1/networks/eth/subnets", json={
        "cidr": "192.0.2.0/24", "dns_nameservers": ["192.0.2.53"],
        "host_routes": [{"destination": "198.51.100.0/24", "nexthop": "192.0.2.254"}]}
                    ).is_success
    assert api.post("/v1/networks/eth/subnets", json={"cidr": "2001:db8:10::/64"}).is_success
    assert api.post("/v1/networks/ib/subnets", json={"cidr": "10.20.0.0/16"}).is_success
    eth = api.post("/v1/ports", json={"network": "eth", "mac": MAC}).json()
    ib = api.post("/v1/ports", json={"network": "ib", "guid": "0x0002c90300a1b2c3"}).json()
    resp = api.post("/v1/instances", json={
        "name": "Web 1", "ports": [eth["id"], ib["id"]], "hostname": "web1.example.org",
        "public_keys": {"alice": KEY}, "user_data": "#cloud-config\nruncmd: [true]\n"})
    assert resp.status_code == 201, resp.text
    return {"instance": resp.json()["id"], "eth": eth, "ib": ib}


def _get(api: httpx.Client, booted: dict[str, Any], path: str) -> httpx.Response:
    resp = api.get(f"/v1/instances/{booted['instance']}/metadata/{path}")
    assert resp.status_code == 200, resp.text
    return resp


def test_network_data_is_valid_for_nova_and_carries_the_ports_settings(
        api: httpx.Client, booted: dict[str, Any]) -> None:
    resp = _get(api, booted, "openstack/latest/network_data.json")
    assert resp.headers["content-type"].startswith("application/json")
    doc = resp.json()
    jsonschema.validate(doc, SCHEMA)
    links = {link["vif_id"]: link for link in doc["links"]}
    eth, ib = booted["eth"], booted["ib"]
    assert links[eth["id"]]["ethernet_mac_address"] == MAC and links[eth["id"]]["mtu"] == 9000
    assert links[ib["id"]]["ethernet_mac_address"] == guid_to_cloud_init_mac(ib["guid"])
    assert links[ib["id"]]["mtu"] == 2044
    served = {n["ip_address"] for n in doc["networks"] if "ip_address" in n}
    allocated = {a["ip_address"] for p in (eth, ib) for a in p["fixed_ips"]}
    assert served == allocated and len(allocated) == 3
    v4 = next(n for n in doc["networks"] if n.get("ip_address", "").startswith("192.0.2."))
    assert {"network": "198.51.100.0", "netmask": "255.255.255.0",
            "gateway": "192.0.2.254"} in v4["routes"]
    assert {"type": "dns", "address": "192.0.2.53"} in doc["services"]


def test_meta_data_and_nocloud_carry_what_the_boot_gave(api: httpx.Client,
                                                         booted: dict[str, Any]) -> None:
    meta = _get(api, booted, "openstack/latest/meta_data.json").json()
    assert meta["uuid"] == booted["instance"] and meta["hostname"] == "web1.example.org"
    assert meta["public_keys"] == {"alice": KEY}
    nocloud_meta = yaml.safe_load(_get(api, booted, "nocloud/meta-data").text)
    assert nocloud_meta["instance-id"] == booted["instance"]
    assert _get(api, booted, "nocloud/user-data").text == "#cloud-config\nruncmd: [true]\n"
    config = yaml.safe_load(_get(api, booted, "nocloud/network-config").text)
    assert config["version"] == 2
    matched = [e["match"]["macaddress"] for e in config["ethernets"].values() if "match" in e]
    assert MAC in matched


def test_unknown_instance_is_404_and_unknown_document_is_422(api: httpx.Client) -> None:
    assert api.get("/v1/instances/nope/metadata/nocloud/meta-data").status_code == 404
    resp = api.get("/v1/instances/nope/metadata/nocloud/vendor-data")
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "invalid_input"


def test_debians_cloud_init_renders_the_served_network_data(
        api: httpx.Client, booted: dict[str, Any], tmp_path: Path) -> None:
    tool = shutil.which("cloud-init")
    if tool is None:
        if os.environ.get("VFKEEPER_GUEST_TOOLS_REQUIRED") == "1":
            pytest.fail("cloud-init is not installed (VFKEEPER_GUEST_TOOLS_REQUIRED=1)")
        pytest.skip("cloud-init is not installed: apt-get install cloud-init")
    source = tmp_path / "network_data.json"
    source.write_text(_get(api, booted, "openstack/latest/network_data.json").text)
    run = subprocess.run([tool, "devel", "net-convert", "-p", str(source), "-k",
                          "network_data.json", "-d", str(tmp_path / "out"), "-D", "debian",
                          "-O", "netplan", "-m", f"eth0,{MAC}",
                          # offline, net-convert cannot tell an IPoIB interface (it reads this
                          # host's /sys): name it by the 6-byte form the guest's would have
                          "-m", f"ib0,{guid_to_cloud_init_mac(booted['ib']['guid'])}"],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    netplan = yaml.safe_load((tmp_path / "out/etc/netplan/50-cloud-init.yaml").read_text())
    eth0 = netplan["network"]["ethernets"]["eth0"]
    assert eth0["match"] == {"macaddress": MAC} and eth0["mtu"] == 9000
    allocated = [a["ip_address"] for a in booted["eth"]["fixed_ips"]]
    assert eth0["addresses"] == [f"{allocated[0]}/24", f"{allocated[1]}/64"]


def test_a_whole_pf_is_published_under_the_pfs_own_mac(api: httpx.Client,
                                                        inventory: Inventory) -> None:
    assert api.put("/v1/hosts/host-a/inventory", json=inventory("host-a", vfs=2)).is_success
    assert api.put("/v1/device-specs", json={"entries": [
        {"vendor_id": "15b3", "physical_network": "physnet1"}]}).is_success
    assert api.post("/v1/networks", json={"name": "eth", "physical_network": "physnet1",
                                          "segmentation": {"type": "flat"}}).is_success
    assert api.post("/v1/networks/eth/subnets", json={"cidr": "192.0.2.0/24"}).is_success
    port = api.post("/v1/ports", json={"network": "eth", "vnic_type": "direct-physical"}).json()
    booted = api.post("/v1/instances", json={"name": "bare", "ports": [port["id"]]})
    assert booted.status_code == 201, booted.text
    pf = booted.json()["allocations"][0]["device"]
    macs = {d["address"]: d["netdevs"][0]["mac"] for d in inventory("host-a", vfs=2)["devices"]}
    doc = api.get(f"/v1/instances/{booted.json()['id']}/metadata/openstack/latest/"
                  "network_data.json").json()
    assert [link["ethernet_mac_address"] for link in doc["links"]] == [macs[pf]]
