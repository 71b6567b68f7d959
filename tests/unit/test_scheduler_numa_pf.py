"""NUMA affinity policies (Nova's semantics), PF/VF exclusivity, consumption and bad inputs."""

from __future__ import annotations

import dataclasses

import pytest
from test_scheduler_helpers import host, instance, pf, pfs, vf, vfs

from vfkeeper.scheduler import (
    ClusterView,
    HostView,
    InstanceRequest,
    InvalidHostViewError,
    InvalidRequestError,
    NoValidHost,
    PciRequest,
    Placement,
    PoolView,
    apply_placement,
    schedule,
)

A0, A1, B0, B1 = "0000:03:00.0", "0000:03:00.1", "0000:81:00.0", "0000:81:00.1"


def placed(result: Placement | NoValidHost) -> Placement:
    assert isinstance(result, Placement), result.explanation()  # type: ignore[union-attr]
    return result


def nodes_used(p: Placement) -> set[int | None]:
    return {a.pool.numa_node for a in p.allocations}


# A host with VFs on node 0, on node 1 and on a PF that reports no NUMA node.
def three_way(n0: int, n1: int, none: int) -> HostView:
    return host("h", vf("p", A0, 0, n0), vf("p", B0, 1, n1), vf("p", A1, None, none))


# --- required -------------------------------------------------------------------------------------


def test_required_with_a_node_uses_only_that_node() -> None:
    req = instance(*vfs("p", 2), numa_policy="required", instance_numa_node=1)
    p = placed(schedule(req, [three_way(8, 2, 8)]))
    assert nodes_used(p) == {1}
    assert p.numa_node == 1
    assert isinstance(schedule(req, [three_way(8, 1, 8)]), NoValidHost)


def test_required_never_takes_devices_without_numa_information() -> None:
    req = instance(*vfs("p"), numa_policy="required", instance_numa_node=1)
    assert isinstance(schedule(req, [three_way(8, 0, 8)]), NoValidHost)


def test_required_without_a_node_puts_every_device_on_one_node() -> None:
    h = host("h", vf("a", A0, 0, 8), vf("b", A1, 0, 0), vf("a", B0, 1, 8), vf("b", B1, 1, 1))
    p = placed(schedule(instance(*vfs("a"), *vfs("b"), numa_policy="required"), [h]))
    assert nodes_used(p) == {1}
    assert p.numa_node == 1


# --- legacy ---------------------------------------------------------------------------------------


def test_legacy_prefers_the_node_then_devices_without_numa_info_never_another_node() -> None:
    req = instance(*vfs("p", 2), numa_policy="legacy", instance_numa_node=1)
    assert nodes_used(placed(schedule(req, [three_way(8, 8, 8)]))) == {1}
    assert nodes_used(placed(schedule(req, [three_way(8, 1, 8)]))) == {1, None}
    assert isinstance(schedule(req, [three_way(8, 1, 0)]), NoValidHost)


def test_no_policy_with_a_node_behaves_as_legacy_as_in_nova() -> None:
    req = instance(*vfs("p", 2), instance_numa_node=1)
    assert nodes_used(placed(schedule(req, [three_way(8, 1, 8)]))) == {1, None}
    assert isinstance(schedule(req, [three_way(8, 1, 0)]), NoValidHost)


def test_legacy_without_a_node_prefers_a_node_with_full_affinity() -> None:
    """Node 0 has 1 VF (+ devices without NUMA info), node 1 has 2: legacy picks node 1 alone."""
    req = instance(*vfs("p", 2), numa_policy="legacy")
    p = placed(schedule(req, [three_way(1, 2, 8)]))
    assert nodes_used(p) == {1}
    assert p.numa_node == 1


