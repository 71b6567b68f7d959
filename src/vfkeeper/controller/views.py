"""Read views of stored state: hosts, devices and pools, as the API returns them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.hosts import agent_alive, allocated_device_ids
from vfkeeper.controller.releases import releasing_device_ids, releasing_view
from vfkeeper.domain.pools import Group, Member, group_pools
from vfkeeper.store.agent_models import HostActual
from vfkeeper.store.models import Device, Host

PoolKeyTuple = tuple[str, str, str, int | None, str, str, tuple[tuple[str, str], ...]]
"""The fields of :class:`vfkeeper.scheduler.PoolKey`, in its order."""
SCHEDULABLE = ("type-VF", "type-PF")


class DeviceFacts(Protocol):
    """What pools are computed from: a :class:`Device` row, or a :class:`DeviceRow` read
    without the ORM on the hot paths (a claim, the scheduling cache)."""

    @property
    def id(self) -> int: ...
    @property
    def address(self) -> str: ...
    @property
    def dev_type(self) -> str: ...
    @property
    def parent_addr(self) -> str | None: ...
    @property
    def vf_index(self) -> int | None: ...
    @property
    def vendor_id(self) -> str | None: ...
    @property
    def product_id(self) -> str | None: ...
    @property
    def numa_node(self) -> int | None: ...
    @property
    def physical_network(self) -> str | None: ...
    @property
    def tags(self) -> Mapping[str, Any]: ...
    @property
    def present(self) -> bool: ...
    @property
    def problem(self) -> str | None: ...


class DeviceRow(NamedTuple):
    """A device's columns as plain values (:data:`DEVICE_COLUMNS`, in order)."""

    id: int
    address: str
    dev_type: str
    parent_addr: str | None
    vf_index: int | None
    vendor_id: str | None
    product_id: str | None
    numa_node: int | None
    physical_network: str | None
    tags: Mapping[str, Any]
    present: bool
    problem: str | None
    host_id: int


DEVICE_COLUMNS = (Device.id, Device.address, Device.dev_type, Device.parent_addr,
                  Device.vf_index, Device.vendor_id, Device.product_id, Device.numa_node,
                  Device.physical_network, Device.tags, Device.present, Device.problem,
                  Device.host_id)
"""``select(*DEVICE_COLUMNS)`` gives rows for :class:`DeviceRow` (no ORM objects, no identity
map: the hot paths read tens to thousands of devices and only look at them)."""


def parent_pf(device: DeviceFacts) -> str:
    return device.address if device.dev_type == "type-PF" else (device.parent_addr or "")


def pool_key(device: DeviceFacts) -> PoolKeyTuple:
    """(physnet, dev_type, parent PF, NUMA node, vendor, product, tags): one pool per key."""
    return (
        device.physical_network or "",
        device.dev_type,
        parent_pf(device),
        device.numa_node,
        device.vendor_id or "",
        device.product_id or "",
        tuple(sorted((str(k), str(v)) for k, v in (device.tags or {}).items())),
    )


def usable(device: DeviceFacts) -> bool:
    return device.physical_network is not None and device.present and device.problem is None


def _parent(device: DeviceFacts) -> str | None:
    return device.parent_addr if device.dev_type == "type-VF" else None


def device_groups(devices: Sequence[DeviceFacts], in_use: AbstractSet[int],
                  releasing: AbstractSet[int] = frozenset()
                  ) -> dict[PoolKeyTuple, Group[PoolKeyTuple]]:
    """One host's stored devices grouped into pools by :func:`vfkeeper.domain.pools.group_pools`
    (which owns PF/VF exclusivity): every device a spec assigned a physical network, and every
    device held by an allocation or releasing.

    The one rule of what is free, for the claim, the pools and the scheduling cache: a device
    is free when it is usable, not allocated (``in_use``), not releasing (``releasing``: its
    host's agent has not given it back, :mod:`vfkeeper.controller.releases`), and PF/VF
    exclusivity allows it."""
    held = in_use | releasing
    busy = {d.address: _parent(d) for d in devices if d.id in held}
    back = {d.address for d in devices if d.id in releasing}
    members = (Member(pool_key(d), d.address, _parent(d), usable(d))
               for d in devices if d.physical_network is not None or d.id in held)
    return group_pools(members, busy, back)


def pools_of(devices: Sequence[DeviceFacts], in_use: AbstractSet[int],
             releasing: AbstractSet[int] = frozenset()) -> list[dict[str, Any]]:
    """Pools of one host's devices with total/used/releasing/free counts (PF/VF exclusivity
    applied)."""
    pools = []
    groups = device_groups(devices, in_use, releasing)
    for key, group in sorted(groups.items(), key=lambda kv: repr(kv[0])):
        physnet, dev_type, parent, numa, vendor, product, tags = key
        pools.append({
            "physical_network": physnet, "dev_type": dev_type, "parent_pf": parent,
            "numa_node": numa, "vendor_id": vendor, "product_id": product,
            "tags": dict(tags), "total": len(group.devices), "used": len(group.used),
            "releasing": len(group.releasing), "free": len(group.free),
        })
    return pools


def _device(d: Device, in_use: set[int], releasing: set[int]) -> dict[str, Any]:
    return {
        "address": d.address, "dev_type": d.dev_type, "parent_pf": d.parent_addr,
        "vf_index": d.vf_index, "vendor_id": d.vendor_id, "product_id": d.product_id,
        "numa_node": d.numa_node, "physical_network": d.physical_network, "tags": d.tags,
        "in_use": d.id in in_use, "releasing": d.id in releasing, "present": d.present,
        "problem": d.problem,
    }


def host_view(
    session: Session, host: Host, now: datetime, timeout_s: float, *, detail: bool
) -> dict[str, Any]:
    devices = list(session.scalars(
        select(Device).where(Device.host_id == host.id).order_by(Device.address)))
    in_use = allocated_device_ids(session, host.id)
    releasing = releasing_device_ids(session, host.id)
    pools = pools_of(devices, in_use, releasing)
    report = session.get(HostActual, host.id)
    view: dict[str, Any] = {
        "name": host.name,
        "enabled": host.enabled,
        "disabled_reason": host.disabled_reason,
        "agent": {"last_seen": host.last_seen_at,
                  "alive": agent_alive(host.last_seen_at, now, timeout_s),
                  "migration_uri": host.migration_uri,
                  "problems": list(report.problems or []) if report else []},
        "inventory_updated_at": host.inventory_updated_at,
        "schema_version": host.inventory_schema_version,
        "generation": host.generation,
        "spec_problem": host.spec_problem,
        "devices_total": len(devices),
        "devices_assignable": sum(1 for d in devices if usable(d)),
        "devices_in_use": len(in_use),
        "devices_releasing": len(releasing),
        "free": sum(p["free"] for p in pools),
        "problems": [
            {"address": d.address, "problem": d.problem, "in_use": d.id in in_use}
            for d in devices if d.problem
        ],
    }
    if detail:
        view["devices"] = [_device(d, in_use, releasing) for d in devices]
        view["releasing"] = releasing_view(session, host.id)
        view["pools"] = pools
        view["warnings"] = list((host.inventory or {}).get("warnings", []))
    return view
