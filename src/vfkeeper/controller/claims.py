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

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, aliased

from vfkeeper.controller.addresses import AddressPools
from vfkeeper.controller.errors import ConflictError
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


def _free_devices(session: Session, host_id: int, key: PoolKey, count: int) -> list[Device]:
    busy = select(Allocation.device_id)
    stmt = select(Device).where(
        Device.host_id == host_id, Device.physical_network == key.physical_network,
        Device.dev_type == key.dev_type, Device.present.is_(True), Device.problem.is_(None),
        Device.id.not_in(busy),
    )
    stmt = stmt.where(Device.numa_node.is_(None) if key.numa_node is None
                      else Device.numa_node == key.numa_node)
    if key.dev_type == "type-VF":
        pf = aliased(Device)
        pf_busy = select(pf.id).where(pf.host_id == host_id, pf.address == key.parent_pf,
                                      pf.id.in_(busy))
        stmt = stmt.where(Device.parent_addr == key.parent_pf, ~pf_busy.exists())
    else:
        vf = aliased(Device)
        vf_busy = select(vf.id).where(vf.host_id == host_id, vf.parent_addr == key.parent_pf,
                                      vf.id.in_(busy))
        stmt = stmt.where(Device.address == key.parent_pf, ~vf_busy.exists())
    candidates = [d for d in session.scalars(stmt.order_by(Device.address))
                  if (d.vendor_id or "") == key.vendor_id and (d.product_id or "") == key.product_id
                  and tuple(sorted((k, str(v)) for k, v in d.tags.items())) == key.tags]
    if len(candidates) < count:
        raise PlacementStale(key)
    return candidates[:count]


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
          ) -> Instance:
    """Allocate the placement's devices, bind the ports, create the instance: one transaction."""
    ports = {p.id: p for p in _lock_ports(session, plan.port_ids, None)}
    host = session.scalar(select(Host).where(Host.name == placement.host).with_for_update())
    if host is None or not host.enabled:
        raise PlacementStale(placement.host)
    instance = Instance(id=plan.instance_id, name=plan.name, host_id=host.id,
                        numa_policy=plan.numa_policy, host_hint=plan.host_hint, status="ACTIVE")
    session.add(instance)
    session.flush()
    by_request = {rid: pid for pid, rid in plan.request_ids.items()}
    for allocation in placement.allocations:
        for device in _free_devices(session, host.id, allocation.pool, allocation.count):
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
    return instance


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
