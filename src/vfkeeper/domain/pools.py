"""Pools: a host's assignable devices grouped by what a request can ask for.

A pool is every device of one host that a spec matched and that shares one key: physical
network, vendor and product ID, NUMA node, device type, parent PF (for VFs) and the remaining
tags of the spec that matched. ``total`` counts the pool's devices, ``free`` those that can be
handed out now, with PF/VF exclusivity: a PF is not free while any of its VFs is in use, and a
VF is not free while its PF is.

    pools = compute_pools(specs.bind(host), in_use={"0000:3b:00.2"})

:func:`group_pools` is the one implementation of grouping and exclusivity: ``compute_pools``
(devices matched by specs) and the controller (its stored device rows) both call it.
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from vfkeeper.domain.devspec import DeviceView, HostMatcher

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class PoolKey:
    physical_network: str | None
    """``None`` both when the tag is absent and when it is null; see :attr:`tunnelled`."""
    tunnelled: bool
    """The spec set ``"physical_network": null``: the devices serve tunnelled networks."""
    vendor_id: str
    product_id: str
    numa_node: int
    """-1 when the host does not say."""
    dev_type: str
    parent_addr: str
    """The PF of the pool's VFs; empty for PFs and plain PCI devices."""
    tags: tuple[tuple[str, str], ...]
    """The other tags of the matching spec, as sorted (name, JSON value) pairs."""


@dataclass(frozen=True)
class Pool:
    key: PoolKey
    tags: Mapping[str, Any] = field(compare=False)
    """Every tag of the matching spec, physical_network included, as written."""
    devices: tuple[str, ...]
    """Addresses, in inventory order."""
    free_devices: tuple[str, ...]
    spec_index: int

    @property
    def total(self) -> int:
        return len(self.devices)

    @property
    def free(self) -> int:
        return len(self.free_devices)

    def to_dict(self) -> dict[str, Any]:
        k = self.key
        return {
            "physical_network": k.physical_network, "tunnelled": k.tunnelled,
            "vendor_id": k.vendor_id, "product_id": k.product_id,
            "numa_node": None if k.numa_node < 0 else k.numa_node, "dev_type": k.dev_type,
            "parent_addr": k.parent_addr or None, "tags": dict(self.tags),
            "spec_index": self.spec_index, "total": self.total, "free": self.free,
            "devices": list(self.devices), "free_devices": list(self.free_devices),
        }


def pool_key(dev: DeviceView, tags: Mapping[str, Any]) -> PoolKey:
    physnet = tags.get("physical_network")
    rest = tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in tags.items()
                        if k != "physical_network"))
    return PoolKey(
        physical_network=None if physnet is None else str(physnet),
        tunnelled="physical_network" in tags and physnet is None,
        vendor_id=dev.vendor_id or "", product_id=dev.product_id or "",
        numa_node=-1 if dev.numa_node is None else dev.numa_node,
        dev_type=dev.dev_type, parent_addr=dev.parent_addr or "", tags=rest,
    )


def _order(key: PoolKey) -> tuple[object, ...]:
    return (key.physical_network or "", key.tunnelled, key.vendor_id, key.product_id,
            key.numa_node, key.dev_type, key.parent_addr, key.tags)


@dataclass(frozen=True, slots=True)
class Member(Generic[K]):
    """One device that belongs to a pool, as :func:`group_pools` needs it."""

    key: K
    address: str
    parent_addr: str | None
    """The PF of a VF; ``None`` for PFs and plain PCI devices."""
    assignable: bool = True
    """False for a device kept only because it is held (vanished, or no spec selects it any
    more): it counts in the pool's total, never as free."""


@dataclass(slots=True)
class Group(Generic[K]):
    """A pool's devices by address, in the order the members came: all, free, in use, and
    releasing (freed by the controller, not yet given back by the host: neither used nor
    free)."""

    devices: list[str] = field(default_factory=list)
    free: list[str] = field(default_factory=list)
    used: list[str] = field(default_factory=list)
    releasing: list[str] = field(default_factory=list)


def is_free(address: str, parent_addr: str | None, in_use: Mapping[str, str | None],
            pfs_with_busy_vf: AbstractSet[str]) -> bool:
    """The PF/VF exclusivity rule, the only place it is written: a device is free when it is
    not in use, a VF's PF is not in use, and no VF of a PF is in use."""
    if address in in_use:
        return False
    if parent_addr:
        return parent_addr not in in_use
    return address not in pfs_with_busy_vf


def group_pools(members: Iterable[Member[K]], in_use: Mapping[str, str | None],
                releasing: AbstractSet[str] = frozenset()) -> dict[K, Group[K]]:
    """Group ``members`` by key with their free, used and releasing devices.

    ``in_use`` maps the address of every device of the host that is handed out or releasing
    (pool member or not) to its PF's address (``None`` for a PF or a plain PCI device); it is
    what exclusivity is decided on (a releasing VF is still attached somewhere: its PF is not
    free either). ``releasing``: which of those are releasing rather than used."""
    pfs_with_busy_vf = {parent for parent in in_use.values() if parent}
    groups: dict[K, Group[K]] = {}
    for m in members:
        group = groups.get(m.key)
        if group is None:
            group = groups[m.key] = Group()
        group.devices.append(m.address)
        if m.address in releasing:
            group.releasing.append(m.address)
        elif m.address in in_use:
            group.used.append(m.address)
        elif m.assignable and is_free(m.address, m.parent_addr, in_use, pfs_with_busy_vf):
            group.free.append(m.address)
    return groups


def compute_pools(matcher: HostMatcher, in_use: AbstractSet[str] = frozenset()) -> list[Pool]:
    """The pools of the matcher's host, sorted by key. ``in_use`` holds the addresses of
    devices already handed out (addresses that are not on the host are ignored)."""
    by_address = matcher.host.by_address
    busy = {a: by_address[a].parent_addr or None for a in in_use if a in by_address}
    tags_of: dict[PoolKey, tuple[Mapping[str, Any], int]] = {}
    members: list[Member[PoolKey]] = []
    for dev, match in matcher.matches():
        if match is None:
            continue
        key = pool_key(dev, match.tags)
        tags_of.setdefault(key, (match.tags, match.spec_index))
        members.append(Member(key, dev.address, dev.parent_addr or None))
    return [
        Pool(key=k, tags=dict(tags_of[k][0]), devices=tuple(g.devices),
             free_devices=tuple(g.free), spec_index=tags_of[k][1])
        for k, g in sorted(group_pools(members, busy).items(), key=lambda kv: _order(kv[0]))
    ]
