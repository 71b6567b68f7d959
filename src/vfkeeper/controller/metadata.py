"""What an instance's guest reads, assembled from the store and rendered by
:mod:`vfkeeper.guest`: its ports (MAC, or InfiniBand port GUID), their networks (MTU) and
subnets, the ports' fixed addresses, and what the boot gave (host name, keys, user data).

Every port of the instance is published, in the order the instance lists them (by port id):
an Ethernet VF by its MAC, an InfiniBand VF by its port GUID (the guest documents publish the
GUID's 6-byte form, which stock cloud-init matches), a ``direct-physical`` port by its PF's MAC
as the host's inventory reports it. The VLAN of a VLAN network is programmed on the VF by the
agent, so the guest sees untagged frames and configures no VLAN interface.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import ConflictError
from vfkeeper.controller.guest_data import guest_of
from vfkeeper.controller.instances import find_instance
from vfkeeper.guest import models as g
from vfkeeper.guest.documents import GuestDocuments, render
from vfkeeper.store.models import Allocation, Device, Host, Instance, Network, Port
from vfkeeper.store.subnet_models import PortAddress, Subnet


class MetadataUnavailableError(ConflictError):
    """The instance's guest documents cannot be made now (a port without its address yet)."""

    code = "metadata_unavailable"

    def __init__(self, instance_id: str, problem: str) -> None:
        super().__init__(f"the guest documents of instance {instance_id} cannot be rendered: "
                         f"{problem}", {"instance": instance_id})


def documents(session: Session, instance_id: str) -> GuestDocuments:
    """Every document the instance's guest reads, rendered from the store as it is now."""
    instance = find_instance(session, instance_id)
    try:
        return render(guest_instance(session, instance))
    except ValidationError as exc:
        problem = "; ".join(str(e.get("msg", "")).removeprefix("Value error, ")
                            for e in exc.errors()[:3])
        raise MetadataUnavailableError(instance.id, problem) from None


def guest_instance(session: Session, instance: Instance) -> g.Instance:
    ports = list(session.scalars(select(Port).where(Port.instance_id == instance.id)
                                 .order_by(Port.id)))
    nets = {n.id: n for n in session.scalars(
        select(Network).where(Network.id.in_({p.network_id for p in ports})))}
    subnets: dict[str, list[Subnet]] = defaultdict(list)
    for subnet in session.scalars(select(Subnet).where(Subnet.network_id.in_(nets))
                                  .order_by(Subnet.ip_version, Subnet.created_at, Subnet.id)):
        subnets[subnet.network_id].append(subnet)
    addresses: dict[str, list[g.FixedAddress]] = defaultdict(list)
    for row in session.scalars(select(PortAddress).where(
            PortAddress.port_id.in_([p.id for p in ports])).order_by(PortAddress.id)):
        addresses[row.port_id].append(g.FixedAddress(subnet_id=row.subnet_id,
                                                     ip=row.ip_address))
    pf_macs = _pf_macs(session, instance, [p for p in ports if p.mac is None and p.guid is None])
    given = guest_of(session, instance.id, instance.name)
    return g.Instance(
        uuid=instance.id, name=instance.name, hostname=given["hostname"],
        public_keys=tuple(g.PublicKey(name=k, data=v)
                          for k, v in sorted(given["public_keys"].items())),
        user_data=given["user_data"],
        ports=tuple(_port(p, nets[p.network_id], addresses[p.id], pf_macs) for p in ports),
        networks=tuple(_network(net, subnets[net.id]) for net in nets.values()))


def _port(port: Port, net: Network, addresses: list[g.FixedAddress],
          pf_macs: dict[str, str]) -> g.Port:
    if net.segmentation_type == "pkey":
        return g.Port(id=port.id, network_id=net.id, link_type="infiniband",
                      port_guid=port.guid, addresses=tuple(addresses))
    return g.Port(id=port.id, network_id=net.id, mac=port.mac or pf_macs.get(port.id),
                  addresses=tuple(addresses))


def _network(net: Network, subnets: list[Subnet]) -> g.Network:
    return g.Network(id=net.id, name=net.name, mtu=net.mtu, subnets=tuple(
        g.Subnet(id=s.id, cidr=s.cidr, gateway=s.gateway_ip,
                 dns_servers=tuple(s.dns_nameservers),
                 host_routes=tuple(g.HostRoute(**r) for r in s.host_routes),
                 ipv6_mode=s.ipv6_mode)
        for s in subnets))


def _pf_macs(session: Session, instance: Instance, ports: list[Port]) -> dict[str, str]:
    """Port id → the MAC of the PF a ``direct-physical`` port holds, from the inventory of the
    instance's host (the PF keeps its own address)."""
    if not ports or instance.host_id is None:
        return {}
    rows = session.execute(select(Allocation.port_id, Device.address)
                           .join(Device, Device.id == Allocation.device_id)
                           .where(Allocation.port_id.in_([p.id for p in ports]),
                                  Allocation.incoming.is_(False)))
    held = {port_id: address for port_id, address in rows}
    inventory: dict[str, Any] = session.scalar(
        select(Host.inventory).where(Host.id == instance.host_id)) or {}
    macs = {}
    for device in inventory.get("devices") or []:
        netdevs = device.get("netdevs") or []
        if netdevs and netdevs[0].get("mac"):
            macs[device.get("address")] = netdevs[0]["mac"]
    return {pid: macs[addr] for pid, addr in held.items() if addr in macs}
