"""The rules an inventory must meet beyond its types: each breach the attack found is refused
by the controller's parser, naming the bad field (``docs/inventory-schema.md``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from vfkeeper.controller.errors import InvalidInputError
from vfkeeper.controller.hosts import parse_inventory
from vfkeeper.domain.inventory import Device, HostInventory, Netdev
from vfkeeper.domain.inventory_rules import netdev_name_problem, problems
from vfkeeper.domain.text import json_problems, text_problem

PF, VF0, VF1, ETH = "0000:03:00.0", "0000:03:00.1", "0000:03:00.2", "0000:04:00.0"


def _inventory() -> dict[str, Any]:
    devices = [
        Device(address=PF, vendor_id="15b3", product_id="1017", dev_type="type-PF",
               sriov_totalvfs=2, sriov_numvfs=2, numa_node=0,
               netdevs=(Netdev(name="enp3s0f0", mac="b8:ce:f6:00:03:00", mtu=1500),)),
        Device(address=VF0, vendor_id="15b3", product_id="1018", dev_type="type-VF",
               parent_addr=PF, vf_index=0, numa_node=0),
        Device(address=VF1, vendor_id="15b3", product_id="1018", dev_type="type-VF",
               parent_addr=PF, vf_index=1, numa_node=0),
        Device(address=ETH, vendor_id="8086", product_id="1572", dev_type="type-PCI"),
    ]
    return HostInventory(hostname="h1", devices=tuple(devices)).model_dump(mode="json")


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        target = doc
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    return change


def _append_device(**fields: Any) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        doc["devices"].append({**copy.deepcopy(doc["devices"][1]), **fields})

    return change


CASES: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "address zz": (_set(("devices", 3, "address"), "zz"), "devices[3].address"),
    "function 9": (_set(("devices", 3, "address"), "0000:03:00.9"), "devices[3].address"),
    "slot 20": (_set(("devices", 3, "address"), "0000:03:20.0"), "devices[3].address"),
    "path": (_set(("devices", 3, "address"), "../../etc"), "devices[3].address"),
    "empty": (_set(("devices", 3, "address"), ""), "devices[3].address"),
    "upper case": (_set(("devices", 3, "address"), "0000:0A:00.0"), "devices[3].address"),
    "orphan VF": (_set(("devices", 2, "parent_addr"), "0000:05:00.0"), "devices[2].parent_addr"),
    "VF without PF": (_set(("devices", 2, "parent_addr"), None), "devices[2].parent_addr"),
    "VF of a VF": (_set(("devices", 2, "parent_addr"), VF0), "devices[2].parent_addr"),
    "PF with a parent": (_set(("devices", 0, "parent_addr"), ETH), "devices[0].parent_addr"),
    "duplicate vf_index": (_set(("devices", 2, "vf_index"), 0), "devices[2].vf_index"),
    "duplicate address": (_append_device(), "devices[4].address"),
    "negative vf_index": (_set(("devices", 1, "vf_index"), -1), "devices[1].vf_index"),
    "huge vf_index": (_set(("devices", 1, "vf_index"), 2**31), "devices[1].vf_index"),
    "negative numa_node": (_set(("devices", 1, "numa_node"), -1), "devices[1].numa_node"),
    "huge numa_node": (_set(("devices", 1, "numa_node"), 2**31), "devices[1].numa_node"),
    "vendor 0x": (_set(("devices", 0, "vendor_id"), "0x15b3"), "devices[0].vendor_id"),
    "vendor upper": (_set(("devices", 0, "vendor_id"), "15B3"), "devices[0].vendor_id"),
    "vendor short": (_set(("devices", 0, "vendor_id"), "15b"), "devices[0].vendor_id"),
    "product zz": (_set(("devices", 0, "product_id"), "zzzz"), "devices[0].product_id"),
    "netdev slash": (_set(("devices", 0, "netdevs", 0, "name"), "en/p3"),
                     "devices[0].netdevs[0].name"),
    "netdev quote": (_set(("devices", 0, "netdevs", 0, "name"), "en'p3"),
                     "devices[0].netdevs[0].name"),
    "netdev dquote": (_set(("devices", 0, "netdevs", 0, "name"), 'en"p3'),
                      "devices[0].netdevs[0].name"),
    "netdev 16 bytes": (_set(("devices", 0, "netdevs", 0, "name"), "e" * 16),
                        "devices[0].netdevs[0].name"),
    "netdev 16 utf8 bytes": (_set(("devices", 0, "netdevs", 0, "name"), "é" * 8),
                             "devices[0].netdevs[0].name"),
    "netdev dot": (_set(("devices", 0, "netdevs", 0, "name"), ".."),
                   "devices[0].netdevs[0].name"),
    "netdev NUL": (_set(("devices", 0, "netdevs", 0, "name"), "e\x00"),
                   "devices[0].netdevs[0].name"),
    "hostname NUL": (_set(("hostname",), "h\x00"), "hostname"),
    "surrogate in a warning": (_set(("warnings",), [{"path": "/sys/\ud800", "message": "m"}]),
                               "warnings[0].path"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_inventory_breaking_a_rule_is_refused_naming_the_field(case: str) -> None:
    change, field = CASES[case]
    doc = _inventory()
    change(doc)
    with pytest.raises(InvalidInputError) as info:
        parse_inventory(doc["hostname"], doc)
    assert info.value.details["field"] == field
    assert any(e["field"] == field for e in info.value.details["errors"])


@pytest.mark.parametrize("version", ["2", True, 2.0, None, [2]])
def test_schema_version_must_be_a_json_integer(version: Any) -> None:
    doc = {**_inventory(), "schema_version": version}
    with pytest.raises(InvalidInputError) as info:
        parse_inventory("h1", doc)
    assert info.value.details["field"] == "schema_version"


@pytest.mark.parametrize(("field", "value"), [("numa_node", "0"), ("vf_index", True)])
def test_numbers_are_json_integers(field: str, value: Any) -> None:
    doc = _inventory()
    doc["devices"][1][field] = value
    with pytest.raises(InvalidInputError) as info:
        parse_inventory("h1", doc)
    assert info.value.details["errors"][0]["loc"] == ["devices", 1, field]


def test_every_problem_is_listed_and_the_message_says_what_to_do() -> None:
    doc = _inventory()
    doc["devices"][3]["address"] = "zz"
    doc["devices"][1]["numa_node"] = -1
    with pytest.raises(InvalidInputError) as info:
        parse_inventory("h1", doc)
    assert [e["field"] for e in info.value.details["errors"]] == [
        "devices[1].numa_node", "devices[3].address"]
    assert "run an agent of this vfkeeper version" in info.value.message


def test_a_valid_inventory_has_no_problems() -> None:
    doc = _inventory()
    assert problems(parse_inventory("h1", doc)) == []


def test_a_vf_without_an_index_is_allowed() -> None:
    doc = _inventory()
    doc["devices"][1]["vf_index"] = None  # discovery: no virtfnN link points at it
    parse_inventory("h1", doc)


@pytest.mark.parametrize("name", ["eth0", "enp3s0f0np0", "ib0.8001", "é" * 7, "e" * 15,
                                  "veth-a_b"])
def test_interface_names_the_kernel_allows(name: str) -> None:
    assert netdev_name_problem(name) is None


@pytest.mark.parametrize("name", ["", ".", "..", "a b", "a\tb", "a:b", "a/b", "e" * 16,
                                  "a'b", 'a"b', "a\\b"])
def test_interface_names_refused(name: str) -> None:
    assert netdev_name_problem(name) is not None


def test_json_problems_name_the_path_of_each_bad_value() -> None:
    doc = {"a": [1, {"b": "x\x00"}], "c": 2**64, "d": float("nan"), "\ud800": 1}
    found = {p.where: p.message for p in json_problems(doc, ("entries",))}
    assert set(found) == {"entries.a[1].b", "entries.c", "entries.d", "entries.\\ud800"}
    assert "NUL" in found["entries.a[1].b"] and "64 bits" in found["entries.c"]


def test_json_problems_survive_nesting_deeper_than_the_stack() -> None:
    deep: Any = "leaf"
    for _ in range(100_000):
        deep = [deep]
    (problem,) = json_problems(deep)
    assert "nested more than" in problem.message


def test_text_rules() -> None:
    assert text_problem("name") is None
    assert "NUL" in (text_problem("a\x00") or "")
    assert "surrogate" in (text_problem("\udcff") or "")
    assert "control" in (text_problem("a\nb") or "")
    assert text_problem("a\nb", prose=True) is None
