"""The scheduler's filters, explanations, weighers, host hint and multi-port placement."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from test_scheduler_helpers import host, instance, pf, pfs, vf, vfs

from vfkeeper.scheduler import (
    ClusterView,
    HostView,
    InstanceRequest,
    NoValidHost,
    NoValidHostError,
    PciRequest,
    Placement,
    schedule,
)

A0 = "0000:03:00.0"
A1 = "0000:03:00.1"
B0 = "0000:81:00.0"


def placed(result: Placement | NoValidHost) -> Placement:
    assert isinstance(result, Placement), result.explanation()  # type: ignore[union-attr]
    return result


def rejected(result: Placement | NoValidHost) -> NoValidHost:
    assert isinstance(result, NoValidHost), result
    return result


# --- every filter, table-driven: one host, one request, the exact rejection -----------------------

SEEN = datetime(2026, 11, 21, 10, 4, 5, tzinfo=UTC)

FILTER_CASES = [
    pytest.param(
        host("h", vf("p1", A0, 0, 4), enabled=False),
        instance(*vfs("p1")),
        "enabled",
        "disabled by an operator",
        id="disabled",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4), enabled=False, disabled_reason="BIOS update"),
        instance(*vfs("p1")),
        "enabled",
        "disabled by an operator: BIOS update",
        id="disabled-with-reason",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4), agent_alive=False, agent_last_seen=SEEN),
        instance(*vfs("p1")),
        "agent_alive",
        "agent silent since 2026-11-21T10:04:05Z",
        id="agent-silent",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4), agent_alive=False),
        instance(*vfs("p1")),
        "agent_alive",
        "agent has never reported; start vfkeeper-agent on the host",
        id="agent-never-seen",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4), agent_problem="journal record /x.json is damaged"),
        instance(*vfs("p1")),
        "agent_reconciles",
        "agent cannot reconcile the host: journal record /x.json is damaged",
        id="agent-cannot-reconcile",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4)),
        instance(*vfs("physnet2")),
        "capacity",
        "physnet physnet2: 1 VF asked, none on this host",
        id="physnet-absent",
    ),
    pytest.param(
        host("h", vf("physnet2", A0, 0, 1)),
        instance(*vfs("physnet2", 2)),
        "capacity",
        "physnet physnet2: 2 VFs asked, 1 free now",
        id="too-few-vfs",
    ),
    pytest.param(
        host("h", vf("physnet2", A0, 0, 0)),
        instance(*vfs("physnet2")),
        "capacity",
        "physnet physnet2: 0 free VFs now",
        id="no-free-vf",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4), pf("p1", A0, 0, 0)),
        instance(*pfs("p1")),
        "capacity",
        "physnet p1: 0 free PFs now",
        id="pf-busy",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4), vf("p1", B0, 1, 1, trusted=True)),
        instance(*vfs("p1", 2, trusted=True)),
        "capacity",
        "physnet p1: 2 trusted VFs asked, 1 free trusted now",
        id="trusted-short",
    ),
    pytest.param(
        host("h", vf("ib-a", A0, 0, 4), vf("ib-a", B0, 1, 0)),
        instance(*vfs("ib-a"), numa_policy="required", instance_numa_node=1),
        "numa_affinity",
        "physnet ib-a: 0 free VFs now on NUMA node 1 (policy required)",
        id="required-node",
    ),
    pytest.param(
        host("h", vf("ib-a", A0, 0, 4), vf("ib-a", B0, 1, 1)),
        instance(*vfs("ib-a", 2), numa_policy="required", instance_numa_node=1),
        "numa_affinity",
        "physnet ib-a: 2 VFs asked, 1 free now on NUMA node 1 (policy required)",
        id="required-node-short",
    ),
    pytest.param(
        host("h", vf("ib-a", A0, 0, 4), vf("ib-a", B0, None, 1)),
        instance(*vfs("ib-a", 2), numa_policy="legacy", instance_numa_node=1),
        "numa_affinity",
        "physnet ib-a: 2 VFs asked, 1 free now on NUMA node 1 or without NUMA affinity "
        "(policy legacy)",
        id="legacy-node",
    ),
    pytest.param(
        host("h", vf("a", A0, 0, 4), vf("b", B0, 1, 4)),
        instance(*vfs("a"), *vfs("b"), numa_policy="required"),
        "numa_affinity",
        "no single NUMA node has every device asked (policy required): "
        "node 0: physnet b: 1 VF asked, none; node 1: physnet a: 1 VF asked, none",
        id="required-split-over-nodes",
    ),
    pytest.param(
        host("h", vf("a", A0, None, 4)),
        instance(*vfs("a"), numa_policy="required"),
        "numa_affinity",
        "no device on this host reports a NUMA node (policy required needs one)",
        id="required-without-numa-info",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4, total=4)),
        instance(*vfs("p1", 5)),
        "capacity",
        "physnet p1: 5 VFs asked, never fits: 4 VFs in total",
        id="never-fits",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 2, total=6)),
        instance(*vfs("p1", 5)),
        "capacity",
        "physnet p1: 5 VFs asked, 2 free now",
        id="fits-once-freed",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4)),
        instance(*vfs("p1", trusted=True)),
        "capacity",
        "physnet p1: 1 trusted VF asked, but no device spec tags any of its VFs trusted=true",
        id="trust-tag-missing",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4), vf("p1", B0, 1, 1, total=1, trusted=True)),
        instance(*vfs("p1", 2, trusted=True)),
        "capacity",
        "physnet p1: 2 trusted VFs asked, never fits: 1 trusted VF in total",
        id="trusted-never-fits",
    ),
    pytest.param(
        host("h", vf("ib-a", A0, 0, 4), vf("ib-a", B0, 1, 1, total=1)),
        instance(*vfs("ib-a", 2), numa_policy="required", instance_numa_node=1),
        "numa_affinity",
        "physnet ib-a: 2 VFs asked, never fits: 1 VF in total on NUMA node 1 (policy required)",
        id="required-node-never-fits",
    ),
    pytest.param(
        host("h", vf("p1", A0, 0, 4), pf("p1", A0, 0)),
        instance(*pfs("p1"), *vfs("p1")),
        "pf_vf_exclusivity",
        "1 PF and 1 VF asked, but no free PF leaves enough free VFs on the other PFs "
        "(a PF handed out whole takes its VFs with it)",
        id="pf-and-its-own-vf",
    ),
]


@pytest.mark.parametrize(("the_host", "request_", "filter_name", "reason"), FILTER_CASES)
def test_each_filter_rejects_with_its_sentence(
    the_host: HostView, request_: InstanceRequest, filter_name: str, reason: str
) -> None:
    result = rejected(schedule(request_, [the_host]))
    assert result.details() == [{"host": "h", "reason": reason, "filter": filter_name}]
    assert result.rejections[0].sentence() == f"h: {reason}"


def test_hosts_alike_but_for_their_totals_are_told_apart() -> None:
    """A decision memoizes verdicts per capped counts; the totals are part of them, so a host
    that can never fit and one that could once VFs are freed get their own sentences."""
    small = host("small", vf("ib", A0, 0, 4), vf("ib", B0, 1, 0, total=1))
    large = host("large", vf("ib", A0, 0, 4), vf("ib", B0, 1, 0, total=8))
    req = instance(*vfs("ib", 2), numa_policy="required", instance_numa_node=1)
    assert [r.reason for r in rejected(schedule(req, [small, large])).rejections] == [
        "physnet ib: 2 VFs asked, 0 free now on NUMA node 1 (policy required)",
        "physnet ib: 2 VFs asked, never fits: 1 VF in total on NUMA node 1 (policy required)",
    ]


def test_the_same_host_fits_once_the_cause_is_gone() -> None:
    """Guards the table above against rejecting for the wrong reason: each fixed host fits."""
    ok = host("h", vf("ib-a", A0, 0, 4), vf("ib-a", B0, 1, 2))
    req = instance(*vfs("ib-a", 2), numa_policy="required", instance_numa_node=1)
    p = placed(schedule(req, [ok]))
    assert {a.pool.parent_pf for a in p.allocations} == {B0}


# --- explanations ---------------------------------------------------------------------------------


def test_no_valid_host_explains_every_host_in_name_order() -> None:
    hosts = [
        host("host-10", vf("physnet2", A0, 0, 1)),
        host("host-2", vf("ib-a", A0, 0, 4), vf("ib-a", B0, 1, 0)),
        host("host-3", vf("physnet2", A0, 0, 4), enabled=False),
        host("host-1", vf("physnet2", A0, 0, 4), agent_alive=False, agent_last_seen=SEEN),
    ]
    req = instance(*vfs("physnet2", 2))
    result = rejected(schedule(req, hosts))
    assert [r.host for r in result.rejections] == ["host-1", "host-2", "host-3", "host-10"]
    assert result.explanation().splitlines() == [
        "no valid host: 4 hosts rejected (agent_alive: 1, capacity: 2, enabled: 1)",
        "host-1: agent silent since 2026-11-21T10:04:05Z",
        "host-2: physnet physnet2: 2 VFs asked, none on this host",
        "host-3: disabled by an operator",
        "host-10: physnet physnet2: 2 VFs asked, 1 free now",
    ]


def test_no_valid_host_error_carries_the_result_and_409() -> None:
    result = rejected(schedule(instance(*vfs("x")), [host("h")]))
    err = NoValidHostError(result)
    assert err.http_status == 409
    assert err.result is result
    assert str(err) == result.explanation()


def test_empty_cluster_says_so() -> None:
    result = rejected(schedule(instance(*vfs("x")), []))
    assert result.rejections == ()
    assert result.summary() == (
        "no valid host: the cluster has no hosts yet; start vfkeeper-agent on a host so it "
        "registers"
    )


# --- host hint and exclusion ----------------------------------------------------------------------


def test_host_hint_pins_the_instance_to_that_host() -> None:
    hosts = [host("a", vf("p", A0, 0, 1)), host("b", vf("p", A0, 0, 8))]
    assert placed(schedule(instance(*vfs("p"), host_hint="b"), hosts)).host == "b"
    assert placed(schedule(instance(*vfs("p"), host_hint="a"), hosts)).host == "a"


def test_host_hint_rejection_is_explained_and_other_hosts_named() -> None:
    hosts = [host("a", vf("p", A0, 0, 8)), host("b", vf("p", A0, 0, 1))]
    result = rejected(schedule(instance(*vfs("p", 2), host_hint="b"), hosts))
    assert result.details() == [
        {"host": "a", "reason": "not the requested host (host hint b)", "filter": "host_hint"},
        {"host": "b", "reason": "physnet p: 2 VFs asked, 1 free now", "filter": "capacity"},
    ]


def test_host_hint_naming_no_host() -> None:
    result = rejected(schedule(instance(*vfs("p"), host_hint="zz"), [host("a", vf("p", A0, 0, 8))]))
    assert result.summary().startswith("no valid host: host hint zz names no known host")
    assert [r.filter for r in result.rejections] == ["host_hint"]


def test_exclude_retries_on_the_next_best_host_and_explains_the_excluded_one() -> None:
    hosts = [host("a", vf("p", A0, 0, 2)), host("b", vf("p", A0, 0, 8))]
    first = placed(schedule(instance(*vfs("p")), hosts))
    assert first.host == "a"  # pack: fewest free first
    assert placed(schedule(instance(*vfs("p")), hosts, exclude=[first.host])).host == "b"
    result = rejected(schedule(instance(*vfs("p")), hosts, exclude=["a", "b"]))
    assert {r.filter for r in result.rejections} == {"excluded"}


# --- weighers -------------------------------------------------------------------------------------


def test_pack_prefers_the_fullest_host_and_spread_the_emptiest() -> None:
    hosts = [
        host("a", vf("p", A0, 0, 6)),
        host("b", vf("p", A0, 0, 2)),
        host("c", vf("p", A0, 0, 7)),
    ]
    assert placed(schedule(instance(*vfs("p")), hosts)).host == "b"
    assert placed(schedule(instance(*vfs("p"), weigher="spread"), hosts)).host == "c"


def test_pack_skips_hosts_with_too_few_free_devices() -> None:
    hosts = [
        host("a", vf("p", A0, 0, 1)),
        host("b", vf("p", A0, 0, 3)),
        host("c", vf("p", A0, 0, 2)),
    ]
    assert placed(schedule(instance(*vfs("p", 2)), hosts)).host == "c"


def test_ties_go_to_the_first_host_in_natural_name_order() -> None:
    hosts = [host(n, vf("p", A0, 0, 4)) for n in ("host-10", "host-9", "host-2")]
    assert placed(schedule(instance(*vfs("p")), hosts)).host == "host-2"
    assert placed(schedule(instance(*vfs("p"), weigher="spread"), hosts)).host == "host-2"


def test_pack_takes_vfs_from_the_pf_already_in_use_and_spread_from_the_emptiest() -> None:
    h = host("h", vf("p", A0, 0, 8, total=8), vf("p", A1, 0, 5, total=8))
    assert placed(schedule(instance(*vfs("p")), [h])).allocations[0].pool.parent_pf == A1
    spread = placed(schedule(instance(*vfs("p"), weigher="spread"), [h]))
    assert spread.allocations[0].pool.parent_pf == A0


def test_weighing_uses_the_group_asked_the_most() -> None:
    """Host a is fuller on physnet p (1 VF asked) but b is fuller on q (2 VFs asked)."""
    a = host("a", vf("p", A0, 0, 2), vf("q", B0, 0, 8))
    b = host("b", vf("p", A0, 0, 8), vf("q", B0, 0, 3))
    assert placed(schedule(instance(*vfs("p"), *vfs("q", 2)), [a, b])).host == "b"


def test_hosts_without_pci_requests_pack_onto_the_host_with_fewest_free_devices() -> None:
    hosts = [host("a", vf("p", A0, 0, 8)), host("b"), host("c", vf("p", A0, 0, 8), enabled=False)]
    assert placed(schedule(instance(), hosts)).host == "b"


# --- multi-port instances -------------------------------------------------------------------------


def test_all_ports_of_an_instance_land_on_one_host() -> None:
    """Host a has physnet p only, host b physnet q only, host c both: only c can take it."""
    hosts = [
        host("a", vf("p", A0, 0, 8)),
        host("b", vf("q", A0, 0, 8)),
        host("c", vf("p", A0, 0, 8), vf("q", B0, 1, 8)),
    ]
    p = placed(schedule(instance(*vfs("p", 2), *vfs("q")), hosts))
    assert p.host == "c"
    assert sorted(a.request_id for a in p.allocations) == ["p-vf0", "p-vf1", "q-vf0"]
    assert {a.request_id: a.pool.physical_network for a in p.allocations} == {
        "p-vf0": "p",
        "p-vf1": "p",
        "q-vf0": "q",
    }


def test_a_request_for_several_devices_may_span_pools() -> None:
    h = host("h", vf("p", A0, 0, 2), vf("p", A1, 0, 3))
    p = placed(schedule(instance(*vfs("p", count=4)), [h]))
    assert sum(a.count for a in p.pools_for("p-vf0")) == 4
    assert {a.pool.parent_pf: a.count for a in p.allocations} == {A0: 2, A1: 2}


def test_trusted_requests_take_only_trusted_pools() -> None:
    h = host("h", vf("p", A0, 0, 1), vf("p", A1, 0, 8, trusted=True))
    p = placed(schedule(instance(*vfs("p", trusted=True)), [h]))
    assert p.allocations[0].pool.parent_pf == A1
    assert ("trusted", "true") in p.allocations[0].pool.tags
    untrusted = placed(schedule(instance(*vfs("p", trusted=False)), [h]))
    assert untrusted.allocations[0].pool.parent_pf == A0


def test_trusted_and_untagged_requests_share_a_group_without_stealing() -> None:
    """One trusted VF is left; the untagged request, listed first, must leave it to the trusted
    one."""
    h = host("h", vf("p", A0, 0, 1, trusted=True), vf("p", A1, 0, 1))
    req = instance(PciRequest("any", "p"), PciRequest("t", "p", trusted=True))
    p = placed(schedule(req, [h]))
    assert p.pools_for("t")[0].pool.parent_pf == A0
    assert p.pools_for("any")[0].pool.parent_pf == A1


def test_a_list_and_a_cluster_view_give_the_same_answer() -> None:
    hosts = [host(f"h{i}", vf("p", A0, i % 2, i)) for i in range(6)]
    req = instance(*vfs("p", 2), numa_policy="required", instance_numa_node=1)
    assert schedule(req, hosts) == schedule(req, ClusterView(hosts))


def test_hosts_differing_only_in_free_counts_are_judged_apart() -> None:
    """Verdicts are memoized per host shape and per capped counts inside one decision; host a
    (1 + 1 VFs) fails "all on one node" and is weighed first, host b (1 + 2) fits."""
    a = host("a", vf("p", A0, 0, 1), vf("p", B0, 1, 1))
    b = host("b", vf("p", A0, 0, 1), vf("p", B0, 1, 2))
    twins = [host(f"t{i}", vf("p", A0, 0, 1), vf("p", B0, 1, 1)) for i in range(3)]
    p = placed(schedule(instance(*vfs("p", 2), numa_policy="required"), [a, *twins, b]))
    assert p.host == "b"
    assert p.numa_node == 1
