"""Does an instance fit on one host, and with which pools?

Two levels, both pure and independent of how many devices a pool holds:

* :func:`deficit` — a counting check per (physical network, device type) group over the pools of
  some NUMA nodes. Pools of different groups never share a device, and the trust tags split a
  group into two disjoint classes, so these three inequalities (Hall's condition) are exactly
  "the group's devices can be matched", *ignoring PF/VF exclusivity*.
* :func:`find_assignment` — an actual assignment of every PCI request to pools that honours the
  free counts *and* PF/VF exclusivity inside the placement: a PF handed out whole makes its VFs
  unavailable, a VF handed out makes its PF unavailable. PF requests are placed first (each takes
  one whole PF pool); VF requests are then filled greedily, most constrained (trust-tagged) first,
  from the pools whose PF was not taken. When a PF candidate is the parent of a VF candidate the
  PF choice matters, and the search tries PF combinations (bounded by :data:`PF_SEARCH_BUDGET`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from vfkeeper.scheduler.model import DevType, GroupKey, HostView, PoolView
from vfkeeper.scheduler.state import Assignment, DecisionState, Demand, Target

PF_SEARCH_BUDGET = 4096
"""PF combinations tried on one host per target before the host is declared not to fit."""


def noun(n: int, dev_type: DevType) -> str:
    """``VF`` or ``VFs`` (``PF``/``PFs``) for a count of ``n``."""
    word = "VF" if dev_type == "type-VF" else "PF"
    return word if n == 1 else word + "s"


def plural(n: int, dev_type: DevType, qualifier: str = "") -> str:
    """``1 VF``, ``2 trusted VFs``, ``0 PFs``."""
    q = f"{qualifier} " if qualifier else ""
    return f"{n} {q}{noun(n, dev_type)}"


PerNode = dict[GroupKey, tuple[tuple[int | None, int, int], ...]]


def _counts(overall: dict[GroupKey, tuple[int, int]], per_node: PerNode, demand: Demand,
            allowed: frozenset[int | None] | None) -> tuple[int, int]:  # fmt: skip
    """(trusted, untrusted) of ``demand``'s group on the NUMA nodes ``allowed`` (all: None)."""
    if allowed is None:
        return overall.get(demand.key, (0, 0))
    trusted = untrusted = 0
    for node, t, u in per_node.get(demand.key, ()):
        if node in allowed:
            trusted += t
            untrusted += u
    return trusted, untrusted


def group_free(
    host: HostView, demand: Demand, allowed: frozenset[int | None] | None
) -> tuple[int, int]:
    """Free (trusted, untrusted) devices of ``demand``'s group on the NUMA nodes ``allowed``."""
    return _counts(host.group_total, host.group_numa, demand, allowed)


def group_size(
    host: HostView, demand: Demand, allowed: frozenset[int | None] | None
) -> tuple[int, int]:
    """(trusted, untrusted) devices of ``demand``'s group on ``allowed`` nodes, free or not."""
    return _counts(host.group_size, host.group_size_numa, demand, allowed)


def _short(asked: int, free: int, size: int, dev_type: DevType, qualifier: str = "") -> str:
    """Why ``asked`` devices cannot be had when ``free`` are free of ``size`` in all: never
    (the host does not have that many), or not now."""
    q = f" {qualifier}" if qualifier else ""
    if size == 0:
        return f"{plural(asked, dev_type, qualifier)} asked, none"
    if size < asked:
        return f"{plural(asked, dev_type, qualifier)} asked, never fits: " \
               f"{plural(size, dev_type, qualifier)} in total"
    if free == 0 and asked == 1 and not qualifier:
        return f"0 free {noun(0, dev_type)} now"
    return f"{plural(asked, dev_type, qualifier)} asked, {free} free{q} now"


def _untagged(asked: int, dev_type: DevType, trusted: bool) -> str:
    """Devices of the group exist, but none has (or lacks) the trust tag asked for. (No count:
    a decision memoizes texts per capped counts, which keep whether devices exist, not how
    many.)"""
    many = noun(2, dev_type)
    if trusted:
        return (f"{plural(asked, dev_type, 'trusted')} asked, but no device spec tags any of "
                f"its {many} trusted=true")
    return (f"{plural(asked, dev_type, 'untrusted')} asked, but a device spec tags all its "
            f"{many} trusted=true")


def deficit(host: HostView, demand: Demand, allowed: frozenset[int | None] | None) -> str | None:
    """Why ``demand`` cannot be met from the pools on ``allowed`` nodes, or ``None`` if it can:
    the tag asked for is on none of the devices, the host never has that many, or not that
    many are free now.

    The text has no physnet prefix and no NUMA suffix; callers add those.
    """
    dev_type = demand.key[1]
    trusted, untrusted = group_free(host, demand, allowed)
    all_trusted, all_untrusted = group_size(host, demand, allowed)
    size = all_trusted + all_untrusted
    if demand.trusted > trusted:
        if all_trusted == 0 and size:
            return _untagged(demand.trusted, dev_type, trusted=True)
        return _short(demand.trusted, trusted, all_trusted, dev_type, "trusted")
    if demand.untrusted > untrusted:
        if all_untrusted == 0 and size:
            return _untagged(demand.untrusted, dev_type, trusted=False)
        return _short(demand.untrusted, untrusted, all_untrusted, dev_type, "untrusted")
    if demand.total > trusted + untrusted:
        return _short(demand.total, trusted + untrusted, size, dev_type)
    return None


