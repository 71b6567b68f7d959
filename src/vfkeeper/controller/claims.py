"""The one write path for device claims: :func:`claim` allocates, :func:`release` frees.

Each runs in one transaction and re-checks everything it relies on *inside* it, after taking
locks, so a placement computed from a stale view can never double-allocate:

* PostgreSQL: ``SELECT ... FOR UPDATE`` on the instance's ports (in id order), then on the
  host row. Every claim and release on a host serializes on that row, across any number of
  controller processes; the free devices are then read and taken under the lock.
* SQLite: the transaction is ``BEGIN IMMEDIATE`` (see :mod:`vfkeeper.store.database`), which
  serializes all writers.
* The schema backs this up: an allocation's device, port and request id are unique, and ports'
  MACs and GUIDs are unique. A violation (e.g. two controllers drawing the same random MAC)
  aborts the transaction and the boot is retried.

If a pool no longer has the free devices the placement counted on, :class:`PlacementStale` is
raised and the caller re-schedules on fresh state.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from vfkeeper.controller.addresses import AddressPools
from vfkeeper.controller.errors import ConflictError
from vfkeeper.controller.views import device_groups
from vfkeeper.scheduler import Placement, PoolKey
from vfkeeper.store.models import Allocation, Device, Host, Instance, Network, Port


class PlacementStale(Exception):
    """The placement's pools changed since it was computed; re-schedule."""


@dataclass(frozen=True)
class BootPlan:
    instance_id: str
    name: str
    numa_policy: str
    host_hint: str | None
    port_ids: tuple[str, ...]
    request_ids: dict[str, str]
    """port id -> PCI request id, for the SR-IOV ports."""


def _families(session: Session, host_id: int, pfs: set[str]) -> tuple[list[Device], set[int]]:
    """The PFs ``pfs`` and their VFs (all that PF/VF exclusivity looks at for those pools), and
    which of them are in use."""
    devices = list(session.scalars(select(Device).where(
        Device.host_id == host_id, or_(Device.address.in_(pfs), Device.parent_addr.in_(pfs)))))
    in_use = set(session.scalars(select(Allocation.device_id).where(
        Allocation.device_id.in_([d.id for d in devices]))))
    return devices, in_use


def _take(devices: list[Device], in_use: set[int], key: PoolKey, count: int) -> list[Device]:
    """``count`` free devices of pool ``key`` (lowest addresses first), marked in use.

    Freeness, PF/VF exclusivity included, is decided by the one pool computation
    (:func:`vfkeeper.controller.views.device_groups`) on rows read under the host's lock."""
    wanted = (key.physical_network, key.dev_type, key.parent_pf, key.numa_node, key.vendor_id,
              key.product_id, key.tags)
    group = device_groups(devices, in_use).get(wanted)
    if group is None or len(group.free) < count:
        raise PlacementStale(key)
    by_address = {d.address: d for d in devices}
    taken = [by_address[a] for a in sorted(group.free)[:count]]
    in_use.update(d.id for d in taken)
    return taken


def _vif(port: Port, net: Network, device: Device) -> tuple[str, dict[str, Any]]:
    details: dict[str, Any] = {"physical_network": net.physical_network}
    if port.vnic_type == "direct-physical":
        return "hostdev_physical", details
    if net.segmentation_type == "pkey" and net.segmentation_id is not None:
        pkey = net.segmentation_id | (0x8000 if net.pkey_full_membership else 0)
        return "ib_hostdev", {**details, "pkey": f"{pkey:#06x}"}
    if net.segmentation_type == "vlan":
        details["vlan"] = str(net.segmentation_id)
    if "profileid" in device.tags:
        return "802.1qbh", {**details, "profileid": device.tags["profileid"]}
    return "hw_veb", {**details, "port_filter": False}


