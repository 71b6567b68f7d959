"""Subnets of a network, and the fixed IP addresses of its ports.

A port gets one address per subnet of its network when it is created: the one it asks for
(``fixed_ips``: 409 if another port holds it, 400 if no subnet holds it) or a free one of the
subnet's allocation pools, drawn at random as Neutron's IPAM does (after a few taken draws, the
lowest free one from a scan; 409 ``subnet_exhausted`` when there is none). ``port_addresses``
is unique per (subnet, address) and a port creation locks its network's subnets, so neither two
requests nor two controllers can hand one address out twice. A SLAAC subnet allocates nothing:
the guest forms its address from the prefix and its MAC (or InfiniBand GUID), and the port
shows that address once its MAC or GUID is known.

The rules of a valid subnet are the domain's (:mod:`vfkeeper.domain.ipam`).
"""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import (
    AddressOutsideSubnetError,
    AddressTakenError,
    InUseError,
    InvalidInputError,
    NotFoundError,
    SubnetExhaustedError,
)
from vfkeeper.controller.fields import text_of
from vfkeeper.controller.networks import find_network
from vfkeeper.domain import ipam
from vfkeeper.store.models import Network, Port
from vfkeeper.store.subnet_models import PortAddress, Subnet

IpText = Annotated[str, text_of(PortAddress.ip_address)]
CidrText = Annotated[str, text_of(Subnet.cidr)]
SubnetName = Annotated[str, text_of(Subnet.name)]
SubnetKey = Annotated[str, text_of(Subnet.name)]
"""A subnet's id or its name."""
MAX_ITEMS = 64
RANDOM_DRAWS = 8
"""Random draws before a port creation scans the subnet for its lowest free address."""


class HostRoute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    destination: CidrText
    nexthop: IpText


class AllocationPool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: IpText
    end: IpText


class SubnetCreate(BaseModel):
    """Neutron's subnet fields. ``gateway_ip`` left out: the CIDR's first address; ``null``: no
    gateway. ``allocation_pools`` left out: the whole CIDR but the gateway."""

    model_config = ConfigDict(extra="forbid")

    cidr: CidrText
    name: SubnetName | None = None
    ip_version: Literal[4, 6] | None = None
    gateway_ip: IpText | None = None
    dns_nameservers: list[IpText] = Field(default_factory=list, max_length=MAX_ITEMS)
    host_routes: list[HostRoute] = Field(default_factory=list, max_length=MAX_ITEMS)
    allocation_pools: list[AllocationPool] = Field(default_factory=list, max_length=MAX_ITEMS)
    ipv6_mode: ipam.Ipv6Mode | None = Field(
        default=None, description="IPv6 only: static (default; vfkeeper allocates addresses) "
                                  "or slaac (the guest forms its address; needs a /64).")


class FixedIp(BaseModel):
    """An address a port asks for; the subnet is the one that holds it unless named."""

    model_config = ConfigDict(extra="forbid")

    ip_address: IpText
    subnet_id: Annotated[str, text_of(Subnet.id)] | None = None


def _invalid(exc: ipam.IpamError) -> InvalidInputError:
    return InvalidInputError(exc.field, exc.message)


def plan_of(subnet: Subnet) -> ipam.SubnetPlan:
    """The stored subnet as the domain checks it (it was checked when created)."""
    return ipam.check_subnet(
        subnet.cidr, gateway=subnet.gateway_ip, default_gateway=False,
        pools=[(p["start"], p["end"]) for p in subnet.allocation_pools],
        dns=subnet.dns_nameservers,
        routes=[(r["destination"], r["nexthop"]) for r in subnet.host_routes],
        ipv6_mode=subnet.ipv6_mode)  # type: ignore[arg-type]