def capped_counts(host: HostView, state: DecisionState) -> tuple[object, ...]:
    """What the NUMA and exclusivity filters can see of ``host``: its NUMA nodes and the pools
    of the groups the request asks for, free and total counts capped at what the group asks.
    No assignment takes more than the group asks from one pool, and a deficit only arises (and
    a total is only named) when every pool has less than that, so the cap changes neither
    verdicts nor their texts."""
    pools = host.pools
    parts: list[object] = [host.nodes]
    for d in state.demands:
        cap = d.total
        parts.append(d.key)
        for i in host.group_pools.get(d.key, ()):
            p = pools[i]
            parts.append((i, p.parent_pf, p.numa_node, p.trusted, min(p.free, cap),
                          min(p.total, cap)))
    return tuple(parts)


def counts_fit(state: DecisionState, host: HostView, allowed: frozenset[int | None] | None) -> bool:
    """Every group's counts can be met from ``allowed`` nodes (PF/VF exclusivity aside)."""
    return all(deficit(host, d, allowed) is None for d in state.demands)


# --- the assignment search ---------------------------------------------------------------------


def _rank(pool: PoolView, node: int | None) -> int:
    if node is None or pool.numa_node == node:
        return 0
    return 1 if pool.numa_node is None else 2


def _candidates(state: DecisionState, host: HostView, target: Target) -> list[list[int]]:
    """Per PCI request, the indices of the host pools it may use, in preference order."""
    order = state.weigher.pool_order
    pools = host.pools
    allowed = target.allowed
    out: list[list[int]] = []
    for gkey, trusted in state.req_keys:
        idx = [
            i
            for i in host.group_pools.get(gkey, ())
            if (allowed is None or pools[i].numa_node in allowed)
            and (trusted is None or pools[i].trusted is trusted)
        ]
        if len(idx) > 1:
            idx.sort(key=lambda i: (_rank(pools[i], target.node), order(pools[i])))
        out.append(idx)
    return out


def _greedy(
    pools: Sequence[PoolView],
    requests: Sequence[tuple[int, int]],
    cands: Sequence[Sequence[int]],
    blocked: frozenset[str],
    used: dict[int, int],
) -> list[tuple[int, int, int]] | None:
    """Fill ``(request index, count)`` pairs in order from their candidates, skipping pools whose
    ``parent_pf`` is ``blocked``. ``used`` is updated in place."""
    out: list[tuple[int, int, int]] = []
    for r, count in requests:
        need = count
        for i in cands[r]:
            pool = pools[i]
            left = pool.free - used.get(i, 0)
            if left <= 0 or pool.parent_pf in blocked:
                continue
            take = min(left, need)
            used[i] = used.get(i, 0) + take
            out.append((r, i, take))
            need -= take
            if need == 0:
                break
        if need:
            return None
    return out


def _pf_choices(
    pools: Sequence[PoolView], units: Sequence[int], cands: Sequence[Sequence[int]]
) -> Iterator[tuple[int, ...]]:
    """Every way to give each PF unit (a request index, repeated ``count`` times) its own free PF
    pool, in preference order; units of one request take pools in candidate order."""
    chosen: list[int] = []

    def walk(u: int, start: int) -> Iterator[tuple[int, ...]]:
        if u == len(units):
            yield tuple(chosen)
            return
        cand = cands[units[u]]
        for pos in range(start, len(cand)):
            i = cand[pos]
            if pools[i].free < 1 or i in chosen:
                continue
            chosen.append(i)
            same_next = u + 1 < len(units) and units[u + 1] == units[u]
            yield from walk(u + 1, pos + 1 if same_next else 0)
            chosen.pop()

    yield from walk(0, 0)


def _coupled(
    pools: Sequence[PoolView],
    pf_reqs: Sequence[tuple[int, int]],
    vf_reqs: Sequence[tuple[int, int]],
    cands: Sequence[Sequence[int]],
) -> bool:
    """Is some candidate PF the parent of some candidate VF (so the PF choice matters)?"""
    if not pf_reqs or not vf_reqs:
        return False
    pf_addrs = {pools[i].parent_pf for r, _ in pf_reqs for i in cands[r]}
    return any(pools[i].parent_pf in pf_addrs for r, _ in vf_reqs for i in cands[r])


def assign_target(state: DecisionState, host: HostView, target: Target) -> Assignment | None:
    """An assignment on ``target``'s nodes honouring free counts and PF/VF exclusivity."""
    pools = host.pools
    cands = _candidates(state, host, target)
    pf_reqs = state.pf_reqs
    vf_reqs = state.vf_reqs
    if not _coupled(pools, pf_reqs, vf_reqs, cands):
        used: dict[int, int] = {}
        pf = _greedy(pools, pf_reqs, cands, frozenset(), used)
        vf = _greedy(pools, vf_reqs, cands, frozenset(), used) if pf is not None else None
        return None if pf is None or vf is None else tuple(pf + vf)
    units = [r for r, count in pf_reqs for _ in range(count)]
    for tried, chosen in enumerate(_pf_choices(pools, units, cands)):
        if tried >= PF_SEARCH_BUDGET:
            return None
        blocked = frozenset(pools[i].parent_pf for i in chosen)
        vf = _greedy(pools, vf_reqs, cands, blocked, {})
        if vf is not None:
            return tuple((r, i, 1) for r, i in zip(units, chosen, strict=True)) + tuple(vf)
    return None


def find_assignment(state: DecisionState, host: HostView) -> tuple[Target, Assignment] | None:
    """The first target (most affine first) on which the whole request can be assigned."""
    for target in state.targets(host):
        if not counts_fit(state, host, target.allowed):
            continue
        found = assign_target(state, host, target)
        if found is not None:
            return target, found
    return None
