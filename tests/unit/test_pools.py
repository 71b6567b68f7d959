"""Pools: grouping by key, and PF/VF exclusivity in the free counts."""

from __future__ import annotations

from typing import Any

from vfkeeper.domain.devspec import DeviceSpecSet, HostView
from vfkeeper.domain.pools import Member, compute_pools, group_pools

PF = "0000:3b:00.0"


def _host() -> HostView:
    devs: list[dict[str, Any]] = [
        {"address": PF, "vendor_id": "15b3", "product_id": "1017", "dev_type": "type-PF",
         "netdevs": ["ens1f0"], "numa_node": 0},
    ]
    for i in range(4):
        devs.append({"address": f"0000:3b:00.{i + 2}", "vendor_id": "15b3", "product_id": "1018",
                     "dev_type": "type-VF", "parent_addr": PF, "vf_index": i, "numa_node": 0})
    devs.append({"address": "0000:5e:00.0", "vendor_id": "8086", "product_id": "15b7",
                 "dev_type": "type-PCI", "numa_node": 1})
    return HostView.from_records(devs)


def _pools(specs: list[Any], in_use: set[str] | None = None) -> list[dict[str, Any]]:
    matcher = DeviceSpecSet.parse(specs).bind(_host())
    return [p.to_dict() for p in compute_pools(matcher, frozenset(in_use or set()))]


SPECS = [{"devname": "ens1f0", "physical_network": "physnet1"},
         {"vendor_id": "8086", "physical_network": None, "trusted": "true"}]


def test_devices_group_by_physnet_ids_numa_type_parent_and_tags() -> None:
    pools = _pools(SPECS)
    summary = [(p["physical_network"], p["tunnelled"], p["dev_type"], p["parent_addr"],
                p["tags"], p["total"], p["free"]) for p in pools]
    assert summary == [
        (None, True, "type-PCI", None, {"physical_network": None, "trusted": "true"}, 1, 1),
        ("physnet1", False, "type-PF", None, {"physical_network": "physnet1"}, 1, 1),
        ("physnet1", False, "type-VF", PF, {"physical_network": "physnet1"}, 4, 4),
    ]


def test_a_vf_in_use_takes_its_pf_out_but_not_its_siblings() -> None:
    pools = {p["dev_type"]: p for p in _pools(SPECS, {"0000:3b:00.3"})}
    assert (pools["type-PF"]["total"], pools["type-PF"]["free"]) == (1, 0)
    assert pools["type-VF"]["free"] == 3
    assert "0000:3b:00.3" not in pools["type-VF"]["free_devices"]


def test_a_pf_in_use_takes_all_its_vfs_out() -> None:
    pools = {p["dev_type"]: p for p in _pools(SPECS, {PF})}
    assert pools["type-PF"]["free"] == 0
    assert (pools["type-VF"]["total"], pools["type-VF"]["free"]) == (4, 0)


def test_unmatched_devices_are_in_no_pool_and_unknown_in_use_is_ignored() -> None:
    pools = _pools([{"devname": "ens1f0", "product_id": "1018", "physical_network": "p"}],
                   {"0000:99:00.0"})
    assert [(p["dev_type"], p["total"], p["free"]) for p in pools] == [("type-VF", 4, 4)]


def test_different_tags_make_different_pools() -> None:
    pools = _pools([{"address": "0000:3b:00.2", "physical_network": "p", "trusted": "true"},
                    {"devname": "ens1f0", "product_id": "1018", "physical_network": "p"}])
    assert [(p["tags"].get("trusted"), p["total"]) for p in pools] == [(None, 3), ("true", 1)]


def test_group_pools_is_the_one_exclusivity_rule_for_any_key_shape() -> None:
    """The controller's stored rows and the spec matcher both group through group_pools."""
    vf1, vf2 = "0000:3b:00.2", "0000:3b:00.3"
    members = [Member("pf", PF, None), Member("vf", vf1, PF), Member("vf", vf2, PF),
               Member("vf", "0000:3b:00.4", PF, assignable=False)]
    idle = group_pools(members, {})
    assert (idle["pf"].free, idle["vf"].free) == ([PF], [vf1, vf2])
    vf_busy = group_pools(members, {vf1: PF})
    assert (vf_busy["pf"].free, vf_busy["vf"].free, vf_busy["vf"].used) == ([], [vf2], [vf1])
    # an in-use VF that is in no pool (no spec selects it) still takes its PF out
    assert group_pools(members[:1], {"0000:3b:00.7": PF})["pf"].free == []
    pf_busy = group_pools(members, {PF: None})
    assert (pf_busy["pf"].used, pf_busy["vf"].free) == ([PF], [])
    assert len(pf_busy["vf"].devices) == 3