def test_legacy_without_a_node_falls_back_to_devices_without_numa_info_then_any() -> None:
    """Like Nova for an instance without a NUMA topology: no NUMA rule, affinity preferred."""
    req = instance(*vfs("p", 3), numa_policy="legacy")
    p = placed(schedule(req, [three_way(1, 2, 1)]))
    assert nodes_used(p) == {1, None}
    assert p.numa_node == 1
    spread_out = placed(schedule(req, [three_way(1, 1, 1)]))
    assert nodes_used(spread_out) == {0, 1, None}
    assert spread_out.numa_node is None


# --- preferred and none ---------------------------------------------------------------------------


def test_preferred_takes_any_node_but_prefers_the_instance_node() -> None:
    req = instance(*vfs("p", 2), numa_policy="preferred", instance_numa_node=1)
    assert nodes_used(placed(schedule(req, [three_way(8, 8, 8)]))) == {1}
    assert nodes_used(placed(schedule(req, [three_way(8, 1, 8)]))) == {1, None}
    assert nodes_used(placed(schedule(req, [three_way(8, 0, 0)]))) == {0}


def test_preferred_without_a_node_prefers_full_affinity_on_some_node() -> None:
    req = instance(*vfs("p", 2), numa_policy="preferred")
    assert nodes_used(placed(schedule(req, [three_way(1, 2, 8)]))) == {1}
    assert len(nodes_used(placed(schedule(req, [three_way(1, 1, 0)])))) == 2


def test_no_policy_and_no_node_ignore_numa() -> None:
    p = placed(schedule(instance(*vfs("p", 3)), [three_way(1, 1, 1)]))
    assert nodes_used(p) == {0, 1, None}
    assert p.numa_node is None


# --- PF/VF exclusivity inside one placement -------------------------------------------------------


def test_a_pf_and_a_vf_come_from_different_pfs() -> None:
    h = host("h", pf("p", A0, 0), vf("p", A0, 0, 4), pf("p", A1, 0), vf("p", A1, 0, 3))
    p = placed(schedule(instance(*pfs("p"), *vfs("p")), [h]))
    taken_pf = p.pools_for("p-pf0")[0].pool.parent_pf
    vf_parent = p.pools_for("p-vf0")[0].pool.parent_pf
    assert taken_pf != vf_parent


def test_the_pf_choice_that_leaves_enough_vfs_is_found() -> None:
    """Pack would try PF A0 first (same order key) but then only A1's 2 VFs remain for 8 asked;
    taking PF A1 leaves A0's 8 VFs."""
    h = host("h", pf("p", A0, 0), vf("p", A0, 0, 8), pf("p", A1, 0), vf("p", A1, 0, 2))
    p = placed(schedule(instance(*pfs("p"), *vfs("p", count=8)), [h]))
    assert p.pools_for("p-pf0")[0].pool.parent_pf == A1
    assert [(a.pool.parent_pf, a.count) for a in p.pools_for("p-vf0")] == [(A0, 8)]


def test_two_pfs_are_two_different_pfs() -> None:
    h = host("h", pf("p", A0, 0), pf("p", A1, 0))
    p = placed(schedule(instance(*pfs("p", 2)), [h]))
    assert {a.pool.parent_pf for a in p.allocations} == {A0, A1}
    assert isinstance(schedule(instance(*pfs("p", 3)), [h]), NoValidHost)


def test_vfs_of_a_pf_on_another_physnet_still_block_it() -> None:
    """A device spec may put a PF on one physnet and its VFs on another; the PF and its VF
    still cannot both be handed out."""
    h = host("h", pf("wire", A0, 0), vf("fabric", A0, 0, 4))
    result = schedule(instance(*pfs("wire"), *vfs("fabric")), [h])
    assert isinstance(result, NoValidHost)
    assert result.rejections[0].filter == "pf_vf_exclusivity"


# --- consumption ----------------------------------------------------------------------------------


