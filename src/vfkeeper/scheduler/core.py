"""``schedule()``, the scheduler's entry point; ``apply_placement()`` to simulate a claim."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable

from vfkeeper.scheduler.cluster import ClusterView
from vfkeeper.scheduler.errors import InvalidHostViewError
from vfkeeper.scheduler.filters import first_rejection, prepare
from vfkeeper.scheduler.model import HostView, InstanceRequest, PoolKey
from vfkeeper.scheduler.result import NoValidHost, Placement, PoolAllocation, Rejection
from vfkeeper.scheduler.state import DecisionState


def schedule(
    request: InstanceRequest,
    hosts: ClusterView | Iterable[HostView],
    *,
    exclude: Iterable[str] = (),
    avoid: Collection[str] = (),
) -> Placement | NoValidHost:
    """Pick a host and, per PCI request, the pools to take devices from; or explain every host.

    ``hosts`` is a :class:`ClusterView` (fast: keep one and upsert changed hosts) or any iterable
    of host views (indexed on the fly). ``exclude`` names hosts to skip for this attempt, e.g. a
    host whose claim just lost a race; they are still explained if nothing fits.

    ``avoid`` names hosts to pass over when another host fits, e.g. hosts this controller is
    claiming on right now: the best fitting host not in ``avoid`` wins, and only if every
    fitting host is in ``avoid`` does the best of them win. Concurrent boots then land on
    different hosts instead of queueing on one host's lock. Without ``avoid`` the answer is the
    weigher's first choice.
    """
    cluster = hosts if isinstance(hosts, ClusterView) else ClusterView(hosts)
    state = DecisionState.build(request, frozenset(exclude))
    prepare(state)
    fallback: HostView | None = None
    for host in _candidates(cluster, state):
        if first_rejection(host, state) is not None:
            continue
        if host.name not in avoid:
            return _placement(host, state)
        fallback = fallback or host
    if fallback is not None:
        return _placement(fallback, state)
    return _explain(cluster, state)


def _candidates(cluster: ClusterView, state: DecisionState) -> Iterable[HostView]:
    """Hosts worth running the filters on, best first by the request's weigher."""
    hint = state.request.host_hint
    if hint is not None:
        host = cluster.get(hint)
        return () if host is None else (host,)
    if state.main_key is None:
        schedulable = [h for h in cluster.hosts() if h.schedulable]
        return sorted(schedulable, key=state.weigher.host_order)  # stable: ties in name order
    return cluster.walk(state.main_key, state.main_need, state.weigher.descending)


def _placement(host: HostView, state: DecisionState) -> Placement:
    target, assignment = state.fits[host.shape]
    reqs = state.request.pci_requests
    allocations = tuple(
        PoolAllocation(reqs[r].request_id, host.pools[i].key, n)
        for r, i, n in sorted(assignment, key=lambda a: a[0])
    )
    return Placement(host.name, allocations, target.node, state.weigher.name)


def _explain(cluster: ClusterView, state: DecisionState) -> Placement | NoValidHost:
    rejections: list[Rejection] = []
    for host in cluster.hosts():
        rejected = first_rejection(host, state)
        if rejected is None:
            # Only reachable if the index missed a host that fits; answering correctly beats
            # answering fast.
            return _placement(host, state)
        name, reason = rejected
        rejections.append(Rejection(host.name, name, reason + _releasing(host, state, name)))
    problem = None
    hint = state.request.host_hint
    if hint is not None and hint not in cluster:
        problem = f"host hint {hint} names no known host; check the name with `vfkeeper host list`"
    elif len(cluster) == 0:
        problem = "the cluster has no hosts yet; start vfkeeper-agent on a host so it registers"
    return NoValidHost(tuple(rejections), problem)


_ABOUT_THE_HOST = frozenset({"excluded", "host_hint"})
"""Rejections that are not about what the host has: no releasing devices are named."""


def _releasing(host: HostView, state: DecisionState, rejected_by: str) -> str:
    """``; 1 releasing on host host-a (...)`` when devices of the physical networks asked are
    still held for instances that let them go (only the host can say when they are free)."""
    if rejected_by in _ABOUT_THE_HOST or not host.releasing:
        return ""
    count = sum(host.releasing.get(physnet, 0) for physnet in {d.key[0] for d in state.demands})
    if not count:
        return ""
    return (f"; {count} releasing on host {host.name} (freed, not yet given back by its agent: "
            "free once it reports them detached and restored)")


def apply_placement(host: HostView, placement: Placement) -> HostView:
    """``host`` after ``placement``'s devices are taken: free counts go down, a PF taken whole
    empties its VF pools, and a PF with a VF taken can no longer be handed out whole. This is
    what the pool computation reports after the claim; the benchmark and tests use it to
    simulate consumption without a store."""
    if placement.host != host.name:
        raise InvalidHostViewError(
            host.name,
            f"a placement for host {placement.host} was applied to it",
            "apply a placement to the host it names",
        )
    taken: dict[PoolKey, int] = {}
    for a in placement.allocations:
        taken[a.pool] = taken.get(a.pool, 0) + a.count
    whole = {k.parent_pf for k in taken if k.dev_type == "type-PF"}
    parents = {k.parent_pf for k in taken if k.dev_type == "type-VF"}
    pools = []
    for pool in host.pools:
        free = pool.free - taken.pop(pool.key, 0)
        if free < 0:
            raise InvalidHostViewError(
                host.name,
                f"the placement takes more devices than pool {pool.key} has free",
                "re-run the scheduler on the host's current view",
            )
        blocked = whole if pool.dev_type == "type-VF" else parents
        pools.append(pool.with_free(0 if pool.parent_pf in blocked else free))
    if taken:
        raise InvalidHostViewError(
            host.name,
            f"the placement names pools the host does not have: {sorted(map(str, taken))}",
            "re-run the scheduler on the host's current view",
        )
    return dataclasses.replace(host, pools=tuple(pools))
