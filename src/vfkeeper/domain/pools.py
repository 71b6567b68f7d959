"""Pools: a host's assignable devices grouped by what a request can ask for.

A pool is every device of one host that a spec matched and that shares one key: physical
network, vendor and product ID, NUMA node, device type, parent PF (for VFs) and the remaining
tags of the spec that matched. ``total`` counts the pool's devices, ``free`` those that can be
handed out now, with PF/VF exclusivity: a PF is not free while any of its VFs is in use, and a
VF is not free while its PF is.

    pools = compute_pools(specs.bind(host), in_use={"0000:3b:00.2"})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any

from vfkeeper.domain.devspec import DeviceView, HostMatcher


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


def _busy_families(matcher: HostMatcher, in_use: AbstractSet[str]) -> tuple[set[str], set[str]]:
    """PFs with a VF in use, and PFs in use themselves."""
    pfs_with_busy_vf: set[str] = set()
    busy_pfs: set[str] = set()
    for address in in_use:
        dev = matcher.host.by_address.get(address)
        if dev is None:
            continue
        if dev.parent_addr:
            pfs_with_busy_vf.add(dev.parent_addr)
        else:
            busy_pfs.add(dev.address)
    return pfs_with_busy_vf, busy_pfs


def is_free(dev: DeviceView, in_use: AbstractSet[str], pfs_with_busy_vf: AbstractSet[str],
            busy_pfs: AbstractSet[str]) -> bool:
    if dev.address in in_use:
        return False
    if dev.parent_addr:
        return dev.parent_addr not in busy_pfs
    return dev.address not in pfs_with_busy_vf


def compute_pools(matcher: HostMatcher, in_use: AbstractSet[str] = frozenset()) -> list[Pool]:
    """The pools of the matcher's host, sorted by key. ``in_use`` holds the addresses of
    devices already handed out (addresses that are not on the host are ignored)."""
    pfs_with_busy_vf, busy_pfs = _busy_families(matcher, in_use)
    groups: dict[PoolKey, tuple[Mapping[str, Any], int, list[str], list[str]]] = {}
    for dev, match in matcher.matches():
        if match is None:
            continue
        key = pool_key(dev, match.tags)
        _, _, devices, free = groups.setdefault(key, (match.tags, match.spec_index, [], []))
        devices.append(dev.address)
        if is_free(dev, in_use, pfs_with_busy_vf, busy_pfs):
            free.append(dev.address)
    return [
        Pool(key=k, tags=dict(t), devices=tuple(d), free_devices=tuple(f), spec_index=i)
        for k, (t, i, d, f) in sorted(groups.items(), key=lambda kv: _order(kv[0]))
    ]
