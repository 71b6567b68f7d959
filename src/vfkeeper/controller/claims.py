"""The one write path for device claims: :func:`claim` allocates, :func:`release` frees.

Each runs in one transaction and re-checks everything it relies on *inside* it, after taking
locks, so a placement computed from a stale view can never double-allocate:

* PostgreSQL: ``SELECT ... FOR UPDATE`` on the instance's ports (in id order,
  :func:`lock_ports`), then the host row (the claim's ``UPDATE hosts SET generation = ...``
  takes that row lock). Every claim and release on a host serializes on that row, across any
  number of controller processes; the free devices are then read and taken under the lock.
* SQLite: the transaction is ``BEGIN IMMEDIATE`` (see :mod:`vfkeeper.store.database`), which
  serializes all writers.
* The schema backs this up: an allocation's device, port and request id are unique, and ports'
  MACs and GUIDs are unique. A violation (e.g. two controllers drawing the same random MAC)
  aborts the transaction and the boot is retried.

If a pool no longer has the free devices the placement counted on, :class:`PlacementStale` is
raised and the caller re-schedules on fresh state.

A boot's transaction reads and writes columns, not ORM objects (SQLAlchemy Core statements,
built once with bound parameters: building a statement costs more than running it on SQLite):
it touches a handful of rows and must not load what it does not look at (a host row carries its
whole inventory document).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import bindparam, insert, or_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from vfkeeper.controller import releases
from vfkeeper.controller.addresses import AddressPools
from vfkeeper.controller.errors import ConflictError
from vfkeeper.controller.views import DEVICE_COLUMNS, DeviceRow, device_groups
from vfkeeper.domain.desired_state import ClaimedPort
from vfkeeper.domain.lifecycle import InstanceStatus, PortStatus
from vfkeeper.domain.vif import VifType, VnicType
from vfkeeper.scheduler import Placement, PoolKey
from vfkeeper.store.models import (
    Allocation,
    Device,
    DeviceRelease,
    Host,
    Instance,
    Network,
    Port,
    utcnow,
)


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
    check_addresses: bool = False
    """Look each drawn MAC/GUID up before using it (a retry after a duplicate does)."""
    existing: bool = False
    """The instance exists already (a hot-plug): add the ports to it instead of creating it."""
    incoming: bool = False
    """A live migration's reservation on the destination: the allocations are ``incoming`` and
    carry the ports' future bindings; the ports stay bound where they are."""


PORT_COLUMNS = (Port.id, Port.instance_id, Port.host_id, Port.vnic_type, Port.mac, Port.guid,
                Port.trusted, Port.port_security, Port.link_state, Port.qos_min_kbps,
                Port.qos_max_kbps, Network.physical_network, Network.segmentation_type,
                Network.segmentation_id, Network.pkey_full_membership, Network.mtu)


class PortRow(NamedTuple):
    """A port's columns and its network's (:data:`PORT_COLUMNS`, in order)."""

    id: str
    instance_id: str | None
    host_id: int | None
    vnic_type: str
    mac: str | None
    guid: str | None
    trusted: bool
    port_security: bool
    link_state: str
    qos_min_kbps: int | None
    qos_max_kbps: int | None
    physical_network: str
    segmentation_type: str
    segmentation_id: int | None
    pkey_full_membership: bool
    mtu: int


_LOCK_PORTS = (select(*PORT_COLUMNS).join(Network, Network.id == Port.network_id)
               .where(Port.id.in_(bindparam("ids", expanding=True))).order_by(Port.id)
               .with_for_update(of=Port.__table__))
_BUMP_HOST = (update(Host).where(Host.name == bindparam("host_name"), Host.enabled.is_(True))
              .values(generation=Host.generation + 1).returning(Host.id, Host.generation))
