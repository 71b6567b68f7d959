"""The domain's IP address management: what a valid subnet is, the lowest free address, and
the addresses SLAAC forms (checked against the RFCs' own examples and the kernel's rule)."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vfkeeper.domain import ipam


def test_defaults_follow_neutron_gateway_first_pool_the_rest() -> None:
    plan = ipam.check_subnet("10.0.0.0/29")
    assert str(plan.gateway) == "10.0.0.1"
    assert [p.text() for p in plan.pools] == ["10.0.0.2-10.0.0.6"]  # no network, broadcast
    assert ipam.capacity(plan) == 5
    assert plan.ipv6_mode is None and plan.allocates


def test_no_gateway_leaves_the_whole_usable_range_to_ports() -> None:
    plan = ipam.check_subnet("10.0.0.0/29", default_gateway=False)
    assert plan.gateway is None and [p.text() for p in plan.pools] == ["10.0.0.1-10.0.0.6"]


def test_a_gateway_in_the_middle_splits_the_default_pool() -> None:
    plan = ipam.check_subnet("10.0.0.0/28", gateway="10.0.0.5")
    assert [p.text() for p in plan.pools] == ["10.0.0.1-10.0.0.4", "10.0.0.6-10.0.0.14"]


def test_ipv6_defaults_to_static_and_keeps_the_subnet_router_anycast_address_out() -> None:
    plan = ipam.check_subnet("2001:db8::/120")
    assert plan.ipv6_mode == "static" and str(plan.gateway) == "2001:db8::1"
    assert plan.pools[0].text() == "2001:db8::2-2001:db8::ff"


@pytest.mark.parametrize(("kwargs", "field", "says"), [
    ({"cidr_text": "10.0.0.1/24"}, "cidr", "host bits set; the network is 10.0.0.0/24"),
    ({"cidr_text": "10.0.0.0"}, "cidr", "no prefix length"),
    ({"cidr_text": "banana/24"}, "cidr", "not a CIDR"),
    ({"cidr_text": "10.0.0.0/31"}, "cidr", "no room for ports"),
    ({"cidr_text": "10.0.0.0/24", "gateway": "10.0.1.1"}, "gateway", "outside the subnet"),
    ({"cidr_text": "10.0.0.0/24", "gateway": "2001:db8::1"}, "gateway", "is IPv6"),
    ({"cidr_text": "10.0.0.0/24", "gateway": "10.0.0.255"}, "gateway", "broadcast"),
    ({"cidr_text": "2001:db8::/48", "ipv6_mode": "slaac"}, "ipv6_mode", "needs a /64"),
    ({"cidr_text": "10.0.0.0/24", "ipv6_mode": "slaac"}, "ipv6_mode", "is IPv4"),
    ({"cidr_text": "10.0.0.0/24", "pools": [("10.0.0.9", "10.0.0.3")]},
     "allocation_pools[0]", "after its end"),
    ({"cidr_text": "10.0.0.0/24", "pools": [("10.0.0.1", "10.0.0.3")]},
     "allocation_pools[0]", "holds the gateway"),
    ({"cidr_text": "10.0.0.0/24", "pools": [("10.0.0.2", "10.0.1.3")]},
     "allocation_pools[0]", "outside the subnet"),
    ({"cidr_text": "10.0.0.0/24", "pools": [("10.0.0.2", "10.0.0.9"), ("10.0.0.9", "10.0.0.20")]},
     "allocation_pools[1]", "overlaps allocation_pools[0]"),
    ({"cidr_text": "10.0.0.0/24", "dns": ["8.8.8"]}, "dns_nameservers[0]", "not an IPv4"),
    ({"cidr_text": "10.0.0.0/24", "routes": [("10.1.0.0/16", "2001:db8::1")]},
     "host_routes[0]", "nexthop 2001:db8::1 is IPv6"),
    ({"cidr_text": "10.0.0.0/24", "routes": [("10.1.0.1/16", "10.0.0.1")]},
     "host_routes[0]", "not a CIDR"),
    ({"cidr_text": "10.0.0.0/24", "routes": [("10.1.0.0/16", "10.9.0.1")]},
     "host_routes[0]", "outside the subnet"),
    ({"cidr_text": "10.0.0.0/24", "others": ["10.0.0.128/25"]}, "cidr", "overlaps subnet"),
])
def test_each_bad_subnet_is_refused_naming_its_field(kwargs: dict[str, object], field: str,
                                                      says: str) -> None:
    with pytest.raises(ipam.IpamError) as caught:
        ipam.check_subnet(**kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field and says in caught.value.message


def test_subnets_of_other_versions_or_apart_do_not_overlap() -> None:
    ipam.check_subnet("10.0.1.0/24", others=["10.0.0.0/24", "2001:db8::/64"])


def test_first_free_skips_taken_addresses_and_ends_with_none() -> None:
    plan = ipam.check_subnet("10.0.0.0/29", pools=[("10.0.0.2", "10.0.0.3"),
                                                   ("10.0.0.5", "10.0.0.6")])
    taken: list[ipam.IpAddress] = []
    got = []
    while (free := ipam.first_free(plan, taken)) is not None:
        got.append(str(free))
        taken.append(free)
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.5", "10.0.0.6"]


@given(st.sets(st.integers(min_value=0, max_value=40), max_size=41))
def test_first_free_is_the_lowest_pool_address_not_taken(taken_offsets: set[int]) -> None:
    plan = ipam.check_subnet("10.9.0.0/26", pools=[("10.9.0.10", "10.9.0.30")])
    base = int(ipaddress.IPv4Address("10.9.0.0"))
    taken = [ipaddress.IPv4Address(base + 10 + n) for n in taken_offsets]
    expected = next((ipaddress.IPv4Address(base + 10 + n) for n in range(21)
                     if n not in taken_offsets), None)
    assert ipam.first_free(plan, taken) == expected


def test_a_requested_address_must_be_a_port_address_of_the_subnet() -> None:
    plan = ipam.check_subnet("10.0.0.0/24")
    assert str(ipam.check_requested(plan, "10.0.0.77")) == "10.0.0.77"
    for bad, says in (("10.0.0.1", "gateway"), ("10.0.0.255", "broadcast"),
                      ("10.0.0.0", "network's own"), ("10.0.1.5", "outside")):
        with pytest.raises(ipam.IpamError, match=says):
            ipam.check_requested(plan, bad)


def test_slaac_from_a_mac_is_modified_eui64() -> None:
    # RFC 4291 appendix A's rule, as the kernel applies it: 52:54:00:12:34:56 →
    # 5054:00ff:fe12:3456 (universal/local bit inverted, ff:fe in the middle).
    formed = ipam.slaac_address(ipaddress.IPv6Network("2001:db8:1::/64"), mac="52:54:00:12:34:56")
    assert formed == ipaddress.IPv6Address("2001:db8:1::5054:ff:fe12:3456")


def test_slaac_from_an_infiniband_guid_inverts_the_universal_local_bit() -> None:
    # RFC 4391 §8: the interface identifier is the EUI-64 port GUID, u/l bit inverted.
    formed = ipam.slaac_address(ipaddress.IPv6Network("fd00::/64"), guid="0x0002c90300a1b2c3")
    assert formed == ipaddress.IPv6Address("fd00::202:c903:a1:b2c3")


def test_slaac_needs_a_slash_64_and_an_address_to_form_from() -> None:
    assert ipam.slaac_address(ipaddress.IPv6Network("fd00::/80"), mac="52:54:00:12:34:56") is None
    assert ipam.slaac_address(ipaddress.IPv6Network("fd00::/64")) is None


def test_random_candidates_come_from_the_pools_only_and_reach_all_of_them() -> None:
    plan = ipam.check_subnet("10.0.0.0/24", pools=[("10.0.0.10", "10.0.0.12"),
                                                   ("10.0.0.200", "10.0.0.201")])
    rng = random.Random(7)
    drawn = {str(ipam.random_candidate(plan, rng)) for _ in range(200)}
    assert drawn == {"10.0.0.10", "10.0.0.11", "10.0.0.12", "10.0.0.200", "10.0.0.201"}
