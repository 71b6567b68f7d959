"""Read views of stored state: hosts, devices and pools, as the API returns them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.hosts import agent_alive, allocated_device_ids
from vfkeeper.domain.pools import Group, Member, group_pools
from vfkeeper.store.models import Device, Host

PoolKeyTuple = tuple[str, str, str, int | None, str, str, tuple[tuple[str, str], ...]]
"""The fields of :class:`vfkeeper.scheduler.PoolKey`, in its order."""
SCHEDULABLE = ("type-VF", "type-PF")


def parent_pf(device: Device) -> str:
    return device.address if device.dev_type == "type-PF" else (device.parent_addr or "")


def pool_key(device: Device) -> PoolKeyTuple:
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


def usable(device: Device) -> bool:
    return device.physical_network is not None and device.present and device.problem is None


def _parent(device: Device) -> str | None:
    return device.parent_addr if device.dev_type == "type-VF" else None


def device_groups(devices: list[Device], in_use: set[int]
                  ) -> dict[PoolKeyTuple, Group[PoolKeyTuple]]:
    """One host's stored devices grouped into pools by :func:`vfkeeper.domain.pools.group_pools`
    (which owns PF/VF exclusivity): every device a spec assigned a physical network, and every
    device held by an allocation."""
    busy = {d.address: _parent(d) for d in devices if d.id in in_use}
    members = (Member(pool_key(d), d.address, _parent(d), usable(d))
               for d in devices if d.physical_network is not None or d.id in in_use)
    return group_pools(members, busy)


def pools_of(devices: list[Device], in_use: set[int]) -> list[dict[str, Any]]:
    """Pools of one host's devices with total/used/free counts (PF/VF exclusivity applied)."""
    pools = []
    for key, group in sorted(device_groups(devices, in_use).items(), key=lambda kv: repr(kv[0])):
        physnet, dev_type, parent, numa, vendor, product, tags = key
        pools.append({
            "physical_network": physnet, "dev_type": dev_type, "parent_pf": parent,
            "numa_node": numa, "vendor_id": vendor, "product_id": product,
            "tags": dict(tags), "total": len(group.devices), "used": len(group.used),
            "free": len(group.free),
        })
    return pools


def _device(d: Device, in_use: set[int]) -> dict[str, Any]:
    return {
        "address": d.address, "dev_type": d.dev_type, "parent_pf": d.parent_addr,
        "vf_index": d.vf_index, "vendor_id": d.vendor_id, "product_id": d.product_id,
        "numa_node": d.numa_node, "physical_network": d.physical_network, "tags": d.tags,
        "in_use": d.id in in_use, "present": d.present, "problem": d.problem,
    }


def host_view(
    session: Session, host: Host, now: datetime, timeout_s: float, *, detail: bool
) -> dict[str, Any]:
    devices = list(session.scalars(
        select(Device).where(Device.host_id == host.id).order_by(Device.address)))
    in_use = allocated_device_ids(session, host.id)
    pools = pools_of(devices, in_use)
    view: dict[str, Any] = {
        "name": host.name,
        "enabled": host.enabled,
        "disabled_reason": host.disabled_reason,
        "agent": {"last_seen": host.last_seen_at,
                  "alive": agent_alive(host.last_seen_at, now, timeout_s)},
        "inventory_updated_at": host.inventory_updated_at,
        "schema_version": host.inventory_schema_version,
        "generation": host.generation,
        "spec_problem": host.spec_problem,
        "devices_total": len(devices),
        "devices_assignable": sum(1 for d in devices if usable(d)),
        "devices_in_use": len(in_use),
        "free": sum(p["free"] for p in pools),
        "problems": [
            {"address": d.address, "problem": d.problem, "in_use": d.id in in_use}
            for d in devices if d.problem
        ],
    }
    if detail:
        view["devices"] = [_device(d, in_use) for d in devices]
        view["pools"] = pools
    return view
