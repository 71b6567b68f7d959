"""Properties of the scheduler against a brute-force oracle, on small random clusters.

The oracle knows only the documented rules (docs/scheduler.md): which NUMA nodes a policy
accepts, free counts, trust tags, and PF/VF exclusivity. It tries every assignment of every
device to every pool, so it shares no code or shortcut with the scheduler.

The first property runs on random clusters (most requests then fit nowhere, and the oracle
must agree); the weigher and consumption properties run on clusters built with room for the
request, so that every example places something and checks it.
"""

from __future__ import annotations

import itertools
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vfkeeper.scheduler import (
    FILTERS,
    HostView,
    InstanceRequest,
    NoValidHost,
    PciRequest,
    Placement,
    PoolKey,
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


@st.composite
def room_for(draw: st.DrawFn, req: InstanceRequest, name: str) -> HostView:
    """A host with room for ``req`` by construction: a random host plus, per PCI request, a PF
    of its own with enough free devices of the request's physnet, type and trust, all on one
    NUMA node (the instance's, if it names one), so every policy accepts them."""
    node = req.instance_numa_node
    if node is None:
        node = draw(st.sampled_from([0, 1]))
    room: list[PoolView] = []
    for i, r in enumerate(req.pci_requests):
        trusted = draw(st.booleans()) if r.trusted is None else r.trusted
        tags = (("trusted", "true"),) if trusted else ()
        addr = f"0000:1{i}:00.0"
        if r.dev_type == "type-PF":
            room.append(PoolView(r.physical_network, "type-PF", node, "15b3", "101d", addr, 1, 1,
                                 tags))
            continue
        total = r.count + draw(st.integers(0, 2))
        free = draw(st.integers(r.count, total))
        room.append(PoolView(r.physical_network, "type-VF", node, "15b3", "101e", addr, free,
                             total, tags))
    base = draw(hosts(name))
    return HostView(name, base.pools + tuple(room))


@st.composite
def clusters_with_room(draw: st.DrawFn, req: InstanceRequest) -> list[HostView]:
    """1 to 4 hosts, some of them (at least one, anywhere in name order) with room for
    ``req``, so that the weigher often has several to choose from."""
    n = draw(st.integers(1, 4))
    roomy = draw(st.sets(st.integers(0, n - 1), min_size=1))
    return [draw(room_for(req, f"host-{i}")) if i in roomy else draw(hosts(f"host-{i}"))
            for i in range(n)]


@st.composite
def placeable(draw: st.DrawFn) -> tuple[list[HostView], InstanceRequest]:
    req = draw(requests())
    return draw(clusters_with_room(req)), req


@st.composite
def placeable_sequences(draw: st.DrawFn) -> tuple[list[HostView], list[InstanceRequest]]:
    """Requests to boot in a row, on a cluster with room for the first."""
    reqs = draw(st.lists(requests(), min_size=1, max_size=6))
    return draw(clusters_with_room(reqs[0])), reqs


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
    """Every documented rule of a placement on the view ``h`` it was made on."""
    assert p.host == h.name and h.enabled and h.agent_alive
    assert p.weigher == req.weigher
    pools = {q.key: q for q in h.pools}
    ids = {r.request_id for r in req.pci_requests}
    assert {a.request_id for a in p.allocations} <= ids, "an allocation for no request"
    taken: Counter[PoolKey] = Counter()
    for r in req.pci_requests:
        allocs = p.pools_for(r.request_id)
        assert allocs and all(a.count >= 1 for a in allocs), (r, allocs)
        assert sum(a.count for a in allocs) == r.count, (r, allocs)
        for a in allocs:
            assert a.pool in pools, f"pool {a.pool} is not on {h.name}"
            assert matches(pools[a.pool], r, None), (r, pools[a.pool])
            taken[a.pool] += a.count
    for key, n in taken.items():
        assert n <= pools[key].free, f"pool {key} gave {n}, has {pools[key].free} free"
    whole = {k.parent_pf for k in taken if k.dev_type == "type-PF"}
    parents = {k.parent_pf for k in taken if k.dev_type == "type-VF"}
    assert not whole & parents, "a PF and one of its VFs in one placement"
    check_numa(req, h, p, {k.numa_node for k in taken})


def check_numa(req: InstanceRequest, h: HostView, p: Placement, used: set[int | None]) -> None:
    """The policy's accepted nodes (docs/scheduler.md), and the node the placement names."""
    sets = acceptable_node_sets(req, h)
    assert any(s is None or used <= s for s in sets), (used, sets)
    policy = req.numa_policy or ("legacy" if req.instance_numa_node is not None else None)
    if req.instance_numa_node is not None:  # the devices were chosen for the instance's node
        assert p.numa_node == req.instance_numa_node, (p.numa_node, req)
    elif policy is None:  # no NUMA rule applied
        assert p.numa_node is None, p
    if policy == "required":
        assert p.numa_node is not None and used == {p.numa_node}, (used, p.numa_node)
    if policy == "legacy" and p.numa_node is not None:  # None: the no-NUMA-rule fallback
        assert used <= {p.numa_node, None}, (used, p.numa_node)


def after(h: HostView, p: Placement) -> dict[PoolKey, int]:
    """Each pool's free count once ``p``'s devices are taken, by the documented rules: the
    devices taken leave, a PF taken whole takes its VFs with it, a PF one of whose VFs is taken
    can no longer be handed out whole."""
    taken: Counter[PoolKey] = Counter()
    for a in p.allocations:
        taken[a.pool] += a.count
    whole = {k.parent_pf for k in taken if k.dev_type == "type-PF"}
    parents = {k.parent_pf for k in taken if k.dev_type == "type-VF"}
    out = {}
    for q in h.pools:
        blocked = whole if q.dev_type == "type-VF" else parents
        out[q.key] = 0 if q.parent_pf in blocked else q.free - taken[q.key]
    return out


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
        assert all(r.filter in FILTERS and r.reason for r in result.rejections), result
    else:
        assert result.host in feasible
        check_placement(req, next(h for h in cluster if h.name == result.host), result)


@SETTINGS
@given(case=placeable())
def test_the_weigher_picks_the_best_feasible_host(
    case: tuple[list[HostView], InstanceRequest],
) -> None:
    cluster, req = case
    feasible = [h for h in cluster if oracle_fits(req, h)]
    assert feasible, "the host built with room for the request must fit"
    result = schedule(req, cluster)
    assert isinstance(result, Placement), result.explanation()
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
    best = min(feasible, key=lambda h: (sign * free(h), h.name))
    assert result.host == best.name
    check_placement(req, best, result)


@SETTINGS
@given(case=placeable_sequences())
def test_consuming_placements_never_overdraws_a_pool(
    case: tuple[list[HostView], list[InstanceRequest]],
) -> None:
    """Boot several instances in a row, applying each placement: each is placed exactly when
    the oracle finds room on the views left by the earlier ones, each is valid against the view
    it was made on, each view after a claim is what the rules say, and over the whole sequence
    no pool gives more than it had free and no PF goes out whole next to one of its VFs."""
    cluster, reqs = case
    views = {h.name: h for h in cluster}
    start = {(h.name, q.key): q.free for h in cluster for q in h.pools}
    given_out: Counter[tuple[str, PoolKey]] = Counter()
    placed = 0
    for req in reqs:
        feasible = [h.name for h in views.values() if oracle_fits(req, h)]
        result = schedule(req, list(views.values()))
        if not isinstance(result, Placement):
            assert feasible == [], result.explanation()
            continue
        placed += 1
        assert result.host in feasible
        view = views[result.host]
        check_placement(req, view, result)
        want = after(view, result)
        views[result.host] = apply_placement(view, result)
        assert {q.key: q.free for q in views[result.host].pools} == want
        for a in result.allocations:
            given_out[result.host, a.pool] += a.count
    assert placed >= 1  # the first request always has room
    for key, n in given_out.items():
        assert n <= start[key], f"{key} gave {n} in all, had {start[key]} free"
    whole = {(host, k.parent_pf) for host, k in given_out if k.dev_type == "type-PF"}
    vf_parents = {(host, k.parent_pf) for host, k in given_out if k.dev_type == "type-VF"}
    assert not whole & vf_parents, "a PF went out whole and one of its VFs too"
