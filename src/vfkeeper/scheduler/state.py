"""Per-decision state: the request digested once, and the NUMA targets a host can be tried with.

:class:`DecisionState` is built once per ``schedule()`` call from the request alone; filters
read it and the last filter caches the assignment it found, so that the winning host is not
searched twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vfkeeper.scheduler.model import (
    ANY_NODE,
    GroupKey,
    HostView,
    IndexKey,
    InstanceRequest,
    NumaPolicy,
    Shape,
)
from vfkeeper.scheduler.weighers import WEIGHERS, Weigher

if TYPE_CHECKING:
    from vfkeeper.scheduler.filters import Filter

    Chain = tuple[Filter, ...]

Assignment = tuple[tuple[int, int, int], ...]
"""``(index of the PCI request, index of the host's pool, device count)`` triples."""
Verdict = tuple[str, str] | None
"""``(filter name, reason)`` of a rejection, or ``None`` for a host that fits."""


@dataclass(frozen=True, slots=True)
class Demand:
    """What the request asks of one (physical network, device type) group, by trust tag."""

    key: GroupKey
    trusted: int
    """Devices that must come from pools tagged ``trusted=true``."""
    untrusted: int
    """Devices that must come from pools not tagged ``trusted=true``."""
    total: int
    """All devices of the group, including those that take either."""


@dataclass(frozen=True, slots=True)
class Target:
    """One way to try a host: devices from NUMA nodes ``allowed`` (``None``: any), preferring
    ``node``. ``node`` is also what the placement reports as the instance's NUMA node."""

    node: int | None
    allowed: frozenset[int | None] | None


@dataclass(slots=True)
class DecisionState:
    """The request, digested once per decision."""

    request: InstanceRequest
    policy: NumaPolicy | None
    """The effective policy: ``legacy`` when the request gives a node but no policy."""
    weigher: Weigher
    demands: tuple[Demand, ...]
    main_key: IndexKey | None
    """Index key of the group hosts are weighed by (see weighers); ``None`` without PCI requests."""
    main_need: int
    exclude: frozenset[str]
    req_keys: tuple[tuple[GroupKey, bool | None], ...]
    """Per PCI request: its group and its trust requirement."""
    pf_reqs: tuple[tuple[int, int], ...]
    """``(request index, count)`` of the PF requests, trust-tagged ones first."""
    vf_reqs: tuple[tuple[int, int], ...]
    """The same for VF requests."""
    verdicts: dict[Shape, Verdict] = field(default_factory=dict)
    """Memo of the content filters' verdict per host shape (hosts with one shape agree)."""
    count_verdicts: dict[tuple[object, ...], Verdict] = field(default_factory=dict)
    """Memo of the ``counts_only`` filters' verdict per capped counts (see filters)."""
    fits: dict[Shape, tuple[Target, Assignment]] = field(default_factory=dict)
    """The assignment found for each shape that fits."""
    chains: tuple[Chain, Chain, Chain] = ((), (), ())
    """Active filters that use the name, the whole host, and only capped counts (see filters)."""
    _targets: dict[tuple[int, ...], tuple[Target, ...]] = field(default_factory=dict)

    @classmethod
    def build(cls, request: InstanceRequest, exclude: frozenset[str]) -> DecisionState:
        policy = request.numa_policy
        if policy is None and request.instance_numa_node is not None:
            policy = "legacy"
        demands = _demands(request)
        main_key: IndexKey | None = None
        main_need = 0
        if demands:
            main = max(demands, key=lambda d: d.total)  # first of the largest, in request order
            node = ANY_NODE
            if policy == "required" and request.instance_numa_node is not None:
                node = request.instance_numa_node
            main_key = (*main.key, node)
            main_need = main.total
        reqs = request.pci_requests
        return cls(
            request=request,
            policy=policy,
            weigher=WEIGHERS[request.weigher],
            demands=demands,
            main_key=main_key,
            main_need=main_need,
            exclude=exclude,
            req_keys=tuple(((r.physical_network, r.dev_type), r.trusted) for r in reqs),
            pf_reqs=_by_constraint(request, "type-PF"),
            vf_reqs=_by_constraint(request, "type-VF"),
        )

    def targets(self, host: HostView) -> tuple[Target, ...]:
        """The NUMA targets to try on ``host``, most affine first (see docs/scheduler.md)."""
        found = self._targets.get(host.nodes)
        if found is None:
            found = self._targets[host.nodes] = self._make_targets(host.nodes)
        return found

    def acceptance(self, host: HostView) -> tuple[Target, ...]:
        """The loosest targets: the host is acceptable for the NUMA policy iff one of these is.
        (The stricter ones are only tried first to get better affinity.)"""
        if self.policy in ("legacy", "preferred") and self.request.instance_numa_node is None:
            return (Target(None, None),)
        return self.targets(host)

    def _make_targets(self, nodes: tuple[int, ...]) -> tuple[Target, ...]:
        node = self.request.instance_numa_node
        if self.policy is None:
            return (Target(None, None),)
        if node is not None:
            return (Target(node, _allowed(self.policy, node)),)
        strict = tuple(Target(n, frozenset({n})) for n in nodes)
        if self.policy == "required":
            return strict
        # legacy / preferred without an instance node: Nova applies no NUMA rule to an instance
        # without a NUMA topology; vfkeeper still tries for affinity first, then takes any device
        relaxed = tuple(Target(n, frozenset({n, None})) for n in nodes)
        return (*strict, *relaxed, Target(None, None))


def _allowed(policy: NumaPolicy, node: int) -> frozenset[int | None] | None:
    if policy == "required":
        return frozenset({node})
    if policy == "legacy":
        return frozenset({node, None})
    return None


def _demands(request: InstanceRequest) -> tuple[Demand, ...]:
    counts: dict[GroupKey, list[int]] = {}
    for req in request.pci_requests:
        c = counts.setdefault((req.physical_network, req.dev_type), [0, 0, 0])
        if req.trusted is True:
            c[0] += req.count
        elif req.trusted is False:
            c[1] += req.count
        c[2] += req.count
    return tuple(Demand(k, t, u, n) for k, (t, u, n) in counts.items())


def _by_constraint(request: InstanceRequest, dev_type: str) -> tuple[tuple[int, int], ...]:
    """``(request index, count)`` of one device type, trust-tagged requests first (filling the
    most constrained requests first makes greedy filling exact)."""
    reqs = [
        (r, req.count, req.trusted is None)
        for r, req in enumerate(request.pci_requests)
        if req.dev_type == dev_type
    ]
    reqs.sort(key=lambda t: t[2])
    return tuple((r, c) for r, c, _ in reqs)
