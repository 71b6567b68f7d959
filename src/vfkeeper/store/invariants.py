"""What must always hold in the store, checked from the rows themselves.

The claim and release transactions are built so that none of these can break, even with several
controllers on one database; :func:`violations` checks it after the fact (the multi-controller
test and the boot benchmark end with it, and an operator can run it against a live database).
Each violation is one sentence naming the rows involved.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.domain.lifecycle import InstanceStatus
from vfkeeper.store.models import Allocation, Device, DeviceRelease, Instance, Port

SRIOV_VNIC_TYPES = ("direct", "macvtap", "direct-physical")


def _twice(kind: str, values: Iterable[object]) -> list[str]:
    return [f"{kind} {v} appears {n} times" for v, n in Counter(values).items() if n > 1]


def _incoming_problems(a: Allocation, port: Port | None, instance: Instance | None
                       ) -> list[str]:  # fmt: skip
    """A device reserved on a migration's destination: for a port of a migrating instance,
    on that migration's destination."""
    where = f"incoming allocation {a.id} (request {a.request_id})"
    if (instance is None or instance.status != InstanceStatus.MIGRATING
            or instance.target_host_id != a.host_id):
        return [f"{where}: its instance {a.instance_id} is not migrating to its host {a.host_id}"]
    if port is None or port.instance_id != a.instance_id:
        return [f"{where}: its port {a.port_id} is not bound to its instance {a.instance_id}"]
    return []


def _allocation_problems(a: Allocation, device: Device | None, port: Port | None,
                         instance: Instance | None) -> list[str]:
    where = f"allocation {a.id} (request {a.request_id})"
    if device is None or device.host_id != a.host_id:
        return [f"{where}: its device {a.device_id} is not on its host {a.host_id}"]
    if a.incoming:
        return _incoming_problems(a, port, instance)
    if port is None or port.instance_id != a.instance_id or port.host_id != a.host_id:
        return [f"{where}: its port {a.port_id} is not bound to its instance {a.instance_id} "
                f"on host {a.host_id}"]
    if instance is None or instance.host_id != a.host_id:
        return [f"{where}: its instance {a.instance_id} is missing or on another host"]
    if port.binding_profile.get("pci_slot") != device.address:
        return [f"{where}: port {port.id} names device {port.binding_profile.get('pci_slot')}"
                f" but holds {device.address}"]
    return []


def _port_problems(port: Port, allocations: int) -> list[str]:
    if port.instance_id is None:
        if port.host_id is not None or port.binding_profile or allocations:
            return [f"port {port.id} is unbound but keeps a host, a binding or an allocation"]
        return []
    want = 1 if port.vnic_type in SRIOV_VNIC_TYPES else 0
    if allocations != want:
        return [f"port {port.id} ({port.vnic_type}) of instance {port.instance_id} holds "
                f"{allocations} devices, not {want}"]
    return []


def _exclusivity_problems(held: list[Device]) -> list[str]:
    pfs = {(d.host_id, d.address) for d in held if d.dev_type == "type-PF"}
    return [f"PF {d.parent_addr} of host {d.host_id} is handed out whole while its VF "
            f"{d.address} is in use" for d in held
            if d.dev_type == "type-VF" and (d.host_id, d.parent_addr) in pfs]


def violations(session: Session) -> list[str]:
    """Every broken invariant: a device held twice, a MAC or GUID given twice, an allocation
    whose port, instance or device disagree, a bound SR-IOV port without exactly one device, an
    unbound port that keeps a binding, an instance without ports, a PF handed out whole while
    one of its VFs is in use, a device both allocated and releasing."""
    allocations = list(session.scalars(select(Allocation)))
    devices = {d.id: d for d in session.scalars(
        select(Device).where(Device.id.in_(select(Allocation.device_id))))}
    ports = {p.id: p for p in session.scalars(select(Port))}
    instances = {i.id: i for i in session.scalars(select(Instance))}
    found = _twice("device", (a.device_id for a in allocations))
    found += _twice("MAC", (p.mac for p in ports.values() if p.mac))
    found += _twice("GUID", (p.guid for p in ports.values() if p.guid))
    for a in allocations:
        found += _allocation_problems(a, devices.get(a.device_id), ports.get(a.port_id),
                                      instances.get(a.instance_id))
    per_port = Counter(a.port_id for a in allocations if not a.incoming)
    found += _twice("incoming device for port", (a.port_id for a in allocations if a.incoming))
    for port in ports.values():
        found += _port_problems(port, per_port[port.id])
    with_ports = {p.instance_id for p in ports.values()}
    found += [f"instance {i} has no ports" for i in instances if i not in with_ports]
    found += _exclusivity_problems(list(devices.values()))
    releasing = list(session.scalars(select(DeviceRelease)))
    found += _twice("releasing device", (r.device_id for r in releasing))
    allocated = {a.device_id: a for a in allocations}
    found += [f"device {r.device_id} of host {r.host_id} is both releasing (since "
              f"{r.reason}) and allocated ({allocated[r.device_id].request_id})"
              for r in releasing if r.device_id in allocated]
    return found
