"""Filters: small classes, each deciding one thing about one host and saying why it said no.

Every filter has a ``name`` (reported in the structured rejection), ``uses_name`` (whether its
verdict depends on the host's name rather than only on what the host offers) and
``check(host, state) -> None | reason``. They run in :data:`DEFAULT_FILTERS` order; the first
reason rejects the host. Adding a rule is adding one class here and listing it.

Filters that do not look at the name give equal verdicts for hosts of equal
:class:`~vfkeeper.scheduler.model.Shape`; :func:`first_rejection` memoizes them per decision.
Filters marked ``counts_only`` go further: their verdict depends only on the pools of the groups
the request asks for, with free counts capped at the number asked (a pool with 30 free VFs and
one with 5 are the same to a request for 4), and on the host's NUMA nodes. A cluster whose hosts
share a model is then judged in a handful of steps, full or empty.
"""

from __future__ import annotations

from typing import Protocol

from vfkeeper.domain.timestamps import iso_z
from vfkeeper.scheduler.fit import capped_counts, deficit, find_assignment, plural
from vfkeeper.scheduler.model import HostView
from vfkeeper.scheduler.state import DecisionState, Demand, Verdict


class Filter(Protocol):
    """Accepts a host (``None``) or returns the reason it does not."""

    name: str
    uses_name: bool
    counts_only: bool

    def active(self, state: DecisionState) -> bool:
        """Whether the filter can reject anything in this decision at all."""
        ...

    def check(self, host: HostView, state: DecisionState) -> str | None: ...


class ExcludedFilter:
    """Hosts the caller excluded for this attempt (a claim there lost a race)."""

    name = "excluded"
    uses_name = True
    counts_only = False

    def active(self, state: DecisionState) -> bool:
        return bool(state.exclude)

    def check(self, host: HostView, state: DecisionState) -> str | None:
        if host.name in state.exclude:
            return "excluded by the caller for this attempt (a claim on it lost a race)"
        return None


class HostHintFilter:
    """A host hint pins the instance to one host."""

    name = "host_hint"
    uses_name = True
    counts_only = False

    def active(self, state: DecisionState) -> bool:
        return state.request.host_hint is not None

    def check(self, host: HostView, state: DecisionState) -> str | None:
        hint = state.request.host_hint
        if hint is not None and host.name != hint:
            return f"not the requested host (host hint {hint})"
        return None


class EnabledFilter:
    """Operators can take a host out of scheduling."""

    name = "enabled"
    uses_name = False
    counts_only = False

    def active(self, state: DecisionState) -> bool:
        return True

    def check(self, host: HostView, state: DecisionState) -> str | None:
        if host.enabled:
            return None
        why = f": {host.disabled_reason}" if host.disabled_reason else ""
        return f"disabled by an operator{why}"


class AgentAliveFilter:
    """A host whose agent stopped reporting may have lost or changed its VFs."""

    name = "agent_alive"
    uses_name = False
    counts_only = False

    def active(self, state: DecisionState) -> bool:
        return True

    def check(self, host: HostView, state: DecisionState) -> str | None:
        if host.agent_alive:
            return None
        if host.agent_last_seen is None:
            return "agent has never reported; start vfkeeper-agent on the host"
        return f"agent silent since {iso_z(host.agent_last_seen, 'seconds')}"


class AgentReconcilesFilter:
    """A host whose agent says it cannot reconcile (a damaged journal record, a failing pass)
    would not attach what is placed there."""

    name = "agent_reconciles"
    uses_name = False
    counts_only = False

    def active(self, state: DecisionState) -> bool:
        return True

    def check(self, host: HostView, state: DecisionState) -> str | None:
        if host.agent_problem is None:
            return None
        return f"agent cannot reconcile the host: {host.agent_problem}"


class CapacityFilter:
    """Enough free devices per physical network and device type, NUMA aside."""

    name = "capacity"
    uses_name = False
    counts_only = False

    def active(self, state: DecisionState) -> bool:
        return bool(state.demands)

    def check(self, host: HostView, state: DecisionState) -> str | None:
        for d in state.demands:
            physnet, dev_type = d.key
            if d.key not in host.group_pools:
                return f"physnet {physnet}: {plural(d.total, dev_type)} asked, none on this host"
            why = deficit(host, d, None)
            if why is not None:
                return f"physnet {physnet}: {why}"
        return None


def _first_deficit(
    host: HostView, demands: tuple[Demand, ...], allowed: frozenset[int | None] | None
) -> str:
    for d in demands:
        why = deficit(host, d, allowed)
        if why is not None:
            return f"physnet {d.key[0]}: {why}"
    return "the devices asked do not fit"  # unreachable when called for a failing target