_INSERT_INSTANCE = insert(Instance)
_FAMILIES = (select(*DEVICE_COLUMNS, Allocation.id, DeviceRelease.id)
             .outerjoin(Allocation, Allocation.device_id == Device.id)
             .outerjoin(DeviceRelease, DeviceRelease.device_id == Device.id)
             .where(Device.host_id == bindparam("host"),
                    or_(Device.address.in_(bindparam("pfs", expanding=True)),
                        Device.parent_addr.in_(bindparam("pfs", expanding=True)))))
_INSERT_ALLOCATIONS = insert(Allocation)
_BIND_PORT = update(Port).where(Port.id == bindparam("port"))
"""Executed with the columns to set as parameters (and ``port``, the port's id)."""
_BIND_NORMAL_PORTS = (update(Port).where(Port.id.in_(bindparam("ids", expanding=True)))
                      .values(instance_id=bindparam("instance"), host_id=bindparam("host"),
                              status=PortStatus.BUILD))


def lock_ports(session: Session, port_ids: Sequence[str]) -> dict[str, PortRow]:
    """The ports ``port_ids`` that exist, with their networks, locked (in id order) until the
    transaction ends."""
    rows = session.connection().execute(_LOCK_PORTS, {"ids": list(port_ids)})
    return {r.id: PortRow._make(r) for r in rows}


class _Families(NamedTuple):
    devices: list[DeviceRow]
    in_use: set[int]
    releasing: set[int]


def _families(conn: Connection, host_id: int, pfs: set[str]) -> _Families:
    """The PFs ``pfs`` and their VFs (all that PF/VF exclusivity looks at for those pools), and
    which of them are in use or releasing."""
    rows = conn.execute(_FAMILIES, {"host": host_id, "pfs": sorted(pfs)})
    found = _Families([], set(), set())
    for *columns, allocation, release in rows:
        device = DeviceRow(*columns)
        found.devices.append(device)
        if allocation is not None:
            found.in_use.add(device.id)
        if release is not None:
            found.releasing.add(device.id)
    return found


def _take(families: _Families, key: PoolKey, count: int) -> list[DeviceRow]:
    """``count`` free devices of pool ``key`` (lowest addresses first), marked in use.

    Freeness, PF/VF exclusivity and releasing devices included, is decided by the one pool
    computation (:func:`vfkeeper.controller.views.device_groups`) on rows read under the
    host's lock."""
    devices, in_use = families.devices, families.in_use
    wanted = (key.physical_network, key.dev_type, key.parent_pf, key.numa_node, key.vendor_id,
              key.product_id, key.tags)
    group = device_groups(devices, in_use, families.releasing).get(wanted)
    if group is None or len(group.free) < count:
        raise PlacementStale(key)
    by_address = {d.address: d for d in devices}
    taken = [by_address[a] for a in sorted(group.free)[:count]]
    in_use.update(d.id for d in taken)
    return taken


def _vif(port: PortRow, device: DeviceRow) -> tuple[str, dict[str, Any]]:
    details: dict[str, Any] = {"physical_network": port.physical_network}
    if port.vnic_type == "direct-physical":
        return "hostdev_physical", details
    if port.segmentation_type == "pkey" and port.segmentation_id is not None:
        pkey = port.segmentation_id | (0x8000 if port.pkey_full_membership else 0)
        return "ib_hostdev", {**details, "pkey": f"{pkey:#06x}"}
    if port.segmentation_type == "vlan":
        details["vlan"] = str(port.segmentation_id)
    if "profileid" in device.tags:
        return "802.1qbh", {**details, "profileid": device.tags["profileid"]}
    return "hw_veb", {**details, "port_filter": False}


