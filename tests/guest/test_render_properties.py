"""Property test: every instance the models accept renders documents Nova's schema accepts,
whose NoCloud YAML reads back as what was built, with one link per port and each port's
addresses where they belong (Hypothesis, derandomized: every run checks the same instances)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import jsonschema
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vfkeeper.guest import nocloud, openstack
from vfkeeper.guest.documents import render
from vfkeeper.guest.models import FixedAddress, Instance, Network, Port, Subnet

SCHEMA = json.loads((Path(__file__).parent / "nova_network_data.schema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


@st.composite
def networks(draw: st.DrawFn, index: int) -> Network:
    subnets = []
    if draw(st.booleans()):
        cidr = ipaddress.ip_network(f"10.{index}.0.0/{draw(st.integers(16, 28))}")
        subnets.append(Subnet(id=f"n{index}-v4", cidr=str(cidr),
                              gateway=draw(st.sampled_from([None, str(cidr[1])])),
                              dns_servers=tuple(draw(st.lists(st.sampled_from(
                                  ["192.0.2.53", "198.51.100.53"]), max_size=2, unique=True)))))
    if draw(st.booleans()):
        mode = draw(st.sampled_from(["slaac", "static", "dhcpv6-stateful"]))
        prefix = 64 if mode == "slaac" else draw(st.sampled_from([64, 80, 120]))
        cidr = ipaddress.ip_network(f"2001:db8:{index:x}::/{prefix}")
        subnets.append(Subnet(id=f"n{index}-v6", cidr=str(cidr), ipv6_mode=mode,
                              gateway=draw(st.sampled_from([None, str(cidr[1])]))))
    return Network(id=f"net{index}", name=f"net-{index}", mtu=draw(st.sampled_from(
        [1500, 2044, 4092, 9000])), subnets=tuple(subnets))


@st.composite
def instances(draw: st.DrawFn) -> Instance:
    nets = [draw(networks(i)) for i in range(draw(st.integers(1, 3)))]
    ports = []
    for p in range(draw(st.integers(0, 4))):
        net = draw(st.sampled_from(nets))
        addresses = tuple(
            FixedAddress(subnet_id=s.id, ip=str(s.network[10 + p]))
            for s in net.subnets if s.needs_address or draw(st.booleans()))
        if draw(st.booleans()):
            ports.append(Port(id=f"p{p}", network_id=net.id, link_type="infiniband",
                              port_guid=f"0x0002c90300{p:06x}", addresses=addresses))
        else:
            ports.append(Port(id=f"p{p}", network_id=net.id, mac=f"fa:16:3e:00:01:{p:02x}",
                              guest_vlan=draw(st.sampled_from([None, 100 + p])),
                              addresses=addresses))
    return Instance(uuid="3f2c1a9e-5b1d-4c8e-9a7f-2d6b0e4c1a11", name="vm", hostname="vm",
                    ports=tuple(ports), networks=tuple(nets))


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(instances())
def test_every_accepted_instance_renders_valid_documents(instance: Instance) -> None:
    docs = render(instance)
    nd = json.loads(docs.network_data_json)
    VALIDATOR.validate(nd)
    assert nd == openstack.network_data(instance)
    assert yaml.safe_load(docs.nocloud_network_config) == nocloud.network_config(instance)
    phys = [link for link in nd["links"] if link["type"] != "vlan"]
    assert [link["vif_id"] for link in phys] == [p.id for p in instance.ports]
    assert len({link["ethernet_mac_address"] for link in phys}) == len(phys)
    published = {(n["network_id"], n.get("ip_address")) for n in nd["networks"]}
    for port in instance.ports:
        net = instance.network(port.network_id)
        for fixed in port.addresses:
            subnet = net.subnet(fixed.subnet_id)
            assert subnet is not None
            if subnet.ipv6_mode != "slaac":
                assert (net.id, fixed.ip) in published
    for link in phys:
        assert link["mtu"] == instance.network(
            next(p for p in instance.ports if p.id == link["vif_id"]).network_id).mtu
