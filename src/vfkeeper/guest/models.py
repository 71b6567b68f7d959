"""What the guest renderers take: one instance with its ports, their networks and subnets.

Plain, frozen pydantic models, independent of the store, so the controller (or a test, or the
benchmark) builds them from whatever it holds. Every rule the rendered documents rely on is
checked here, once: a model that validates renders without errors. A bad value raises
``pydantic.ValidationError`` whose message says what was wrong and what to give instead.
"""

from __future__ import annotations

import ipaddress
import re
import uuid as uuid_mod
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from vfkeeper.domain.guid import guid_to_cloud_init_mac, parse_assignable_mac, parse_guid

USER_DATA_MAX_BYTES = 64 * 1024
"""Nova's limit for user data (65535 bytes base64-decoded is the API's; 64 KiB is the issue's)."""

IPV6_MODES = ("slaac", "static", "dhcpv6-stateful")

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_HOSTNAME_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)", re.IGNORECASE)


def _mac(value: str) -> str:
    return parse_assignable_mac(value)


def _guid(value: str) -> str:
    return parse_guid(value, allow_zero=False, allow_clear=False).canonical


def _uuid(value: str) -> str:
    try:
        return str(uuid_mod.UUID(value))
    except ValueError:
        raise ValueError(f"{value!r} is not a UUID (e.g. 3f2c1a9e-...-...)") from None


def _hostname(value: str) -> str:
    labels = value.split(".")
    if len(value) > 253 or not all(_HOSTNAME_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"{value!r} is not a host name: use dot-separated labels of 1-63 letters, digits "
            "and inner hyphens (RFC 1123), at most 253 characters")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a network in CIDR form with its host bits clear "
                         f"(e.g. 192.0.2.0/24 or 2001:db8::/64): {exc}") from None


@lru_cache(maxsize=4096)
def _parsed_network(cidr: str) -> IpNetwork:
    """Parsed once per CIDR: rendering asks for a subnet's network many times (a cache here
    rather than on the model, which ``model_copy`` would carry over stale)."""
    return ipaddress.ip_network(cidr)


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 or IPv6 address") from None


