"""Properties of the scheduler against a brute-force oracle, on small random clusters.

The oracle knows only the documented rules (docs/scheduler.md): which NUMA nodes a policy
accepts, free counts, trust tags, and PF/VF exclusivity. It tries every assignment of every
device to every pool, so it shares no code or shortcut with the scheduler.
"""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vfkeeper.scheduler import (
    HostView,
    InstanceRequest,
    NoValidHost,
    PciRequest,
    Placement,
    PoolView,
    apply_placement,
    schedule,
)

NODES = st.sampled_from([0, 1, None])


@st.composite
def hosts(draw: st.DrawFn, name: str) -> HostView:
    pools: list[PoolView] = []
    for j in range(draw(st.integers(1, 4))):
        addr = f"0000:0{j}:00.0"
        physnet = draw(st.sampled_from(["a", "b"]))
        node = draw(NODES)
        tags = (("trusted", "true"),) if draw(st.booleans()) else ()
        total = draw(st.integers(1, 4))
        pf_taken = draw(st.integers(0, 5)) == 0  # handed out whole: its VFs are not free
        used = total if pf_taken else draw(st.sampled_from([0, 0, draw(st.integers(0, total))]))
        free = total - used
        pools.append(PoolView(physnet, "type-VF", node, "15b3", "101e", addr, free, total, tags))
        if draw(st.integers(0, 3)) > 0:  # the PF itself is assignable too (maybe another physnet)
            pf_free = 1 if used == 0 else 0
            pf_net = draw(st.sampled_from([physnet, physnet, "a", "b"]))
            pools.append(PoolView(pf_net, "type-PF", node, "15b3", "101d", addr, pf_free, 1, tags))
    return HostView(
        name,
        tuple(pools),
        enabled=draw(st.integers(0, 7)) > 0,
        agent_alive=draw(st.integers(0, 7)) > 0,
    )


@st.composite
def clusters(draw: st.DrawFn) -> list[HostView]:
    n = draw(st.integers(0, 4))
    return [draw(hosts(f"host-{i}")) for i in range(n)]


@st.composite
def requests(draw: st.DrawFn) -> InstanceRequest:
    reqs = []
    for i in range(draw(st.integers(1, 3))):
        dev_type = draw(st.sampled_from(["type-VF", "type-VF", "type-PF"]))
        reqs.append(
            PciRequest(
                f"r{i}",
                draw(st.sampled_from(["a", "b"])),
                dev_type,
                1 if dev_type == "type-PF" else draw(st.integers(1, 2)),
                draw(st.sampled_from([None, None, None, True, False])),
            )
        )
    return InstanceRequest(
        tuple(reqs),
        numa_policy=draw(st.sampled_from([None, "required", "legacy", "preferred"])),
        instance_numa_node=draw(st.sampled_from([None, 0, 1])),
        weigher=draw(st.sampled_from(["pack", "spread"])),
    )


# --- the oracle -----------------------------------------------------------------------------------


def acceptable_node_sets(req: InstanceRequest, h: HostView) -> list[set[int | None] | None]:
    """Sets of NUMA nodes whose devices may serve the whole instance (None: any node)."""
    policy, node = req.numa_policy, req.instance_numa_node
    if policy is None and node is not None:
        policy = "legacy"
    nodes = sorted({p.numa_node for p in h.pools if p.numa_node is not None})
    if policy is None or policy == "preferred":
        return [None]
    if node is not None:
        return [{node}] if policy == "required" else [{node, None}]
    if policy == "required":
        return [{n} for n in nodes]
    return [None]  # legacy without an instance node: no NUMA rule, as Nova without a topology


def matches(p: PoolView, r: PciRequest, allowed: set[int | None] | None) -> bool:
    return (
        p.physical_network == r.physical_network
        and p.dev_type == r.dev_type
        and (r.trusted is None or p.trusted == r.trusted)
        and (allowed is None or p.numa_node in allowed)
    )


def valid_assignment(pools: list[PoolView]) -> bool:
    used = Counter(id(p) for p in pools)
    by_id = {id(p): p for p in pools}
    if any(n > by_id[i].free for i, n in used.items()):
        return False
    whole = {p.parent_pf for p in pools if p.dev_type == "type-PF"}
    return not any(p.dev_type == "type-VF" and p.parent_pf in whole for p in pools)


