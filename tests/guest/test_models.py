"""The guest input models refuse what the documents could not express, saying what to do."""

from __future__ import annotations

import pytest
from guest_scenarios import IB_GUID, IB_GUID_6, MAC_A, V4, dual_stack, infiniband
from pydantic import ValidationError

from vfkeeper.domain.guid import guid_to_cloud_init_mac, mac_to_guid_mlx5
from vfkeeper.guest.models import FixedAddress, Instance, Network, Port, Subnet


def test_ib_six_byte_form_is_guid_bytes_0_to_2_and_5_to_7() -> None:
    assert guid_to_cloud_init_mac(IB_GUID) == IB_GUID_6
    assert guid_to_cloud_init_mac("0x1122334455667788") == "11:22:33:66:77:88"


def test_ib_six_byte_form_of_an_mlx5_derived_guid_is_the_mac() -> None:
    assert guid_to_cloud_init_mac(mac_to_guid_mlx5(MAC_A)) == MAC_A


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"cidr": "192.0.2.0/24", "gateway": "198.51.100.1"}, "outside 192.0.2.0/24"),
    ({"cidr": "192.0.2.1/24"}, "host bits clear"),
    ({"cidr": "2001:db8::/56", "ipv6_mode": "slaac"}, "SLAAC needs a /64"),
    ({"cidr": "2001:db8::/64"}, "needs ipv6_mode"),
    ({"cidr": "192.0.2.0/24", "ipv6_mode": "slaac"}, "IPv6 subnets only"),
    ({"cidr": "192.0.2.0/24", "host_routes": [{"destination": "10.0.0.0/8",
                                               "nexthop": "203.0.113.1"}]}, "next hop inside"),
])
def test_bad_subnets_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Subnet(id="s", **kwargs)  # type: ignore[arg-type]


def _with_port(port: Port, subnets: tuple[Subnet, ...] = (V4,)) -> Instance:
    return Instance(
        uuid=dual_stack().uuid, name="vm", hostname="vm", ports=(port,),
        networks=(Network(id="n", name="n", subnets=subnets),))


def test_a_port_needs_an_address_in_each_static_subnet() -> None:
    with pytest.raises(ValidationError, match="no fixed address in subnet sub-v4"):
        _with_port(Port(id="p", network_id="n", mac=MAC_A))


@pytest.mark.parametrize(("ip", "message"), [
    ("203.0.113.5", "not a host address of subnet sub-v4"),
    ("192.0.2.255", "not a host address"),
    ("192.0.2.1", "gateway"),
])
def test_a_fixed_address_must_be_a_host_of_its_subnet(ip: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _with_port(Port(id="p", network_id="n", mac=MAC_A,
                        addresses=(FixedAddress(subnet_id="sub-v4", ip=ip),)))


def test_ports_kinds_are_checked() -> None:
    with pytest.raises(ValidationError, match="InfiniBand port needs port_guid"):
        Port(id="p", network_id="n", link_type="infiniband", mac=MAC_A)
    with pytest.raises(ValidationError, match="InfiniBand has no VLANs"):
        Port(id="p", network_id="n", link_type="infiniband", port_guid=IB_GUID, guest_vlan=5)
    with pytest.raises(ValidationError, match="non-zero GUID"):
        Port(id="p", network_id="n", link_type="infiniband", port_guid="0x0")
    with pytest.raises(ValidationError, match="unicast MAC"):
        Port(id="p", network_id="n", mac="01:00:5e:00:00:01")


def test_an_ib_port_whose_six_byte_form_is_an_ethernet_mac_is_refused() -> None:
    inst = infiniband()
    clash = inst.ports[0].model_copy(update={"mac": IB_GUID_6})
    with pytest.raises(ValidationError, match=f"both appear to the guest as {IB_GUID_6}"):
        Instance(**{**inst.model_dump(), "ports": [clash.model_dump(),
                                                  inst.ports[1].model_dump()]})


def test_two_ib_ports_differing_only_in_guid_bytes_3_and_4_are_refused() -> None:
    inst = infiniband()
    ib = inst.ports[1]
    twin = ib.model_copy(update={"id": "port-ib2", "port_guid": "0x0002c9ffffa1b2c3"})
    with pytest.raises(ValidationError, match="cannot tell them apart"):
        Instance(**{**inst.model_dump(), "ports": [ib.model_dump(), twin.model_dump()]})


def test_user_data_over_64_kib_is_refused() -> None:
    data = dual_stack().model_dump()
    data["user_data"] = "#cloud-config\n" + "x" * 65536
    with pytest.raises(ValidationError, match="over the 65536-byte limit"):
        Instance(**data)


def test_a_port_on_a_network_not_given_is_refused() -> None:
    data = dual_stack().model_dump()
    data["networks"] = []
    with pytest.raises(ValidationError, match="network net-a is not among"):
        Instance(**data)


def test_a_bad_hostname_is_refused() -> None:
    data = dual_stack().model_dump()
    data["hostname"] = "vm_1"
    with pytest.raises(ValidationError, match="not a host name"):
        Instance(**data)


def test_overlapping_subnets_on_one_network_are_refused() -> None:
    with pytest.raises(ValidationError, match="overlap"):
        Network(id="n", name="n", subnets=(V4, Subnet(id="s2", cidr="192.0.2.128/25")))
    with pytest.raises(ValidationError, match="two subnets have the id sub-v4"):
        Network(id="n", name="n", subnets=(V4, Subnet(id="sub-v4", cidr="10.0.0.0/8")))
    Network(id="n", name="n", subnets=(V4, Subnet(id="s6", cidr="2001:db8::/64",
                                                  ipv6_mode="slaac")))