class NumaAffinityFilter:
    """The request's NUMA affinity policy can be met by the counts on some NUMA node."""

    name = "numa_affinity"
    uses_name = False
    counts_only = True

    def active(self, state: DecisionState) -> bool:
        return bool(state.demands) and state.policy is not None

    def check(self, host: HostView, state: DecisionState) -> str | None:
        targets = state.acceptance(host)
        if any(all(deficit(host, d, t.allowed) is None for d in state.demands) for t in targets):
            return None
        policy = state.policy
        node = state.request.instance_numa_node
        if node is not None:
            where = f"on NUMA node {node}"
            if policy == "legacy":
                where += " or without NUMA affinity"
            why = _first_deficit(host, state.demands, targets[0].allowed)
            return f"{why} {where} (policy {policy})"
        if not targets:
            return f"no device on this host reports a NUMA node (policy {policy} needs one)"
        per_node = "; ".join(
            f"node {t.node}: {_first_deficit(host, state.demands, t.allowed)}" for t in targets
        )
        return f"no single NUMA node has every device asked (policy {policy}): {per_node}"


class PfVfExclusivityFilter:
    """The devices can really be assigned: a PF handed out whole takes its VFs with it, and a VF
    handed out makes its PF unavailable, also between the devices of this one instance.

    This is the last filter; it caches the assignment it found in ``state.fits``, by shape.
    """

    name = "pf_vf_exclusivity"
    uses_name = False
    counts_only = True

    def active(self, state: DecisionState) -> bool:
        return True

    def check(self, host: HostView, state: DecisionState) -> str | None:
        found = find_assignment(state, host)
        if found is not None:
            state.fits[host.shape] = found
            return None
        pfs = sum(d.total for d in state.demands if d.key[1] == "type-PF")
        vfs = sum(d.total for d in state.demands if d.key[1] == "type-VF")
        policy = f" (policy {state.policy})" if state.policy else ""
        return (
            f"{plural(pfs, 'type-PF')} and {plural(vfs, 'type-VF')} asked, but no free PF "
            f"leaves enough free VFs on the other PFs (a PF handed out whole takes its VFs with "
            f"it){policy}"
        )


FILTERS: dict[str, Filter] = {
    f.name: f
    for f in (
        ExcludedFilter(),
        HostHintFilter(),
        EnabledFilter(),
        AgentAliveFilter(),
        AgentReconcilesFilter(),
        CapacityFilter(),
        NumaAffinityFilter(),
        PfVfExclusivityFilter(),
    )
}
"""Registry by name."""

DEFAULT_FILTERS: tuple[Filter, ...] = tuple(FILTERS.values())
"""The chain ``schedule()`` runs, in order. ``pf_vf_exclusivity`` must stay last."""


_NAME_FILTERS = tuple(f for f in DEFAULT_FILTERS if f.uses_name)
_HOST_FILTERS = tuple(f for f in DEFAULT_FILTERS if not f.uses_name and not f.counts_only)
_COUNT_FILTERS = tuple(f for f in DEFAULT_FILTERS if f.counts_only)
_MISS: Verdict = ("", "")


def prepare(state: DecisionState) -> None:
    """Pick the filters that can say no in this decision (call once, before judging hosts)."""
    state.chains = (
        tuple(f for f in _NAME_FILTERS if f.active(state)),
        tuple(f for f in _HOST_FILTERS if f.active(state)),
        tuple(f for f in _COUNT_FILTERS if f.active(state)),
    )


def _run(filters: tuple[Filter, ...], host: HostView, state: DecisionState) -> Verdict:
    for f in filters:
        why = f.check(host, state)
        if why is not None:
            return f.name, why
    return None


def first_rejection(host: HostView, state: DecisionState) -> Verdict:
    """``(filter name, reason)`` of the first filter rejecting ``host``, or ``None``.

    Filters that look at the host's name run first, then the others, memoized for the length of
    one decision per host shape and, for ``counts_only`` filters, per capped counts.
    """
    by_name, by_host, by_counts = state.chains
    if by_name:
        verdict = _run(by_name, host, state)
        if verdict is not None:
            return verdict
    shape = host.shape
    verdict = state.verdicts.get(shape, _MISS)
    if verdict is not _MISS:
        return verdict
    verdict = _run(by_host, host, state)
    if verdict is None:
        counts = capped_counts(host, state)
        verdict = state.count_verdicts.get(counts)
        if verdict is None:  # not seen, or seen fitting: this host needs its own assignment
            verdict = state.count_verdicts[counts] = _run(by_counts, host, state)
    state.verdicts[shape] = verdict
    return verdict