def create_subnet(session: Session, network_key: str, body: SubnetCreate) -> Subnet:
    net = find_network(session, network_key)
    # Lock the network: two subnets created at once must still not overlap.
    session.execute(select(Network.id).where(Network.id == net.id).with_for_update())
    others = list(session.scalars(select(Subnet).where(Subnet.network_id == net.id)))
    if body.name is not None and any(o.name == body.name for o in others):
        raise InvalidInputError("name", f"network {net.name!r} already has a subnet named "
                                        f"{body.name!r}; pick another name")
    try:
        plan = ipam.check_subnet(
            body.cidr, gateway=body.gateway_ip,
            default_gateway="gateway_ip" not in body.model_fields_set,
            pools=[(p.start, p.end) for p in body.allocation_pools], dns=body.dns_nameservers,
            routes=[(r.destination, r.nexthop) for r in body.host_routes],
            ipv6_mode=body.ipv6_mode, others=[o.cidr for o in others])
    except ipam.IpamError as exc:
        raise _invalid(exc) from None
    if body.ip_version is not None and body.ip_version != plan.version:
        raise InvalidInputError("ip_version", f"{plan.cidr} is IPv{plan.version}, not "
                                              f"IPv{body.ip_version}")
    subnet = Subnet(
        id=str(uuid.uuid4()), network_id=net.id, name=body.name, ip_version=plan.version,
        cidr=str(plan.cidr), gateway_ip=None if plan.gateway is None else str(plan.gateway),
        ipv6_mode=plan.ipv6_mode, dns_nameservers=[str(d) for d in plan.dns],
        host_routes=[{"destination": str(r.destination), "nexthop": str(r.nexthop)}
                     for r in plan.routes],
        allocation_pools=[{"start": str(p.start), "end": str(p.end)} for p in plan.pools])
    session.add(subnet)
    session.flush()
    return subnet


def subnets_of(session: Session, network_id: str) -> list[Subnet]:
    return list(session.scalars(select(Subnet).where(Subnet.network_id == network_id)
                                .order_by(Subnet.ip_version, Subnet.created_at, Subnet.id)))


def find_subnet(session: Session, network_key: str, key: str) -> Subnet:
    """By id or by name, within the network."""
    net = find_network(session, network_key)
    subnet = session.scalar(select(Subnet).where(Subnet.network_id == net.id,
                                                 (Subnet.id == key) | (Subnet.name == key)))
    if subnet is None:
        raise NotFoundError("subnet", key,
                            f"list the subnets of {net.name!r} with GET /v1/networks/{net.id}/"
                            "subnets")
    return subnet


def users(session: Session, subnet: Subnet, limit: int = 10) -> list[str]:
    """Ids of the ports that use the subnet: that hold an address in it or, for SLAAC, that
    are on its network."""
    if subnet.ipv6_mode == "slaac":
        stmt = select(Port.id).where(Port.network_id == subnet.network_id)
    else:
        stmt = select(PortAddress.port_id).where(PortAddress.subnet_id == subnet.id)
    return list(session.scalars(stmt.order_by(Port.id if subnet.ipv6_mode == "slaac"
                                              else PortAddress.port_id).limit(limit)))


def delete_subnet(session: Session, network_key: str, key: str) -> None:
    subnet = find_subnet(session, network_key, key)
    held = users(session, subnet)
    if held:
        raise InUseError("subnet", subnet.name or subnet.id, [f"port {p}" for p in held],
                         "delete those ports first (their addresses are in this subnet)")
    session.delete(subnet)


def allocated_counts(session: Session, subnet_ids: Sequence[str]) -> dict[str, int]:
    if not subnet_ids:
        return {}
    rows = session.execute(select(PortAddress.subnet_id, func.count())
                           .where(PortAddress.subnet_id.in_(subnet_ids))
                           .group_by(PortAddress.subnet_id))
    return {sid: n for sid, n in rows}


def subnet_view(subnet: Subnet, allocated: int | None = None) -> dict[str, Any]:
    plan = plan_of(subnet)
    return {
        "id": subnet.id, "name": subnet.name, "network_id": subnet.network_id,
        "ip_version": subnet.ip_version, "cidr": subnet.cidr, "gateway_ip": subnet.gateway_ip,
        "ipv6_mode": subnet.ipv6_mode, "dns_nameservers": subnet.dns_nameservers,
        "host_routes": subnet.host_routes, "allocation_pools": subnet.allocation_pools,
        "capacity": ipam.capacity(plan) if plan.allocates else None,
        "allocated": allocated if plan.allocates else None,
        "created_at": subnet.created_at,
    }


