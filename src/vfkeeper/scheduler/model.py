"""The scheduler's input values: what a host offers and what an instance asks for.

The controller builds these from its store (it maps ``vfkeeper.domain.pools`` into
:class:`PoolView`); the scheduler never reads anything else. All values are frozen. A
:class:`HostView` precomputes its per-physnet and per-NUMA-node aggregates once, when it is built,
so that a scheduling decision costs the same whether a PF has 8 VFs or 256: pools are counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from vfkeeper.scheduler.errors import InvalidHostViewError, InvalidRequestError

DevType = Literal["type-VF", "type-PF"]
NumaPolicy = Literal["required", "preferred", "legacy"]
WeigherName = Literal["pack", "spread"]

DEV_TYPES: tuple[DevType, ...] = ("type-VF", "type-PF")
NUMA_POLICIES: tuple[NumaPolicy, ...] = ("required", "preferred", "legacy")
ANY_NODE = -1
"""Index key component meaning "summed over every NUMA node, and devices without one"."""

GroupKey = tuple[str, DevType]
"""(physical network, device type): devices of one group are interchangeable but for NUMA/tags."""
IndexKey = tuple[str, DevType, int]
"""(physical network, device type, NUMA node or :data:`ANY_NODE`)."""

_TRUE_WORDS = frozenset({"true", "1", "yes", "on"})


@dataclass(frozen=True, slots=True)
class PoolKey:
    """Names one pool of one host exactly; the controller picks concrete devices by it."""

    physical_network: str
    dev_type: DevType
    parent_pf: str
    """For a VF pool, the address of the VFs' PF; for a PF pool, the PF's own address."""
    numa_node: int | None
    vendor_id: str
    product_id: str
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PoolView:
    """Free and total devices of one pool on one host.

    A VF pool holds VFs of one PF (``parent_pf``). A PF pool stands for exactly one PF
    (``total == 1``, ``parent_pf`` is its own address); its ``free`` is 0 when any of its VFs is
    in use, and a VF pool's ``free`` is 0 while its PF is handed out whole (the pool computation
    reports that; the scheduler adds the same rule between the devices of one placement).
    """

    physical_network: str
    dev_type: DevType
    numa_node: int | None
    vendor_id: str
    product_id: str
    parent_pf: str
    free: int
    total: int
    tags: tuple[tuple[str, str], ...] = ()
    releasing: int = 0
    """Devices freed by the controller that the host has not given back yet: counted in
    ``total``, never in ``free`` (the controller says why a request does not fit with them)."""
    trusted: bool = field(init=False, repr=False, compare=False)
    key: PoolKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        tags = tuple(sorted(self.tags))
        object.__setattr__(self, "tags", tags)
        trusted = any(k == "trusted" and v.strip().lower() in _TRUE_WORDS for k, v in tags)
        object.__setattr__(self, "trusted", trusted)
        key = PoolKey(
            self.physical_network,
            self.dev_type,
            self.parent_pf,
            self.numa_node,
            self.vendor_id,
            self.product_id,
            tags,
        )
        object.__setattr__(self, "key", key)

    def with_free(self, free: int) -> PoolView:
        """The same pool with another free count (cheap: the key is reused, not rebuilt)."""
        if not 0 <= free <= self.total:
            raise InvalidHostViewError(
                "?",
                f"pool {self.parent_pf} would get free={free} outside 0..total={self.total}",
                "recompute the host's pools from its inventory and allocations",
            )
        new = object.__new__(PoolView)
        for name in PoolView.__slots__:
            object.__setattr__(new, name, getattr(self, name))
        object.__setattr__(new, "free", free)
        return new


class Shape:
    """Everything about a host the filters read, except its name, hashed once.

    Hosts with equal shapes get equal verdicts, so one decision judges each shape once; a
    homogeneous cluster is judged in a few steps however many hosts it has.
    """

    __slots__ = ("_hash", "sig")

    def __init__(self, sig: tuple[object, ...]) -> None:
        self.sig = sig
        self._hash = hash(sig)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, Shape) and self._hash == other._hash and self.sig == other.sig
        )


def _check_pool(host: str, pool: PoolView) -> None:
    if pool.dev_type not in DEV_TYPES:
        raise InvalidHostViewError(
            host, f"pool {pool.parent_pf} has dev_type {pool.dev_type!r}", "use type-VF or type-PF"
        )
    if not 0 <= pool.free <= pool.total:
        raise InvalidHostViewError(
            host,
            f"pool {pool.physical_network}/{pool.parent_pf} has free={pool.free} "
            f"outside 0..total={pool.total}",
            "recompute the host's pools from its inventory and allocations",
        )
    if not 0 <= pool.releasing <= pool.total - pool.free:
        raise InvalidHostViewError(
            host,
            f"pool {pool.physical_network}/{pool.parent_pf} has releasing={pool.releasing} "
            f"outside 0..total-free={pool.total - pool.free}",
            "recompute the host's pools from its inventory, allocations and releases",
        )
    if pool.dev_type == "type-PF" and pool.total != 1:
        raise InvalidHostViewError(
            host,
            f"PF pool {pool.parent_pf} has total={pool.total}",
            "give every PF its own pool, keyed by the PF's address, with total=1",
        )
    if pool.numa_node is not None and pool.numa_node < 0:
        raise InvalidHostViewError(
            host,
            f"pool {pool.parent_pf} has NUMA node {pool.numa_node}",
            "use None for a device without NUMA affinity (sysfs numa_node -1)",
        )


def _sums(per_node: dict[GroupKey, tuple[tuple[int | None, int, int], ...]]
          ) -> dict[GroupKey, tuple[int, int]]:  # fmt: skip
    """``(trusted, untrusted)`` summed over every node, per group."""
    return {g: (sum(t for _, t, _ in v), sum(u for _, _, u in v)) for g, v in per_node.items()}


@dataclass(frozen=True, slots=True)
class HostView:
    """What one host offers, as the scheduler sees it.

    ``agent_last_seen`` is only used to explain a silent agent; whether the agent counts as alive
    is the controller's decision (``agent_alive``), so the scheduler needs no clock.
    ``agent_problem``: why the host's agent cannot reconcile it (its own words), or ``None``.
    """

    name: str
    pools: tuple[PoolView, ...] = ()
    enabled: bool = True
    agent_alive: bool = True
    numa_nodes: tuple[int, ...] | None = None
    disabled_reason: str | None = None
    agent_last_seen: datetime | None = None
    agent_problem: str | None = None
    # Derived once in __post_init__; a decision only reads them.
    nodes: tuple[int, ...] = field(init=False, repr=False, compare=False)
    """Known NUMA nodes: ``numa_nodes`` and every pool's node, ascending."""
    group_pools: dict[GroupKey, tuple[int, ...]] = field(init=False, repr=False, compare=False)
    """Indices into ``pools`` per group."""
    group_numa: dict[GroupKey, tuple[tuple[int | None, int, int], ...]] = field(
        init=False, repr=False, compare=False
    )
    """Per group: ``(NUMA node, free trusted, free untrusted)`` per node (``None`` included)."""
    group_total: dict[GroupKey, tuple[int, int]] = field(init=False, repr=False, compare=False)
    """Per group: ``(free trusted, free untrusted)`` over all nodes."""
    group_size_numa: dict[GroupKey, tuple[tuple[int | None, int, int], ...]] = field(
        init=False, repr=False, compare=False
    )
    """Per group: ``(NUMA node, trusted, untrusted)`` devices per node, free or not."""
    group_size: dict[GroupKey, tuple[int, int]] = field(init=False, repr=False, compare=False)
    """Per group: ``(trusted, untrusted)`` devices over all nodes, free or not: what the host
    could give if nothing were in use (a request for more never fits)."""
    index_free: dict[IndexKey, int] = field(init=False, repr=False, compare=False)
    releasing: dict[str, int] = field(init=False, repr=False, compare=False)
    """Per physical network: devices not given back by the host yet (see
    :attr:`PoolView.releasing`)."""
    total_free: int = field(init=False, repr=False, compare=False)
    shape: Shape = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        seen: set[PoolKey] = set()
        groups: dict[GroupKey, list[int]] = {}
        per_node: dict[GroupKey, dict[int | None, list[int]]] = {}
        index: dict[IndexKey, int] = {}
        releasing: dict[str, int] = {}
        nodes = set(self.numa_nodes or ())
        for i, pool in enumerate(self.pools):
            if pool.releasing:
                releasing[pool.physical_network] = (releasing.get(pool.physical_network, 0)
                                                    + pool.releasing)
            _check_pool(self.name, pool)
            if pool.key in seen:
                raise InvalidHostViewError(
                    self.name, f"two pools share the key {pool.key}", "merge them into one pool"
                )
            seen.add(pool.key)
            gkey: GroupKey = (pool.physical_network, pool.dev_type)
            groups.setdefault(gkey, []).append(i)
            counts = per_node.setdefault(gkey, {}).setdefault(pool.numa_node, [0, 0, 0, 0])
            counts[0 if pool.trusted else 1] += pool.free
            counts[2 if pool.trusted else 3] += pool.total
            any_key: IndexKey = (*gkey, ANY_NODE)
            index[any_key] = index.get(any_key, 0) + pool.free
            if pool.numa_node is not None:
                nodes.add(pool.numa_node)
                node_key: IndexKey = (*gkey, pool.numa_node)
                index[node_key] = index.get(node_key, 0) + pool.free
        group_numa = {
            g: tuple((n, c[0], c[1]) for n, c in by.items()) for g, by in per_node.items()
        }
        group_size_numa = {
            g: tuple((n, c[2], c[3]) for n, c in by.items()) for g, by in per_node.items()
        }
        sig = (
            self.enabled,
            self.agent_alive,
            self.disabled_reason,
            self.agent_last_seen,
            self.agent_problem,
            tuple(sorted(nodes)),
            tuple(
                (
                    p.physical_network,
                    p.dev_type,
                    p.parent_pf,
                    p.numa_node,
                    p.vendor_id,
                    p.product_id,
                    p.tags,
                    p.free,
                    p.total,
                    p.releasing,
                )
                for p in self.pools
            ),
        )
        setattr_ = object.__setattr__
        setattr_(self, "nodes", sig[5])
        setattr_(self, "group_pools", {k: tuple(v) for k, v in groups.items()})
        setattr_(self, "group_numa", group_numa)
        setattr_(self, "group_total", _sums(group_numa))
        setattr_(self, "group_size_numa", group_size_numa)
        setattr_(self, "group_size", _sums(group_size_numa))
        setattr_(self, "index_free", index)
        setattr_(self, "releasing", releasing)
        setattr_(self, "total_free", sum(p.free for p in self.pools))
        setattr_(self, "shape", Shape(sig))

    @property
    def schedulable(self) -> bool:
        """Enabled by the operator, its agent alive and able to reconcile it."""
        return self.enabled and self.agent_alive and self.agent_problem is None


