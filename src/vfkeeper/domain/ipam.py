"""IP address management, pure: what a valid subnet is, which address a port gets next, and the
address SLAAC gives an interface.

A subnet is a CIDR on one network, IPv4 or IPv6, with an optional gateway, DNS servers, host
routes and allocation pools (ranges ports draw fixed addresses from). IPv6 subnets are
``static`` (vfkeeper allocates each port an address, as for IPv4) or ``slaac`` (the guest forms
its address from the router's /64 prefix and its interface identifier: RFC 4862; for Ethernet
the modified EUI-64 of the MAC, RFC 4291 appendix A; for IPoIB the port GUID with the
universal/local bit inverted, RFC 4391 §8).

The defaults follow Neutron's: the gateway is the first address of the CIDR; the allocation pool
is the rest of the CIDR, without the IPv4 network and broadcast addresses and without the
gateway.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Ipv6Mode = Literal["static", "slaac"]

SLAAC_PREFIX_LENGTH = 64
"""SLAAC forms a 64-bit interface identifier, so the prefix must be a /64 (RFC 4862 §5.5.3)."""


class IpamError(ValueError):
    """A subnet or address that cannot be: ``field`` names what was wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True)
class Pool:
    """An inclusive range of addresses of one IP version (held as integers, which compare)."""

    version: int
    first: int
    last: int

    @classmethod
    def of(cls, start: IpAddress, end: IpAddress) -> Pool:
        return cls(start.version, int(start), int(end))

    def holds(self, address: IpAddress) -> bool:
        return address.version == self.version and self.first <= int(address) <= self.last

    @property
    def start(self) -> IpAddress:
        return address_of(self.version, self.first)

    @property
    def end(self) -> IpAddress:
        return address_of(self.version, self.last)

    def size(self) -> int:
        return self.last - self.first + 1

    def text(self) -> str:
        return f"{self.start}-{self.end}"


def address_of(version: int, value: int) -> IpAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


@dataclass(frozen=True)
class Route:
    destination: IpNetwork
    nexthop: IpAddress


@dataclass(frozen=True)
class SubnetPlan:
    """A checked subnet, in canonical form."""

    cidr: IpNetwork
    gateway: IpAddress | None
    pools: tuple[Pool, ...]
    dns: tuple[IpAddress, ...]
    routes: tuple[Route, ...]
    ipv6_mode: Ipv6Mode | None

    @property
    def version(self) -> int:
        return self.cidr.version

    @property
    def allocates(self) -> bool:
        """Whether ports get a fixed address from vfkeeper (not SLAAC)."""
        return self.ipv6_mode != "slaac"


def parse_cidr(text: str, field: str = "cidr") -> IpNetwork:
    """``10.0.0.0/24`` or ``2001:db8::/64``: a network address with its prefix length."""
    if "/" not in text:
        raise IpamError(field, f"{text!r} has no prefix length; write it as a CIDR such as "
                               "10.0.0.0/24 or 2001:db8::/64")
    try:
        network = ipaddress.ip_network(text)
    except ValueError:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise IpamError(field, f"{text!r} is not a CIDR such as 10.0.0.0/24 or "
                                   "2001:db8::/64") from None
        raise IpamError(field, f"{text!r} has host bits set; the network is {loose}") from None
    if network.prefixlen >= network.max_prefixlen - 1:
        raise IpamError(field, f"{network} has no room for ports; give a larger network "
                               "(e.g. a /24 or a /64)")
    return network


def parse_address(text: str, field: str) -> IpAddress:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise IpamError(field, f"{text!r} is not an IPv4 or IPv6 address") from None


def _in(cidr: IpNetwork, address: IpAddress, field: str, what: str) -> None:
    if address.version != cidr.version:
        raise IpamError(field, f"{what} {address} is IPv{address.version}; subnet {cidr} is "
                               f"IPv{cidr.version}")
    if address not in cidr:
        raise IpamError(field, f"{what} {address} is outside the subnet {cidr}")


