"""cloud-init NoCloud documents: ``network-config`` (version 2), ``meta-data``, ``user-data``.

The network-config is netplan's format, which cloud-init hands to netplan unchanged on netplan
guests and converts for its other renderers:

* An Ethernet VF is matched by its MAC and named ``vfN`` (``set-name``: every renderer then
  agrees on the name); a ``guest_vlan`` adds ``vfN.VID`` under ``vlans``, which carries the
  addresses.
* An InfiniBand VF cannot be matched by a 6-byte MAC (netplan compares the whole 20-byte IPoIB
  address, whose first 12 bytes the guest's driver chooses at boot), so it is keyed by its
  IPoIB interface name (``ibN`` unless the port says otherwise), with ``infiniband-mode:
  datagram`` (the only mode ConnectX-4 and later support).
* IPv4 and static IPv6 are addresses with a prefix; SLAAC is ``accept-ra: true``; DHCPv6 is
  ``dhcp6: true``. A gateway is a default route; DNS servers go to ``nameservers``.
"""

from __future__ import annotations

from typing import Any

import yaml

from vfkeeper.guest.models import Instance, Network, Port, ib_ifname

YamlObject = dict[str, Any]

_Dumper: Any = yaml.CSafeDumper if yaml.__with_libyaml__ else yaml.SafeDumper
"""libyaml's emitter when PyYAML has it (several times faster than the pure-Python one)."""


def _l3(port: Port, net: Network) -> YamlObject:
    addresses: list[str] = []
    routes: list[YamlObject] = []
    dns: list[str] = []
    accept_ra: bool | None = None
    dhcp6 = False
    for subnet in net.subnets:
        fixed = next((a.ip for a in port.addresses if a.subnet_id == subnet.id), None)
        if subnet.needs_address:
            assert fixed is not None
            addresses.append(f"{fixed}/{subnet.network.prefixlen}")
            if subnet.version == 6 and accept_ra is None:
                accept_ra = False
        elif subnet.ipv6_mode == "slaac":
            accept_ra = True
        else:
            accept_ra, dhcp6 = True, True
        if subnet.gateway is not None:
            routes.append({"to": "0.0.0.0/0" if subnet.version == 4 else "::/0",
                           "via": subnet.gateway})
        routes.extend({"to": r.destination, "via": r.nexthop} for r in subnet.host_routes)
        dns.extend(a for a in subnet.dns_servers if a not in dns)
    cfg: YamlObject = {"dhcp4": False, "dhcp6": dhcp6}
    if accept_ra is not None:
        cfg["accept-ra"] = accept_ra
    if addresses:
        cfg["addresses"] = addresses
    if routes:
        cfg["routes"] = routes
    if dns:
        cfg["nameservers"] = {"addresses": dns}
    return cfg


def network_config(instance: Instance) -> YamlObject:
    """The NoCloud ``network-config`` (netplan version 2) as a mapping."""
    ethernets: YamlObject = {}
    vlans: YamlObject = {}
    eth_index = 0
    for i, port in enumerate(instance.ports):
        net = instance.network(port.network_id)
        if port.link_type == "infiniband":
            ethernets[ib_ifname(port, instance.ports[:i])] = {
                "infiniband-mode": "datagram", "mtu": net.mtu, **_l3(port, net)}
            continue
        name = f"vf{eth_index}"
        eth_index += 1
        phys: YamlObject = {"match": {"macaddress": port.mac}, "set-name": name,
                            "mtu": net.mtu}
        if port.guest_vlan is None:
            phys.update(_l3(port, net))
        else:
            phys.update({"dhcp4": False, "dhcp6": False})
            vlans[f"{name}.{port.guest_vlan}"] = {
                "id": port.guest_vlan, "link": name, "mtu": net.mtu, **_l3(port, net)}
        ethernets[name] = phys
    doc: YamlObject = {"version": 2}
    if ethernets:
        doc["ethernets"] = ethernets
    if vlans:
        doc["vlans"] = vlans
    return doc


def meta_data(instance: Instance) -> YamlObject:
    """The NoCloud ``meta-data``: the keys cloud-init's NoCloud source reads."""
    doc: YamlObject = {"instance-id": instance.uuid, "local-hostname": instance.hostname}
    if instance.public_keys:
        doc["public-keys"] = [k.data for k in instance.public_keys]
    return doc


EMPTY_USER_DATA = "#cloud-config\n{}\n"
"""What ``user-data`` holds when none was given (NoCloud needs the file to exist)."""


def user_data(instance: Instance) -> str:
    return instance.user_data if instance.user_data is not None else EMPTY_USER_DATA


def dumps(document: YamlObject) -> str:
    """A mapping as block-style YAML, keys in the order built."""
    return yaml.dump(document, Dumper=_Dumper, sort_keys=False, default_flow_style=False)