Mac = Annotated[str, AfterValidator(_mac)]
PortGuid = Annotated[str, AfterValidator(_guid)]
Uuid = Annotated[str, AfterValidator(_uuid)]
Cidr = Annotated[str, AfterValidator(_cidr)]
Ip = Annotated[str, AfterValidator(_ip)]
Hostname = Annotated[str, AfterValidator(_hostname)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class HostRoute(_Frozen):
    """A route the guest adds through this subnet: ``destination`` via ``nexthop``."""

    destination: Cidr
    nexthop: Ip


class Subnet(_Frozen):
    """An IPv4 or IPv6 subnet of a network.

    ``ipv6_mode`` (IPv6 only): ``static`` (the port's fixed address, router advertisements
    ignored), ``slaac`` (the guest forms its address from the prefix, which must be a /64) or
    ``dhcpv6-stateful`` (a DHCPv6 server on the network gives the address).
    """

    id: str = Field(min_length=1)
    cidr: Cidr
    gateway: Ip | None = None
    dns_servers: tuple[Ip, ...] = ()
    host_routes: tuple[HostRoute, ...] = ()
    ipv6_mode: Literal["slaac", "static", "dhcpv6-stateful"] | None = None

    @property
    def network(self) -> IpNetwork:
        return _parsed_network(self.cidr)

    @property
    def version(self) -> int:
        return self.network.version

    @property
    def needs_address(self) -> bool:
        """Whether a port on this subnet must have a fixed address to render."""
        return self.version == 4 or self.ipv6_mode == "static"

    @model_validator(mode="after")
    def _consistent(self) -> Subnet:
        net = self.network
        if net.version == 4 and self.ipv6_mode is not None:
            raise ValueError(f"subnet {self.id}: ipv6_mode applies to IPv6 subnets only; "
                             f"{self.cidr} is IPv4")
        if net.version == 6 and self.ipv6_mode is None:
            raise ValueError(f"subnet {self.id}: an IPv6 subnet needs ipv6_mode, one of "
                             + ", ".join(IPV6_MODES))
        if self.ipv6_mode == "slaac" and net.prefixlen != 64:
            raise ValueError(f"subnet {self.id}: SLAAC needs a /64 prefix, {self.cidr} is "
                             f"/{net.prefixlen}; use a /64 or ipv6_mode static")
        if self.gateway is not None and ipaddress.ip_address(self.gateway) not in net:
            raise ValueError(f"subnet {self.id}: gateway {self.gateway} is outside {self.cidr}")
        for route in self.host_routes:
            dest = ipaddress.ip_network(route.destination)
            hop = ipaddress.ip_address(route.nexthop)
            if dest.version != net.version or hop not in net:
                raise ValueError(
                    f"subnet {self.id}: host route {route.destination} via {route.nexthop} "
                    f"needs an IPv{net.version} destination and a next hop inside {self.cidr}")
        return self


class Network(_Frozen):
    """A network the instance's ports are on: its MTU and subnets."""

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    mtu: int = Field(default=1500, ge=68, le=65520)
    subnets: tuple[Subnet, ...] = ()

    def subnet(self, subnet_id: str) -> Subnet | None:
        return next((s for s in self.subnets if s.id == subnet_id), None)

    @model_validator(mode="after")
    def _distinct_subnets(self) -> Network:
        for i, a in enumerate(self.subnets):
            for b in self.subnets[:i]:
                if a.id == b.id:
                    raise ValueError(f"network {self.name}: two subnets have the id {a.id}")
                if a.version == b.version and a.network.overlaps(b.network):
                    raise ValueError(f"network {self.name}: subnets {b.id} ({b.cidr}) and "
                                     f"{a.id} ({a.cidr}) overlap; give them disjoint ranges")
        return self


class FixedAddress(_Frozen):
    subnet_id: str = Field(min_length=1)
    ip: Ip


class Port(_Frozen):
    """One VF of the instance.

    An Ethernet port has its ``mac``; an InfiniBand port its ``port_guid`` (the guest finds it
    by the GUID's 6-byte form, :func:`vfkeeper.domain.guid.guid_to_cloud_init_mac`) and, for the
    NoCloud network-config, the IPoIB interface name the guest kernel gives it (``ib0`` …; see
    docs/guest-configuration.md). ``guest_vlan`` is a VLAN the *guest* tags itself on the VF
    (an 802.1Q interface on top of it); leave it unset for a VLAN network, whose tag the agent
    programs on the VF, so the guest sees untagged frames.
    """

    id: str = Field(min_length=1)
    network_id: str = Field(min_length=1)
    link_type: Literal["ethernet", "infiniband"] = "ethernet"
    mac: Mac | None = None
    port_guid: PortGuid | None = None
    guest_vlan: int | None = Field(default=None, ge=1, le=4094)
    ib_ifname: str | None = Field(default=None, pattern=r"^[a-zA-Z0-9_.-]{1,15}$")
    addresses: tuple[FixedAddress, ...] = ()

    @property
    def link_address(self) -> str:
        """The 6-byte address network_data.json publishes for this port."""
        if self.link_type == "infiniband":
            assert self.port_guid is not None
            return guid_to_cloud_init_mac(self.port_guid)
        assert self.mac is not None
        return self.mac

    @model_validator(mode="after")
    def _kind(self) -> Port:
        if self.link_type == "ethernet":
            if self.mac is None or self.port_guid is not None:
                raise ValueError(f"port {self.id}: an Ethernet port needs mac and no port_guid")
            if self.ib_ifname is not None:
                raise ValueError(f"port {self.id}: ib_ifname applies to InfiniBand ports only")
        else:
            if self.port_guid is None or self.mac is not None:
                raise ValueError(f"port {self.id}: an InfiniBand port needs port_guid and no mac")
            if self.guest_vlan is not None:
                raise ValueError(f"port {self.id}: InfiniBand has no VLANs; the partition "
                                 "(PKey) is programmed on the VF, drop guest_vlan")
        return self


class PublicKey(_Frozen):
    name: str = Field(min_length=1, max_length=255)
    data: str = Field(min_length=1, max_length=16384)


class Instance(_Frozen):
    """An instance with everything its guest documents are made of."""

    uuid: Uuid
    name: str = Field(min_length=1, max_length=255)
    hostname: Hostname
    public_keys: tuple[PublicKey, ...] = ()
    user_data: str | None = None
    ports: tuple[Port, ...] = ()
    networks: tuple[Network, ...] = ()

    def network(self, network_id: str) -> Network:
        return next(n for n in self.networks if n.id == network_id)

    @model_validator(mode="after")
    def _consistent(self) -> Instance:
        if self.user_data is not None and len(self.user_data.encode()) > USER_DATA_MAX_BYTES:
            raise ValueError(f"user data is {len(self.user_data.encode())} bytes, over the "
                             f"{USER_DATA_MAX_BYTES}-byte limit; fetch the rest from the guest")
        names = [k.name for k in self.public_keys]
        if len(set(names)) != len(names):
            raise ValueError("public key names must be unique within an instance")
        networks = {n.id: n for n in self.networks}
        for port in self.ports:
            net = networks.get(port.network_id)
            if net is None:
                raise ValueError(f"port {port.id}: network {port.network_id} is not among the "
                                 "instance's networks; pass it in networks")
            _check_addresses(port, net)
        _check_link_addresses(self.ports)
        return self


def _check_addresses(port: Port, net: Network) -> None:
    seen: set[str] = set()
    for fixed in port.addresses:
        subnet = net.subnet(fixed.subnet_id)
        if subnet is None:
            raise ValueError(f"port {port.id}: subnet {fixed.subnet_id} is not a subnet of "
                             f"network {net.name}")
        if fixed.subnet_id in seen:
            raise ValueError(f"port {port.id}: two addresses in subnet {fixed.subnet_id}; "
                             "give one per subnet")
        seen.add(fixed.subnet_id)
        ip = ipaddress.ip_address(fixed.ip)
        reserved = {subnet.network.network_address}  # IPv6: the subnet-router anycast
        if subnet.version == 4 and subnet.network.prefixlen < 31:
            reserved.add(subnet.network.broadcast_address)
        if ip not in subnet.network or ip in reserved:
            raise ValueError(f"port {port.id}: {fixed.ip} is not a host address of subnet "
                             f"{subnet.id} ({subnet.cidr})")
        if subnet.gateway is not None and ip == ipaddress.ip_address(subnet.gateway):
            raise ValueError(f"port {port.id}: {fixed.ip} is subnet {subnet.id}'s gateway")
    for subnet in net.subnets:
        if subnet.needs_address and subnet.id not in seen:
            raise ValueError(f"port {port.id}: no fixed address in subnet {subnet.id} "
                             f"({subnet.cidr}) of network {net.name}; allocate one first")


def _check_link_addresses(ports: tuple[Port, ...]) -> None:
    """cloud-init indexes interfaces by one 6-byte address; two ports sharing one would make it
    configure one VF twice and the other not at all (an Ethernet MAC wins over an IPoIB
    interface's 6-byte form), so refuse it here."""
    owners: dict[str, Port] = {}
    ib_names: dict[str, Port] = {}
    for i, port in enumerate(ports):
        addr = port.link_address
        other = owners.get(addr)
        if other is not None:
            raise ValueError(
                f"ports {other.id} and {port.id} both appear to the guest as {addr} (an "
                "InfiniBand port appears as its GUID's bytes 0-2 and 5-7), so cloud-init cannot "
                "tell them apart; give one of them another MAC or GUID")
        owners[addr] = port
        if port.link_type == "infiniband":
            name = ib_ifname(port, ports[:i])
            if name in ib_names:
                raise ValueError(f"ports {ib_names[name].id} and {port.id} both have the IPoIB "
                                 f"interface name {name}")
            ib_names[name] = port


def ib_ifname(port: Port, before: tuple[Port, ...]) -> str:
    """``port.ib_ifname``, or ``ibN`` where N counts the InfiniBand ports before it."""
    if port.ib_ifname is not None:
        return port.ib_ifname
    return f"ib{sum(1 for p in before if p.link_type == 'infiniband')}"