def _usable(cidr: IpNetwork) -> Pool:
    """The addresses a port may have: all but IPv4's network and broadcast addresses, and
    IPv6's subnet-router anycast address (the first, RFC 4291 §2.6.1)."""
    first, last = int(cidr.network_address) + 1, int(cidr.broadcast_address)
    return Pool(cidr.version, first, last - 1 if cidr.version == 4 else last)


def check_subnet(cidr_text: str, *, gateway: str | None = None, default_gateway: bool = True,
                 pools: Sequence[tuple[str, str]] = (), dns: Sequence[str] = (),
                 routes: Sequence[tuple[str, str]] = (), ipv6_mode: Ipv6Mode | None = None,
                 others: Iterable[str] = ()) -> SubnetPlan:
    """Check a subnet and fill in its defaults; ``others`` are the CIDRs of the network's other
    subnets, which it must not overlap. Raises :class:`IpamError` naming the field."""
    cidr = parse_cidr(cidr_text)
    mode = _mode(cidr, ipv6_mode)
    usable = _usable(cidr)
    gw: IpAddress | None = None
    if gateway is not None:
        gw = parse_address(gateway, "gateway")
        _in(cidr, gw, "gateway", "gateway")
        if not usable.holds(gw):
            raise IpamError("gateway", f"{gw} is the network's own address or its broadcast "
                                       "address; pick a host address")
    elif default_gateway:
        gw = usable.start
    checked_pools = _pools(cidr, usable, gw, pools)
    for other in others:
        if cidr.overlaps(ipaddress.ip_network(other)):
            raise IpamError("cidr", f"{cidr} overlaps subnet {other} of the same network; "
                                    "give a CIDR that does not")
    return SubnetPlan(
        cidr=cidr, gateway=gw, pools=checked_pools,
        dns=tuple(parse_address(d, f"dns_nameservers[{i}]") for i, d in enumerate(dns)),
        routes=tuple(_route(cidr, i, dest, hop) for i, (dest, hop) in enumerate(routes)),
        ipv6_mode=mode)


def _mode(cidr: IpNetwork, ipv6_mode: Ipv6Mode | None) -> Ipv6Mode | None:
    if cidr.version == 4:
        if ipv6_mode is not None:
            raise IpamError("ipv6_mode", f"{cidr} is IPv4; ipv6_mode applies to IPv6 subnets")
        return None
    mode = ipv6_mode or "static"
    if mode == "slaac" and cidr.prefixlen != SLAAC_PREFIX_LENGTH:
        raise IpamError("ipv6_mode", f"SLAAC needs a /64 prefix (the interface identifier is "
                                     f"64 bits); {cidr} is a /{cidr.prefixlen}")
    return mode


def _pools(cidr: IpNetwork, usable: Pool, gateway: IpAddress | None,
           given: Sequence[tuple[str, str]]) -> tuple[Pool, ...]:
    if not given:
        return tuple(_without(usable, gateway))
    out: list[Pool] = []
    for i, (start_text, end_text) in enumerate(given):
        field = f"allocation_pools[{i}]"
        start, end = parse_address(start_text, field), parse_address(end_text, field)
        for address in (start, end):
            _in(cidr, address, field, "pool address")
            if not usable.holds(address):
                raise IpamError(field, f"{address} is the network's own address or its "
                                       "broadcast address")
        if int(start) > int(end):
            raise IpamError(field, f"the pool starts at {start}, after its end {end}")
        pool = Pool.of(start, end)
        if gateway is not None and pool.holds(gateway):
            raise IpamError(field, f"the pool {pool.text()} holds the gateway {gateway}; "
                                   "leave the gateway out of the pools")
        for j, other in enumerate(out):
            if pool.first <= other.last and other.first <= pool.last:
                raise IpamError(field, f"the pool {pool.text()} overlaps "
                                       f"allocation_pools[{j}] {other.text()}")
        out.append(pool)
    return tuple(sorted(out, key=lambda p: p.first))


