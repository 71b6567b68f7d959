"""OpenStack metadata: ``network_data.json`` and ``meta_data.json``, as Nova writes them.

``network_data.json`` validates against Nova's schema (``doc/api_schemas/network_data.json``,
a copy in ``tests/guest/``). Choices where Nova's own output would not, or where a VF needs
care (see docs/guest-configuration.md):

* An Ethernet VF's link is ``hw_veb`` (Nova's type for SR-IOV VFs); an InfiniBand VF's is
  ``phy`` — Nova's ``ib_hostdev`` is outside the schema's enum and makes cloud-init warn — and
  its ``ethernet_mac_address`` is the 6-byte form of its port GUID, which stock cloud-init
  matches against the guest's IPoIB interface and then configures with the full 20-byte
  address. ``vfkeeper_port_guid`` (ignored by cloud-init) keeps the full GUID.
* A ``guest_vlan`` becomes an ``l2_vlan`` link on top of the VF's link, carrying the addresses.
* IPv6 ``dhcpv6-stateful`` is published as ``ipv6_dhcp`` (the schema has no
  ``ipv6_dhcpv6-stateful``; cloud-init turns both into DHCPv6 with router advertisements on).
* A subnet's gateway becomes a default route; DNS servers are listed both on the network
  (``services``, as Nova does) and at the top level, which is what cloud-init reads.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from vfkeeper.guest.models import Instance, Network, Port, Subnet

JsonObject = dict[str, Any]


def link_id(port: Port) -> str:
    return f"vf-{port.id}"


def _link(port: Port, net: Network) -> JsonObject:
    link: JsonObject = {
        "id": link_id(port),
        "vif_id": port.id,
        "type": "phy" if port.link_type == "infiniband" else "hw_veb",
        "ethernet_mac_address": port.link_address,
        "mtu": net.mtu,
    }
    if port.link_type == "infiniband":
        link["vfkeeper_port_guid"] = port.port_guid
    return link


def _vlan_link(port: Port, net: Network) -> JsonObject:
    return {
        "id": f"{link_id(port)}.{port.guest_vlan}",
        "vif_id": port.id,
        "type": "vlan",
        "vlan_link": link_id(port),
        "vlan_id": port.guest_vlan,
        "vlan_mac_address": port.link_address,
        "mtu": net.mtu,
    }


def _route(network: str, gateway: str) -> JsonObject:
    net = ipaddress.ip_network(network)
    return {"network": str(net.network_address), "netmask": str(net.netmask),
            "gateway": gateway}


def _routes(subnet: Subnet) -> list[JsonObject]:
    routes = []
    if subnet.gateway is not None:
        routes.append(_route("0.0.0.0/0" if subnet.version == 4 else "::/0", subnet.gateway))
    routes.extend(_route(r.destination, r.nexthop) for r in subnet.host_routes)
    return routes


def _l3_type(subnet: Subnet) -> str:
    if subnet.version == 4:
        return "ipv4"
    return {"static": "ipv6", "slaac": "ipv6_slaac", "dhcpv6-stateful": "ipv6_dhcp"}[
        subnet.ipv6_mode or "static"]


def _l3(port: Port, net: Network, subnet: Subnet, link: str, index: int) -> JsonObject:
    entry: JsonObject = {
        "id": f"network{index}",
        "link": link,
        "network_id": net.id,
        "type": _l3_type(subnet),
    }
    fixed = next((a.ip for a in port.addresses if a.subnet_id == subnet.id), None)
    if fixed is not None and subnet.ipv6_mode != "slaac":
        entry["ip_address"] = fixed
        entry["netmask"] = str(subnet.network.netmask)
    routes = _routes(subnet)
    if routes:
        entry["routes"] = routes
    if subnet.dns_servers:
        entry["services"] = [{"type": "dns", "address": a} for a in subnet.dns_servers]
    return entry


def network_data(instance: Instance) -> JsonObject:
    """The instance's ``openstack/latest/network_data.json`` as a JSON object."""
    links: list[JsonObject] = []
    networks: list[JsonObject] = []
    dns: list[str] = []
    for port in instance.ports:
        net = instance.network(port.network_id)
        links.append(_link(port, net))
        l3_link = link_id(port)
        if port.guest_vlan is not None:
            vlan = _vlan_link(port, net)
            links.append(vlan)
            l3_link = vlan["id"]
        for subnet in net.subnets:
            networks.append(_l3(port, net, subnet, l3_link, len(networks)))
            dns.extend(a for a in subnet.dns_servers if a not in dns)
    return {"links": links, "networks": networks,
            "services": [{"type": "dns", "address": a} for a in dns]}


def meta_data(instance: Instance) -> JsonObject:
    """The instance's ``openstack/latest/meta_data.json`` (the keys cloud-init reads, as Nova
    fills them: ``public_keys`` by name, ``keys`` with their type)."""
    return {
        "uuid": instance.uuid,
        "name": instance.name,
        "hostname": instance.hostname,
        "launch_index": 0,
        "public_keys": {k.name: k.data for k in instance.public_keys},
        "keys": [{"name": k.name, "type": "ssh", "data": k.data} for k in instance.public_keys],
        "meta": {},
        "devices": [],
    }


def dumps(document: JsonObject) -> str:
    """A document as the metadata service and the config drive serve it: compact, as Nova
    writes it (and several times faster to encode than indented JSON)."""
    return json.dumps(document, separators=(",", ":"))
