"""Instances the guest tests render: one per shape of VF configuration."""

from __future__ import annotations

from vfkeeper.guest.models import (
    FixedAddress,
    HostRoute,
    Instance,
    Network,
    Port,
    PublicKey,
    Subnet,
)

UUID = "3f2c1a9e-5b1d-4c8e-9a7f-2d6b0e4c1a11"
MAC_A = "fa:16:3e:10:00:0a"
MAC_B = "fa:16:3e:10:00:0b"
IB_GUID = "0x0002c90300a1b2c3"
IB_GUID_6 = "00:02:c9:a1:b2:c3"
IB_HWADDR = "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a1:b2:c3"
"""What the guest's IPoIB interface shows: QPN and flags, the subnet prefix, the port GUID."""

V4 = Subnet(id="sub-v4", cidr="192.0.2.0/24", gateway="192.0.2.1", dns_servers=("192.0.2.53",),
            host_routes=(HostRoute(destination="198.51.100.0/24", nexthop="192.0.2.254"),))
V6_STATIC = Subnet(id="sub-v6", cidr="2001:db8:10::/64", gateway="2001:db8:10::1",
                   ipv6_mode="static", dns_servers=("2001:db8:10::53",))
V6_SLAAC = Subnet(id="sub-slaac", cidr="2001:db8:20::/64", gateway="2001:db8:20::1",
                  ipv6_mode="slaac")
IB_V4 = Subnet(id="sub-ib", cidr="10.20.0.0/16")


def _instance(ports: tuple[Port, ...], networks: tuple[Network, ...],
              user_data: str | None = None) -> Instance:
    return Instance(uuid=UUID, name="vm-1", hostname="vm-1.example.org",
                    public_keys=(PublicKey(name="ops", data="ssh-ed25519 AAAAC3Nza ops@x"),),
                    user_data=user_data, ports=ports, networks=networks)


def dual_stack() -> Instance:
    """An Ethernet VF with a static IPv4 and a static IPv6 address, routes and DNS."""
    net = Network(id="net-a", name="tenant-a", mtu=9000, subnets=(V4, V6_STATIC))
    port = Port(id="port-a", network_id="net-a", mac=MAC_A, addresses=(
        FixedAddress(subnet_id="sub-v4", ip="192.0.2.10"),
        FixedAddress(subnet_id="sub-v6", ip="2001:db8:10::10")))
    return _instance((port,), (net,), user_data="#cloud-config\nhostname: vm-1\n")


def guest_vlan() -> Instance:
    """An Ethernet VF on which the guest tags VLAN 120 itself; the addresses are on the VLAN."""
    net = Network(id="net-v", name="trunk", mtu=1500, subnets=(V4,))
    port = Port(id="port-v", network_id="net-v", mac=MAC_A, guest_vlan=120,
                addresses=(FixedAddress(subnet_id="sub-v4", ip="192.0.2.20"),))
    return _instance((port,), (net,))


def slaac() -> Instance:
    """A second Ethernet VF on an IPv6-only SLAAC network, next to a static IPv4 one."""
    net_a = Network(id="net-a", name="tenant-a", mtu=1500, subnets=(V4,))
    net_s = Network(id="net-s", name="v6only", mtu=1500, subnets=(V6_SLAAC,))
    return _instance((
        Port(id="port-a", network_id="net-a", mac=MAC_A,
             addresses=(FixedAddress(subnet_id="sub-v4", ip="192.0.2.30"),)),
        Port(id="port-s", network_id="net-s", mac=MAC_B)), (net_a, net_s))


def infiniband() -> Instance:
    """An InfiniBand VF (IPoIB, datagram MTU 2044) next to an Ethernet VF."""
    net_a = Network(id="net-a", name="tenant-a", mtu=1500, subnets=(V4,))
    net_ib = Network(id="net-ib", name="ib-fabric", mtu=2044, subnets=(IB_V4,))
    return _instance((
        Port(id="port-a", network_id="net-a", mac=MAC_A,
             addresses=(FixedAddress(subnet_id="sub-v4", ip="192.0.2.40"),)),
        Port(id="port-ib", network_id="net-ib", link_type="infiniband", port_guid=IB_GUID,
             addresses=(FixedAddress(subnet_id="sub-ib", ip="10.20.0.5"),))), (net_a, net_ib))


ALL = {"dual_stack": dual_stack, "guest_vlan": guest_vlan, "slaac": slaac,
       "infiniband": infiniband}