def _without(pool: Pool, address: IpAddress | None) -> list[Pool]:
    if address is None or not pool.holds(address):
        return [pool]
    n = int(address)
    parts = [Pool(pool.version, pool.first, n - 1)] if n > pool.first else []
    return parts + ([Pool(pool.version, n + 1, pool.last)] if n < pool.last else [])


def _route(cidr: IpNetwork, i: int, destination: str, nexthop: str) -> Route:
    field = f"host_routes[{i}]"
    try:
        dest = ipaddress.ip_network(destination)
    except ValueError:
        raise IpamError(field, f"destination {destination!r} is not a CIDR (0.0.0.0/0 for a "
                               "default route)") from None
    hop = parse_address(nexthop, field)
    for version, what in ((dest.version, f"destination {dest}"), (hop.version, f"nexthop {hop}")):
        if version != cidr.version:
            raise IpamError(field, f"{what} is IPv{version}; subnet {cidr} is IPv{cidr.version}")
    if hop not in cidr:
        raise IpamError(field, f"nexthop {hop} is outside the subnet {cidr}; the guest reaches a "
                               "next hop through this subnet, so give one inside it")
    return Route(dest, hop)


def check_requested(plan: SubnetPlan, text: str, field: str = "fixed_ips") -> IpAddress:
    """A fixed address a user asks for: inside the subnet and one a port may have."""
    address = parse_address(text, field)
    _in(plan.cidr, address, field, "address")
    if not _usable(plan.cidr).holds(address):
        raise IpamError(field, f"{address} is the network's own address or its broadcast address")
    if address == plan.gateway:
        raise IpamError(field, f"{address} is the subnet's gateway")
    return address


def first_free(plan: SubnetPlan, taken: Iterable[IpAddress]) -> IpAddress | None:
    """The lowest address of the allocation pools no port holds, or ``None`` when they are full.
    Walks past the taken addresses in order, so it costs O(taken), not O(pool size)."""
    used = sorted({int(a) for a in taken if a.version == plan.version})
    for pool in plan.pools:
        candidate = pool.first
        for n in used:
            if n > candidate:
                break
            if n == candidate:
                candidate += 1
        if candidate <= pool.last:
            return address_of(pool.version, candidate)
    return None


def random_candidate(plan: SubnetPlan, rng: random.Random) -> IpAddress | None:
    """An address drawn uniformly from the allocation pools (``None`` when they are empty), as
    Neutron's IPAM draws them: a new port costs one indexed look-up, not a scan of the
    subnet's taken addresses, and two controllers rarely draw the same one."""
    total = capacity(plan)
    if total == 0:
        return None
    offset = rng.randrange(total)
    for pool in plan.pools:
        if offset < pool.size():
            return address_of(pool.version, pool.first + offset)
        offset -= pool.size()
    return None  # unreachable: offset < total


def capacity(plan: SubnetPlan) -> int:
    return sum(p.size() for p in plan.pools)


def slaac_address(cidr: IpNetwork, *, mac: str | None = None,
                  guid: str | None = None) -> ipaddress.IPv6Address | None:
    """The address SLAAC forms on ``cidr`` (a /64) for an Ethernet MAC (modified EUI-64) or an
    InfiniBand port GUID (RFC 4391: the GUID with the universal/local bit inverted)."""
    if cidr.version != 6 or cidr.prefixlen != SLAAC_PREFIX_LENGTH:
        return None
    if mac is not None:
        octets = bytes.fromhex(mac.replace(":", ""))
        ident = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    elif guid is not None:
        octets = int(guid, 16).to_bytes(8, "big")
        ident = bytes([octets[0] ^ 0x02]) + octets[1:]
    else:
        return None
    return ipaddress.IPv6Address(int(cidr.network_address) | int.from_bytes(ident, "big"))