def _bind(session: Session, port: PortRow, host_id: int, device: DeviceRow, *, request_id: str,
          addresses: AddressPools, check: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """The port's new binding columns, and the desired VF state of the allocation."""
    infiniband = port.segmentation_type == "pkey"
    mac, guid = port.mac, port.guid
    if infiniband and guid is None:
        guid = addresses.guid(session, port.id, check=check)
    if not infiniband and mac is None and port.vnic_type != "direct-physical":
        mac = addresses.mac(session, port.id, check=check)
    vif_type, vif_details = _vif(port, device)
    binding = {
        "mac": mac, "guid": guid, "vif_type": vif_type, "vif_details": vif_details,
        "host_id": host_id, "status": PortStatus.BUILD,
        "binding_profile": {
            "pci_slot": device.address,
            "pci_vendor_info": f"{device.vendor_id}:{device.product_id}",
            "physical_network": port.physical_network,
            "vf_num": device.vf_index,
            "parent_pf": device.parent_addr,
            "request_id": request_id,
        },
    }
    desired = ClaimedPort(
        address=device.address, parent_pf=device.parent_addr, vf_index=device.vf_index,
        port_id=port.id, vnic_type=VnicType(port.vnic_type), vif_type=VifType(vif_type),
        mac=mac, guid=guid,
        vlan=port.segmentation_id if port.segmentation_type == "vlan" else None,
        pkey=vif_details.get("pkey"), trusted=port.trusted, spoofchk=port.port_security,
        link_state=port.link_state,
        min_tx_rate_kbps=port.qos_min_kbps, max_tx_rate_kbps=port.qos_max_kbps, mtu=port.mtu)
    return binding, desired.model_dump(mode="json")


@dataclass(frozen=True)
class Claimed:
    """What a committed claim made: the host's new generation and the instance as the API
    shows it (so a boot need not read it back)."""

    generation: int
    view: dict[str, Any]


def claim(session: Session, plan: BootPlan, placement: Placement, ports: Mapping[str, PortRow],
          addresses: AddressPools) -> Claimed:
    """Allocate the placement's devices, bind the ports, create the instance (unless
    ``plan.existing``: a hot-plug adds to it), bump the host's generation: one transaction,
    whose ports the caller locked (:func:`lock_ports`)."""
    conn = session.connection()
    host = conn.execute(_BUMP_HOST, {"host_name": placement.host}).one_or_none()
    if host is None:
        raise PlacementStale(placement.host)
    created = utcnow()
    if not plan.existing:
        conn.execute(_INSERT_INSTANCE, {
            "id": plan.instance_id, "name": plan.name, "host_id": host.id,
            "numa_policy": plan.numa_policy, "host_hint": plan.host_hint,
            "status": InstanceStatus.ACTIVE, "created_at": created})
    by_request = {rid: pid for pid, rid in plan.request_ids.items()}
    families = _families(conn, host.id, {a.pool.parent_pf for a in placement.allocations})
    allocations, bindings = [], {}
    for allocation in placement.allocations:
        for device in _take(families, allocation.pool, allocation.count):
            port = ports[by_request[allocation.request_id]]
            bindings[port.id], desired = _bind(session, port, host.id, device,
                                               request_id=allocation.request_id,
                                               addresses=addresses,
                                               check=plan.check_addresses)
            allocations.append({"request_id": allocation.request_id, "device_id": device.id,
                                "host_id": host.id, "instance_id": plan.instance_id,
                                "port_id": port.id, "desired": desired, "created_at": created,
                                "incoming": plan.incoming,
                                "binding": bindings[port.id] if plan.incoming else None,
                                "address": device.address, "numa_node": device.numa_node})
    _write(conn, plan, host.id, allocations, bindings)
    return Claimed(host.generation, _view(plan, placement.host, allocations, created))


_VIEW_ONLY = ("address", "numa_node")
"""Keys of a claim's allocation records that are the device's, for the view, not columns."""


def _write(conn: Connection, plan: BootPlan, host_id: int, allocations: list[dict[str, Any]],
           bindings: dict[str, dict[str, Any]]) -> None:
    if allocations:
        conn.execute(_INSERT_ALLOCATIONS, [
            {k: v for k, v in a.items() if k not in _VIEW_ONLY} for a in allocations])
    if plan.incoming:  # the ports move when the instance does
        return
    if bindings:
        conn.execute(_BIND_PORT, [{"port": port_id, "instance_id": plan.instance_id, **binding}
                                  for port_id, binding in bindings.items()])
    normal = [p for p in plan.port_ids if p not in bindings]
    if normal:  # bound to the host, no device
        conn.execute(_BIND_NORMAL_PORTS,
                     {"ids": normal, "instance": plan.instance_id, "host": host_id})


def _view(plan: BootPlan, host: str, allocations: list[dict[str, Any]], created: datetime
          ) -> dict[str, Any]:
    """The instance as :func:`vfkeeper.controller.instances.instance_view` shows it."""
    return {
        "id": plan.instance_id, "name": plan.name, "host": host,
        "numa_policy": plan.numa_policy, "host_hint": plan.host_hint,
        "status": InstanceStatus.ACTIVE, "ports": sorted(plan.port_ids),
        "allocations": [{"request_id": a["request_id"], "port_id": a["port_id"],
                         "device": a["address"], "numa_node": a["numa_node"]}
                        for a in allocations],
        "created_at": created, "task": None, "last_error": None,
    }


def _lock_bound_ports(session: Session, port_ids: tuple[str, ...], instance_id: str
                      ) -> list[Port]:
    ports = list(session.scalars(
        select(Port).where(Port.id.in_(port_ids)).order_by(Port.id).with_for_update()))
    for port in ports:
        if port.instance_id is not None and port.instance_id != instance_id:
            raise ConflictError(
                f"port {port.id} is already bound to instance {port.instance_id}; give the "
                "instance other ports", {"port": port.id, "instance": port.instance_id})
    return ports


def release(session: Session, instance_id: str, port_ids: Sequence[str] | None = None) -> None:
    """Free the devices of the instance's ports and unbind them (they keep MAC and GUID): all
    of them, deleting the instance too, or only ``port_ids`` (a hot-unplug), which the caller
    checked are the instance's. The devices stay releasing until their host's agent gives them
    back (:mod:`vfkeeper.controller.releases`)."""
    whole = port_ids is None
    if port_ids is None:
        port_ids = tuple(session.scalars(select(Port.id).where(Port.instance_id == instance_id)))
    ports = _lock_bound_ports(session, tuple(port_ids), instance_id)
    instance = session.get_one(Instance, instance_id)
    if instance.host_id is not None:  # takes the host's row lock, as a claim does
        bump_hosts(session, instance.host_id, instance.target_host_id if whole else None)
    if whole:
        # An attach-port that committed while this waited for the host's lock bound one more
        # port: it must be unbound too, or deleting the instance would break its foreign key.
        seen = {p.id for p in ports}
        late = set(session.scalars(select(Port.id).where(Port.instance_id == instance_id)))
        if late - seen:
            ports += _lock_bound_ports(session, tuple(sorted(late - seen)), instance_id)
    if whole:
        releases.free(session, releases.INSTANCE_DELETED, Allocation.instance_id == instance_id)
    else:
        releases.free(session, releases.PORT_UNPLUGGED, Allocation.instance_id == instance_id,
                      Allocation.port_id.in_([p.id for p in ports]))
    for port in ports:
        port.instance_id = None
        port.host_id = None
        port.vif_type = None
        port.vif_details = {}
        port.binding_profile = {}
        port.status = PortStatus.DOWN
    session.flush()
    if whole:
        session.delete(instance)


def bump_hosts(session: Session, *host_ids: int | None) -> None:
    """Move the hosts' generations (in id order: row locks are taken so everywhere): their
    agents and every controller's scheduling view then re-read them."""
    for host_id in sorted({h for h in host_ids if h is not None}):
        session.connection().execute(update(Host).where(Host.id == host_id)
                                     .values(generation=Host.generation + 1))


def new_request_ids(port_ids: list[str]) -> dict[str, str]:
    return {pid: str(uuid.uuid4()) for pid in port_ids}