@dataclass(frozen=True, slots=True)
class PciRequest:
    """What one SR-IOV port needs: ``count`` devices of one type on one physical network.

    ``dev_type`` is ``type-VF`` for ``direct``/``macvtap`` ports, ``type-PF`` for
    ``direct-physical``. ``trusted``: ``True`` needs pools tagged ``trusted=true``, ``False``
    needs pools without that tag, ``None`` takes either.
    """

    request_id: str
    physical_network: str
    dev_type: DevType = "type-VF"
    count: int = 1
    trusted: bool | None = None

    def __post_init__(self) -> None:
        if not self.request_id:
            raise InvalidRequestError("request_id", self.request_id, "give every PCI request an id")
        if not self.physical_network:
            raise InvalidRequestError(
                "physical_network", self.physical_network, "name the port's physical network"
            )
        if self.dev_type not in DEV_TYPES:
            raise InvalidRequestError(
                "dev_type",
                self.dev_type,
                "use type-VF (direct, macvtap) or type-PF (direct-physical)",
            )
        if self.count < 1:
            raise InvalidRequestError("count", self.count, "ask for at least one device")


@dataclass(frozen=True, slots=True)
class InstanceRequest:
    """Everything the scheduler needs about one instance to be booted.

    ``numa_policy`` follows Nova's ``hw:pci_numa_affinity_policy`` (see docs/scheduler.md);
    ``None`` means ``legacy`` when ``instance_numa_node`` is given and no NUMA constraint
    otherwise. ``host_hint`` pins the instance to one host.
    """

    pci_requests: tuple[PciRequest, ...] = ()
    numa_policy: NumaPolicy | None = None
    host_hint: str | None = None
    weigher: WeigherName = "pack"
    instance_numa_node: int | None = None

    def __post_init__(self) -> None:
        ids = [r.request_id for r in self.pci_requests]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise InvalidRequestError(
                "request_id", dupes[0], "each PCI request needs its own request_id"
            )
        if self.numa_policy is not None and self.numa_policy not in NUMA_POLICIES:
            raise InvalidRequestError(
                "numa_policy", self.numa_policy, "use required, preferred or legacy"
            )
        if self.instance_numa_node is not None and self.instance_numa_node < 0:
            raise InvalidRequestError(
                "instance_numa_node", self.instance_numa_node, "NUMA nodes are numbered from 0"
            )
        if self.weigher not in ("pack", "spread"):
            raise InvalidRequestError("weigher", self.weigher, "use pack or spread")