def assign_addresses(session: Session, port: Port, net: Network,
                     requested: Sequence[FixedIp], rng: random.Random) -> None:
    """Give a new port its fixed address in each subnet of its network that allocates.

    The subnets are locked (in id order) for the rest of the transaction, so port creations
    on one subnet take turns and an address is never handed out twice (the unique constraint
    stands behind that across controllers)."""
    subnets = list(session.scalars(select(Subnet).where(Subnet.network_id == net.id)
                                   .order_by(Subnet.id).with_for_update()))
    plans = {s.id: plan_of(s) for s in subnets}
    chosen: dict[str, ipam.IpAddress] = {}
    for i, want in enumerate(requested):
        field = f"fixed_ips[{i}]"
        subnet = _subnet_for(want, subnets, plans, net, field)
        if subnet.id in chosen:
            raise InvalidInputError(field, f"two addresses asked for in subnet {subnet.cidr}; a "
                                           "port has one address per subnet")
        try:
            address = ipam.check_requested(plans[subnet.id], want.ip_address, field)
        except ipam.IpamError as exc:
            raise _invalid(exc) from None
        holder = _holder(session, subnet.id, address)
        if holder is not None:
            raise AddressTakenError("IP address", str(address), holder)
        chosen[subnet.id] = address
    for subnet in subnets:
        if subnet.id not in chosen and plans[subnet.id].allocates:
            chosen[subnet.id] = _free_address(session, subnet, plans[subnet.id], rng)
    for subnet_id, address in chosen.items():
        session.add(PortAddress(port_id=port.id, subnet_id=subnet_id, ip_address=str(address)))


def _holder(session: Session, subnet_id: str, address: ipam.IpAddress) -> str | None:
    return session.scalar(select(PortAddress.port_id).where(
        PortAddress.subnet_id == subnet_id, PortAddress.ip_address == str(address)))


def _free_address(session: Session, subnet: Subnet, plan: ipam.SubnetPlan,
                  rng: random.Random) -> ipam.IpAddress:
    """A random free address (one indexed look-up per draw); after :data:`RANDOM_DRAWS` taken
    ones (a subnet filling up), the lowest free one from a scan, or 409 when it is full."""
    for _ in range(RANDOM_DRAWS):
        candidate = ipam.random_candidate(plan, rng)
        if candidate is not None and _holder(session, subnet.id, candidate) is None:
            return candidate
    taken = session.scalars(select(PortAddress.ip_address)
                            .where(PortAddress.subnet_id == subnet.id))
    free = ipam.first_free(plan, (ipam.parse_address(t, "ip_address") for t in taken))
    if free is None:
        raise SubnetExhaustedError(subnet.name or subnet.id, subnet.cidr, ipam.capacity(plan))
    return free


def _subnet_for(want: FixedIp, subnets: list[Subnet], plans: dict[str, ipam.SubnetPlan],
                net: Network, field: str) -> Subnet:
    try:
        address = ipam.parse_address(want.ip_address, f"{field}.ip_address")
    except ipam.IpamError as exc:
        raise _invalid(exc) from None
    if want.subnet_id is not None:
        match = [s for s in subnets if s.id == want.subnet_id]
        if not match:
            raise InvalidInputError(f"{field}.subnet_id", f"network {net.name!r} has no subnet "
                                                          f"{want.subnet_id!r}")
        if address not in plans[match[0].id].cidr:
            raise AddressOutsideSubnetError(str(address), net.name, [match[0].cidr])
    else:
        match = [s for s in subnets if address in plans[s.id].cidr]
        if not match:
            raise AddressOutsideSubnetError(str(address), net.name, [s.cidr for s in subnets])
    subnet = match[0]
    if not plans[subnet.id].allocates:
        raise InvalidInputError(field, f"subnet {subnet.cidr} uses SLAAC: the guest forms its "
                                       "address from its MAC; ask for none there")
    return subnet


def addresses_of(session: Session, ports: Sequence[Port]) -> dict[str, list[dict[str, Any]]]:
    """Port id → its addresses: ``{"subnet_id", "ip_address", "mode"}``, fixed ones first, then
    what SLAAC forms from the port's MAC or GUID (once it has one)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not ports:
        return out
    rows = session.execute(
        select(PortAddress.port_id, PortAddress.subnet_id, PortAddress.ip_address)
        .join(Subnet, Subnet.id == PortAddress.subnet_id)
        .where(PortAddress.port_id.in_([p.id for p in ports]))
        .order_by(Subnet.ip_version, PortAddress.id))
    for port_id, subnet_id, address in rows:
        out[port_id].append({"subnet_id": subnet_id, "ip_address": address, "mode": "fixed"})
    slaac = session.scalars(select(Subnet).where(
        Subnet.network_id.in_({p.network_id for p in ports}), Subnet.ipv6_mode == "slaac"))
    by_network: dict[str, list[Subnet]] = defaultdict(list)
    for subnet in slaac:
        by_network[subnet.network_id].append(subnet)
    for port in ports:
        for subnet in by_network.get(port.network_id, []):
            formed = ipam.slaac_address(ipam.parse_cidr(subnet.cidr), mac=port.mac,
                                        guid=port.guid)
            if formed is not None:
                out[port.id].append({"subnet_id": subnet.id, "ip_address": str(formed),
                                     "mode": "slaac"})
    return out