def _bind(session: Session, port: Port, host: Host, device: Device, *, request_id: str,
          addresses: AddressPools) -> dict[str, Any]:
    net = session.get_one(Network, port.network_id)
    infiniband = net.segmentation_type == "pkey"
    if infiniband and port.guid is None:
        port.guid = addresses.guid(session, port.id)
    if not infiniband and port.mac is None and port.vnic_type != "direct-physical":
        port.mac = addresses.mac(session, port.id)
    port.vif_type, port.vif_details = _vif(port, net, device)
    port.host_id = host.id
    port.binding_profile = {
        "pci_slot": device.address,
        "pci_vendor_info": f"{device.vendor_id}:{device.product_id}",
        "physical_network": net.physical_network,
        "vf_num": device.vf_index,
        "parent_pf": device.parent_addr,
        "request_id": request_id,
    }
    port.status = "BUILD"
    return {
        "address": device.address, "parent_pf": device.parent_addr, "vf_index": device.vf_index,
        "port_id": port.id, "vnic_type": port.vnic_type, "vif_type": port.vif_type,
        "mac": port.mac, "guid": port.guid, "vlan": port.vif_details.get("vlan"),
        "pkey": port.vif_details.get("pkey"), "trusted": port.trusted,
        "spoofchk": port.port_security, "link_state": port.link_state,
        "min_tx_rate_kbps": port.qos_min_kbps, "max_tx_rate_kbps": port.qos_max_kbps,
        "mtu": net.mtu,
    }


def _lock_ports(session: Session, port_ids: tuple[str, ...], instance_id: str | None
                ) -> list[Port]:
    ports = list(session.scalars(
        select(Port).where(Port.id.in_(port_ids)).order_by(Port.id).with_for_update()))
    for port in ports:
        if port.instance_id is not None and port.instance_id != instance_id:
            raise ConflictError(
                f"port {port.id} is already bound to instance {port.instance_id}; give the "
                "instance other ports", {"port": port.id, "instance": port.instance_id})
    return ports


def claim(session: Session, plan: BootPlan, placement: Placement, addresses: AddressPools
          ) -> int:
    """Allocate the placement's devices, bind the ports, create the instance: one transaction.
    Returns the host's new generation (the claim bumps it by one)."""
    ports = {p.id: p for p in _lock_ports(session, plan.port_ids, None)}
    host = session.scalar(select(Host).where(Host.name == placement.host).with_for_update())
    if host is None or not host.enabled:
        raise PlacementStale(placement.host)
    instance = Instance(id=plan.instance_id, name=plan.name, host_id=host.id,
                        numa_policy=plan.numa_policy, host_hint=plan.host_hint, status="ACTIVE")
    session.add(instance)
    session.flush()
    by_request = {rid: pid for pid, rid in plan.request_ids.items()}
    devices, in_use = _families(session, host.id, {a.pool.parent_pf for a in placement.allocations})
    for allocation in placement.allocations:
        for device in _take(devices, in_use, allocation.pool, allocation.count):
            port = ports[by_request[allocation.request_id]]
            desired = _bind(session, port, host, device, request_id=allocation.request_id,
                            addresses=addresses)
            session.add(Allocation(request_id=allocation.request_id, device_id=device.id,
                                   host_id=host.id, instance_id=instance.id, port_id=port.id,
                                   desired=desired))
            session.flush()
    for port in ports.values():
        port.instance_id = instance.id
        if port.host_id is None:  # a normal port: bound to the host, no device
            port.host_id = host.id
            port.status = "BUILD"
    host.generation += 1
    session.flush()
    return host.generation


def release(session: Session, instance_id: str) -> None:
    """Free every device of the instance, unbind its ports (they keep MAC and GUID), delete it."""
    port_ids = tuple(session.scalars(select(Port.id).where(Port.instance_id == instance_id)))
    ports = _lock_ports(session, port_ids, instance_id)
    instance = session.get_one(Instance, instance_id)
    if instance.host_id is not None:
        host = session.scalar(select(Host).where(Host.id == instance.host_id).with_for_update())
        if host is not None:
            host.generation += 1
    session.execute(delete(Allocation).where(Allocation.instance_id == instance_id))
    for port in ports:
        port.instance_id = None
        port.host_id = None
        port.vif_type = None
        port.vif_details = {}
        port.binding_profile = {}
        port.status = "DOWN"
    session.flush()
    session.delete(instance)


def new_request_ids(port_ids: list[str]) -> dict[str, str]:
    return {pid: str(uuid.uuid4()) for pid in port_ids}