def test_apply_placement_takes_devices_and_blocks_the_other_kind() -> None:
    h = host("h", pf("p", A0, 0), vf("p", A0, 0, 4), pf("p", A1, 0), vf("p", A1, 0, 4))
    p = placed(schedule(instance(*pfs("p"), *vfs("p", count=2)), [h]))
    after = apply_placement(h, p)
    by_key = {(x.dev_type, x.parent_pf): x.free for x in after.pools}
    whole = p.pools_for("p-pf0")[0].pool.parent_pf
    other = A1 if whole == A0 else A0
    assert by_key == {
        ("type-PF", whole): 0,
        ("type-VF", whole): 0,  # its VFs went with the PF
        ("type-PF", other): 0,  # a VF of it is in use
        ("type-VF", other): 2,
    }


def test_apply_placement_refuses_another_hosts_placement() -> None:
    a, b = host("a", vf("p", A0, 0, 4)), host("b", vf("p", A0, 0, 4))
    p = placed(schedule(instance(*vfs("p")), [a]))
    with pytest.raises(InvalidHostViewError, match="a placement for host a was applied to it"):
        apply_placement(b, p)


def test_cluster_view_upsert_and_remove_keep_decisions_right() -> None:
    cluster = ClusterView([host("a", vf("p", A0, 0, 1)), host("b", vf("p", A0, 0, 5))])
    assert placed(schedule(instance(*vfs("p")), cluster)).host == "a"
    cluster.upsert(host("a", vf("p", A0, 0, 0)))
    assert placed(schedule(instance(*vfs("p")), cluster)).host == "b"
    cluster.upsert(host("b", vf("p", A0, 0, 5), enabled=False))
    assert isinstance(schedule(instance(*vfs("p")), cluster), NoValidHost)
    cluster.upsert(host("c", vf("p", A0, 0, 3)))
    cluster.remove("b")
    assert placed(schedule(instance(*vfs("p")), cluster)).host == "c"
    assert [h.name for h in cluster.hosts()] == ["a", "c"]


# --- bad inputs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: PciRequest("", "p"), "give every PCI request an id"),
        (lambda: PciRequest("r", "p", count=0), "ask for at least one device"),
        (lambda: PciRequest("r", "p", "type-PCI"), "use type-VF"),  # type: ignore[arg-type]
        (lambda: InstanceRequest(vfs("p") + vfs("p")), "each PCI request needs its own"),
        (lambda: InstanceRequest(numa_policy="socket"), "required, preferred or legacy"),  # type: ignore[arg-type]
        (lambda: InstanceRequest(instance_numa_node=-1), "numbered from 0"),
        (lambda: InstanceRequest(weigher="random"), "use pack or spread"),  # type: ignore[arg-type]
    ],
)
def test_bad_requests_say_what_to_do(build: object, match: str) -> None:
    with pytest.raises(InvalidRequestError, match=match) as info:
        build()  # type: ignore[operator]
    assert info.value.http_status == 400


@pytest.mark.parametrize(
    ("pools", "match"),
    [
        ((vf("p", A0, 0, 9, total=8),), "outside 0..total=8"),
        ((PoolView("p", "type-PF", 0, "8086", "1572", A0, 1, 2),), "with total=1"),
        ((vf("p", A0, 0, 1), vf("p", A0, 0, 1)), "merge them into one pool"),
        ((vf("p", A0, -1, 1),), "use None for a device without NUMA affinity"),
    ],
)
def test_inconsistent_host_views_are_refused(pools: tuple[PoolView, ...], match: str) -> None:
    with pytest.raises(InvalidHostViewError, match=match):
        HostView("h", pools)


def test_a_host_listed_twice_is_refused() -> None:
    with pytest.raises(InvalidHostViewError, match="listed twice"):
        ClusterView([host("h"), host("h")])


def test_pool_key_names_the_pool_exactly() -> None:
    p = placed(
        schedule(instance(*vfs("p", trusted=True)), [host("h", vf("p", A0, 1, 2, trusted=True))])
    )
    key = p.allocations[0].pool
    assert dataclasses.astuple(key) == (
        "p",
        "type-VF",
        A0,
        1,
        "15b3",
        "101e",
        (("trusted", "true"),),
    )