def oracle_fits(req: InstanceRequest, h: HostView) -> bool:
    if not (h.enabled and h.agent_alive):
        return False
    units = [r for r in req.pci_requests for _ in range(r.count)]
    for allowed in acceptable_node_sets(req, h):
        options = [[p for p in h.pools if matches(p, r, allowed)] for r in units]
        if any(valid_assignment(list(choice)) for choice in itertools.product(*options)):
            return True
    return False


def check_placement(req: InstanceRequest, h: HostView, p: Placement) -> None:
    assert h.enabled and h.agent_alive
    pools = {q.key: q for q in h.pools}
    taken: Counter[object] = Counter()
    for r in req.pci_requests:
        allocs = p.pools_for(r.request_id)
        assert sum(a.count for a in allocs) == r.count
        for a in allocs:
            assert matches(pools[a.pool], r, None)
            taken[a.pool] += a.count
    assert set(taken) <= set(pools)
    for key, n in taken.items():
        assert n <= pools[key].free, "a pool gave more than it has free"  # type: ignore[index]
    whole = {k.parent_pf for k in taken if k.dev_type == "type-PF"}  # type: ignore[attr-defined]
    parents = {k.parent_pf for k in taken if k.dev_type == "type-VF"}  # type: ignore[attr-defined]
    assert not whole & parents, "a PF and one of its VFs in one placement"
    used_nodes = {k.numa_node for k in taken}  # type: ignore[attr-defined]
    sets = acceptable_node_sets(req, h)
    assert any(s is None or used_nodes <= s for s in sets), (used_nodes, sets)
    policy = req.numa_policy or ("legacy" if req.instance_numa_node is not None else None)
    if policy == "required":
        assert used_nodes == {p.numa_node}
    if policy == "legacy" and p.numa_node is not None:  # None: the no-NUMA-rule fallback
        assert used_nodes <= {p.numa_node, None}


# --- properties -----------------------------------------------------------------------------------


SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(cluster=clusters(), req=requests())
def test_a_placement_exists_exactly_when_the_oracle_finds_one(
    cluster: list[HostView], req: InstanceRequest
) -> None:
    result = schedule(req, cluster)
    feasible = [h.name for h in cluster if oracle_fits(req, h)]
    if isinstance(result, NoValidHost):
        assert feasible == [], result.explanation()
        assert [r.host for r in result.rejections] == [h.name for h in cluster]
        assert all(r.reason for r in result.rejections)
    else:
        assert result.host in feasible
        check_placement(req, next(h for h in cluster if h.name == result.host), result)


@SETTINGS
@given(cluster=clusters(), req=requests())
def test_the_weigher_picks_the_best_feasible_host(
    cluster: list[HostView], req: InstanceRequest
) -> None:
    result = schedule(req, cluster)
    if not isinstance(result, Placement):
        return
    # the group asked the most (first on ties), on the instance's node under policy required
    asked: dict[tuple[str, str], int] = {}
    for r in req.pci_requests:
        key = (r.physical_network, r.dev_type)
        asked[key] = asked.get(key, 0) + r.count
    main = max(asked, key=lambda k: asked[k])
    node_only = req.numa_policy == "required" and req.instance_numa_node is not None

    def free(h: HostView) -> int:
        return sum(
            p.free
            for p in h.pools
            if (p.physical_network, p.dev_type) == main
            and (not node_only or p.numa_node == req.instance_numa_node)
        )

    sign = 1 if req.weigher == "pack" else -1
    best = min((h for h in cluster if oracle_fits(req, h)), key=lambda h: (sign * free(h), h.name))
    assert result.host == best.name


@SETTINGS
@given(cluster=clusters(), reqs=st.lists(requests(), min_size=1, max_size=6))
def test_consuming_placements_never_overdraws_a_pool(
    cluster: list[HostView], reqs: list[InstanceRequest]
) -> None:
    """Boot several instances in a row, applying each placement: every one is valid against the
    view it was made on, and free counts never go negative."""
    views = {h.name: h for h in cluster}
    for req in reqs:
        result = schedule(req, list(views.values()))
        if isinstance(result, Placement):
            check_placement(req, views[result.host], result)
            views[result.host] = apply_placement(views[result.host], result)
            assert all(p.free >= 0 for p in views[result.host].pools)
