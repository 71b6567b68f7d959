"""Device specs: every syntax form, matched against one realistic host, and every refusal."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vfkeeper.domain.devspec import (
    DeviceSpecSet,
    HostView,
    InvalidDeviceRecord,
    InvalidDeviceSpec,
    SpecEntry,
    SpecHostError,
    view_of_record,
)

PF0, PF1, IB_PF = "0000:3b:00.0", "0000:3b:00.1", "0000:5e:00.0"


def _vf(addr: str, pf: str, idx: int, product: str = "1018", **kw: Any) -> dict[str, Any]:
    return {"address": addr, "vendor_id": "15b3", "product_id": product, "dev_type": "type-VF",
            "parent_addr": pf, "vf_index": idx, "driver": "mlx5_core", "numa_node": 0, **kw}


HOST = [
    {"address": PF0, "vendor_id": "15b3", "product_id": "1017", "dev_type": "type-PF",
     "netdevs": ["ens1f0"], "driver": "mlx5_core", "numa_node": 0, "link_type": "ethernet"},
    _vf("0000:3b:00.2", PF0, 0, netdevs=["ens1f0v0"], link_type="ethernet"),
    _vf("0000:3b:00.3", PF0, 1, link_type="ethernet", driver="vfio-pci"),
    _vf("0000:3b:00.4", PF0, 2, link_type="ethernet"),
    {"address": PF1, "vendor_id": "15b3", "product_id": "1017", "dev_type": "type-PF",
     "netdevs": ["ens1f1"], "driver": "mlx5_core", "numa_node": 0, "link_type": "ethernet"},
    _vf("0000:3b:08.2", PF1, 0, link_type="ethernet"),
    {"address": IB_PF, "vendor_id": "15b3", "product_id": "101b", "dev_type": "type-PF",
     "netdevs": ["ib0"], "driver": "mlx5_core", "numa_node": 1, "link_type": "infiniband",
     "pkeys": ["0xffff", "0x8001"]},
    _vf("0000:5e:00.1", IB_PF, 0, "101c", numa_node=1, link_type="infiniband",
        pkeys=["0xffff", "0x8001"]),
    _vf("0000:5e:00.2", IB_PF, 1, "101c", numa_node=1, link_type="infiniband",
        pkeys=["0xffff", "0x0002"]),
    {"address": "0000:00:19.0", "vendor_id": "8086", "product_id": "15b7", "dev_type": "type-PCI",
     "netdevs": ["eno1"], "driver": "e1000e", "numa_node": 0, "link_type": "ethernet"},
]
ADDRS = [d["address"] for d in HOST]


def matched(specs: list[Any], **kw: Any) -> dict[str, int]:
    """address → index of the first matching spec, for the devices that match."""
    host = HostView.from_records(HOST)
    m = DeviceSpecSet.parse(specs, **kw).bind(host)
    return {d.address: x.spec_index for d in host.devices if (x := m.match(d)) is not None}


def only(*addrs: str) -> set[str]:
    return set(addrs)


MATCH_TABLE: list[tuple[str, Any, set[str]]] = [
    ("vendor only", {"vendor_id": "8086"}, only("0000:00:19.0")),
    ("vendor 0x-prefixed upper case", {"vendor_id": "0x8086"}, only("0000:00:19.0")),
    ("vendor blanks stripped", {"vendor_id": " 8086 "}, only("0000:00:19.0")),
    ("vendor star", {"vendor_id": "*", "product_id": "15b7"}, only("0000:00:19.0")),
    ("product narrows to VFs", {"vendor_id": "15b3", "product_id": "101c"},
     only("0000:5e:00.1", "0000:5e:00.2")),
    ("short product zero-padded", {"vendor_id": "15b3", "product_id": "101C"},
     only("0000:5e:00.1", "0000:5e:00.2")),
    ("glob full PF address expands to VFs", {"address": PF0},
     only(PF0, "0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4")),
    ("PF address + VF product = VFs only", {"address": PF0, "product_id": "1018"},
     only("0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4")),
    ("PF address + PF product = PF only", {"address": PF0, "product_id": "1017"}, only(PF0)),
    ("short glob fields are normalised", {"address": "0:3b:0.0"},
     only(PF0, "0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4")),
    ("glob with star function", {"address": "*:3b:00.*"},
     only(PF0, PF1, "0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4")),
    ("glob bus:slot only", {"address": "3b:08"}, only("0000:3b:08.2")),
    ("glob ':3b:' leaves slot and function open", {"address": ":3b:"},
     only(PF0, PF1, "0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4", "0000:3b:08.2")),
    ("glob function only", {"address": ".2"}, only("0000:3b:00.2", "0000:3b:08.2",
                                                   "0000:5e:00.2")),
    ("glob VF address is that VF only", {"address": "0000:3b:00.3"}, only("0000:3b:00.3")),
    ("empty address matches all", {"address": "", "vendor_id": "8086"}, only("0000:00:19.0")),
    ("regex object", {"address": {"bus": "5e", "function": "[1-7]"}},
     only("0000:5e:00.1", "0000:5e:00.2")),
    ("regex is anchored at the start only", {"address": {"bus": "3", "function": "2"}},
     only("0000:3b:00.2", "0000:3b:08.2")),
    ("regex naming a PF exactly expands", {"address": {"domain": "0000", "bus": "5e",
                                                       "slot": "00", "function": "0"}},
     only(IB_PF, "0000:5e:00.1", "0000:5e:00.2")),
    ("regex with unnormalised field names no PF", {"address": {"domain": "0", "bus": "5e",
                                                               "slot": "0", "function": "0"}},
     only(IB_PF)),
    ("devname of a PF: PF and its VFs", {"devname": "ens1f1"}, only(PF1, "0000:3b:08.2")),
    ("devname of a VF: that VF", {"devname": "ens1f0v0"}, only("0000:3b:00.2")),
    ("devname of a plain NIC", {"devname": "eno1"}, only("0000:00:19.0")),
    ("devname that is not on the host", {"devname": "ens9"}, set()),
    ("devname + product narrows", {"devname": "ib0", "product_id": "101c"},
     only("0000:5e:00.1", "0000:5e:00.2")),
    ("tags only: everything", {"physical_network": "p"}, set(ADDRS)),
    ("drivers", {"drivers": ["e1000e", "vfio-pci"]}, only("0000:00:19.0", "0000:3b:00.3")),
    ("drivers as one string", {"drivers": "vfio-pci"}, only("0000:3b:00.3")),
    ("pf_names all", {"pf_names": ["ens1f1"]}, only(PF1, "0000:3b:08.2")),
    ("pf_names VF range", {"pf_names": ["ens1f0#0-1"]}, only("0000:3b:00.2", "0000:3b:00.3")),
    ("pf_names VF list", {"pf_names": ["ens1f0#0,2", "ib0#1"]},
     only("0000:3b:00.2", "0000:3b:00.4", "0000:5e:00.2")),
    ("root_devices range", {"root_devices": [f"{IB_PF}#1-7"]}, only("0000:5e:00.2")),
    ("root_devices whole family", {"root_devices": PF1}, only(PF1, "0000:3b:08.2")),
    ("link_types", {"link_types": ["infiniband"]}, only(IB_PF, "0000:5e:00.1", "0000:5e:00.2")),
    ("pkeys ignore the membership bit", {"pkeys": ["0x0001"]}, only(IB_PF, "0000:5e:00.1")),
    ("pkeys full member", {"pkeys": ["0x8002"]}, only("0000:5e:00.2")),
    ("numa_nodes", {"numa_nodes": [1], "link_types": "infiniband", "product_id": "101b"},
     only(IB_PF)),
]


@pytest.mark.parametrize(("spec", "want"), [(s, w) for _, s, w in MATCH_TABLE],
                         ids=[n for n, _, _ in MATCH_TABLE])
def test_match_table(spec: dict[str, Any], want: set[str]) -> None:
    assert set(matched([spec])) == want


def test_json_string_and_list_entries_number_specs_across_entries() -> None:
    got = matched(['{"vendor_id": "8086"}', '[{"devname": "ens1f1"}, {"address": "*:5e:"}]'])
    assert got == {"0000:00:19.0": 0, PF1: 1, "0000:3b:08.2": 1, IB_PF: 2,
                   "0000:5e:00.1": 2, "0000:5e:00.2": 2}


def test_first_matching_spec_wins_and_gives_its_tags() -> None:
    host = HostView.from_records(HOST)
    m = DeviceSpecSet.parse([
        {"address": "0000:3b:00.3", "physical_network": None, "trusted": "true"},
        {"devname": "ens1f0", "physical_network": "physnet1"},
    ]).bind(host)
    vf = host.by_address["0000:3b:00.3"]
    other = host.by_address["0000:3b:00.2"]
    assert m.match(vf) is not None and m.match(vf).tags == {  # type: ignore[union-attr]
        "physical_network": None, "trusted": "true"}
    assert m.match(other) is not None and m.match(other).spec_index == 1  # type: ignore[union-attr]


def test_bool_tags_are_normalised_like_nova_and_other_tags_kept() -> None:
    spec = DeviceSpecSet.parse([{"managed": "Yes", "live_migratable": 0, "trusted": "true",
                                 "resource_class": "CUSTOM_X", "traits": "A,B", "mine": [1]}])
    assert dict(spec.specs[0].tags) == {"managed": "true", "live_migratable": "false",
                                        "trusted": "true", "resource_class": "CUSTOM_X",
                                        "traits": "A,B", "mine": [1]}


def test_extension_keys_are_plain_tags_in_nova_mode() -> None:
    assert set(matched([{"drivers": ["nothing"]}], extensions=False)) == set(ADDRS)
    spec = DeviceSpecSet.parse([{"drivers": ["x"]}], extensions=False).specs[0]
    assert spec.tags == {"drivers": ["x"]}
    assert any("extension" in w for w in spec.warnings)


def test_remote_managed_needs_a_card_serial_number() -> None:
    records = [dict(d) for d in HOST]
    records[1]["card_serial_number"] = "MT2113X00000"
    host = HostView.from_records(records)
    m = DeviceSpecSet.parse([{"vendor_id": "15b3", "product_id": "1018",
                              "remote_managed": "true"}]).bind(host)
    assert [d.address for d in host.devices if m.match(d)] == ["0000:3b:00.2"]


def test_typo_in_a_key_warns_with_the_likely_key() -> None:
    spec = DeviceSpecSet.parse([{"vendor-id": "8086"}]).specs[0]
    assert spec.warnings == ("key 'vendor-id' is not a match key, so it is only a tag; "
                             "did you mean 'vendor_id'?",)


ERROR_TABLE: list[tuple[str, Any, str | None, str | None, str]] = [
    # name, entry, key, nova_error, message fragment
    ("not JSON", '{"vendor_id": 8086', None, "PciConfigInvalidSpec", "is not valid JSON"),
    ("JSON scalar", '"8086"', None, "PciConfigInvalidSpec", "not an object or a list"),
    ("list item not an object", '[{"vendor_id": "8086"}, 5]', None, "PciConfigInvalidSpec",
     "item #1"),
    ("vendor not hex", {"vendor_id": "intel"}, "vendor_id", "PciConfigInvalidSpec",
     "vendor_id 'intel' is not a hex number"),
    ("vendor too big", {"vendor_id": "18086"}, "vendor_id", "PciConfigInvalidSpec",
     "greater than the maximum FFFF"),
    ("vendor a number", {"vendor_id": 8086}, "vendor_id", None, "must be a string"),
    ("product null", {"product_id": None}, "product_id", None, "must be a string"),
    ("product blank star", {"product_id": " * "}, "product_id", "PciConfigInvalidSpec",
     "not a hex number"),
    ("address too many fields", {"address": "0:0:3b:00.0"}, "address",
     "PciDeviceWrongAddressFormat", "at most 3 allowed"),
    ("address slot too big", {"address": "3b:20.0"}, "address", "PciConfigInvalidSpec",
     "slot '20' is greater than the maximum 1F"),
    ("address function too big", {"address": "3b:00.8"}, "address", "PciConfigInvalidSpec",
     "function '8' is greater than the maximum 7"),
    ("address partial wildcard", {"address": "3*:00.0"}, "address", "PciConfigInvalidSpec",
     "bus '3*' is not a hex number"),
    ("address blank function", {"address": "3b:00. "}, "address", "PciConfigInvalidSpec",
     "function '' is not a hex number"),
    ("address wrong type", {"address": 5}, "address", "PciDeviceWrongAddressFormat",
     "expected a string or an object"),
    ("regex invalid", {"address": {"bus": "[0-"}}, "address.bus", "PciDeviceWrongAddressFormat",
     "is not a valid regular expression"),
    ("regex not a string", {"address": {"slot": 3}}, "address.slot", None, "must be a string"),
    ("address with devname", {"address": "*:3b:", "devname": "ens1f0"}, "devname",
     "PciDeviceInvalidDeviceName", "cannot be used together"),
    ("managed not boolean", {"managed": "maybe"}, "managed", "PciConfigInvalidSpec",
     "'maybe' is not a boolean"),
    ("live_migratable not boolean", {"live_migratable": 2}, "live_migratable",
     "PciConfigInvalidSpec", "not a boolean"),
    ("one_time_use", {"one_time_use": "yes"}, "one_time_use", "PciConfigInvalidSpec",
     "not supported"),
    ("pf_names bad range", {"pf_names": ["ens1f0#3-1"]}, "pf_names", "PciConfigInvalidSpec",
     "range '3-1' is empty"),
    ("pf_names not a number", {"pf_names": ["ens1f0#a"]}, "pf_names", "PciConfigInvalidSpec",
     "'a' is not a VF index"),
    ("root_devices not an address", {"root_devices": ["3b:00.0"]}, "root_devices",
     "PciConfigInvalidSpec", "not a full PCI address"),
    ("link_types unknown", {"link_types": ["eth"]}, "link_types", "PciConfigInvalidSpec",
     "unknown link type"),
    ("pkeys too big", {"pkeys": ["0x18001"]}, "pkeys", "PciConfigInvalidSpec",
     "not a 16-bit hex PKey"),
    ("numa_nodes negative", {"numa_nodes": [-1]}, "numa_nodes", "PciConfigInvalidSpec",
     ">= 0"),
    ("drivers empty", {"drivers": []}, "drivers", "PciConfigInvalidSpec", "empty list"),
]


@pytest.mark.parametrize(("entry", "key", "nova_error", "fragment"),
                         [e[1:] for e in ERROR_TABLE], ids=[e[0] for e in ERROR_TABLE])
def test_error_table(entry: Any, key: str | None, nova_error: str | None, fragment: str) -> None:
    with pytest.raises(InvalidDeviceSpec) as info:
        DeviceSpecSet.parse([{"vendor_id": "8086"}, SpecEntry(entry, "test.conf:7")])
    err = info.value
    assert (err.entry, err.key, err.nova_error) == (1, key, nova_error)
    assert fragment in str(err)
    assert str(err).startswith("device spec entry #1")
    assert "(test.conf:7)" in str(err)
    assert err.allowed and err.allowed in str(err)


def test_error_message_is_whole_and_actionable() -> None:
    with pytest.raises(InvalidDeviceSpec) as info:
        DeviceSpecSet.parse([SpecEntry({"address": "0000:3b:20.0"}, "nova.conf:12")])
    assert str(info.value) == (
        "device spec entry #0 (nova.conf:12): key 'address': slot '20' is greater than the "
        "maximum 1F. Use a value from 0 to 1F, or '*'.")


HOST_ERRORS = [
    ({"devname": "ens1f0", "remote_managed": "true"}, "PciDeviceInvalidPFRemoteManaged",
     'Add "product_id": "1018"'),
    ({"devname": "ens1f0", "remote_managed": "true", "product_id": "101c"}, "PciConfigInvalidSpec",
     "are not the VF IDs"),
    ({"devname": "nope", "remote_managed": "yes"}, "PciDeviceRemoteManagedNotPresent",
     "no netdev 'nope'"),
    ({"address": PF0, "remote_managed": "true", "product_id": "1018"}, "PciDeviceNotFoundById",
     "address naming PF"),
]


@pytest.mark.parametrize(("spec", "nova_error", "fragment"), HOST_ERRORS)
def test_host_binding_errors(spec: dict[str, Any], nova_error: str, fragment: str) -> None:
    specs = DeviceSpecSet.parse([spec])
    with pytest.raises(SpecHostError) as info:
        specs.bind(HostView.from_records(HOST))
    assert info.value.nova_error == nova_error
    assert fragment in str(info.value)


def test_remote_managed_devname_with_vf_product_binds_and_takes_the_pfs_vpd_vfs() -> None:
    """devname of a PF + its VFs' product_id is the accepted remote_managed form: it binds,
    and matches the PF's VFs whose card shows a serial number — not the VF without one, not
    the PF, not another PF's VF with a serial."""
    records = [dict(d) for d in HOST]
    for r in records:
        if r["address"] in ("0000:3b:00.2", "0000:3b:00.4", "0000:3b:08.2", PF0):
            r["card_serial_number"] = "MT2113X00000"
    host = HostView.from_records(records)
    m = DeviceSpecSet.parse([{"devname": "ens1f0", "remote_managed": "true",
                              "product_id": "1018", "physical_network": "p"}]).bind(host)
    got = {d.address: x for d in host.devices if (x := m.match(d)) is not None}
    assert set(got) == {"0000:3b:00.2", "0000:3b:00.4"}
    assert all(x.tags == {"remote_managed": "true", "physical_network": "p"}
               for x in got.values())


@pytest.mark.parametrize(("record", "field"), [
    ({"address": "3b:00.0"}, "address"),
    ({"address": "0000:3b:20.0"}, "address"),
    ({"address": PF0, "vendor_id": "intel"}, "vendor_id"),
    ({"address": PF0, "dev_type": "PF"}, "dev_type"),
    ({"address": PF0, "numa_node": "0"}, "numa_node"),
    ({"address": PF0, "pkeys": ["zz"]}, "pkeys"),
])
def test_bad_device_records_name_the_field(record: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidDeviceRecord) as info:
        view_of_record(record, 3)
    assert (info.value.index, info.value.field) == (3, field)
    assert str(info.value).startswith(f"device #3: field '{field}'")


def test_explain_names_the_deciding_key() -> None:
    host = HostView.from_records(HOST)
    m = DeviceSpecSet.parse([{"devname": "ens1f0", "product_id": "1017"},
                             {"vendor_id": "8086"},
                             {"address": PF0}]).bind(host)
    why = m.explain(host.by_address["0000:3b:00.2"])
    assert [s.deciding_key for s in why.specs] == ["product_id", "vendor_id", None]
    assert why.match is not None and why.match.spec_index == 2
    assert "names PF 0000:3b:00.0" in why.specs[2].keys[0].detail
    text = "\n".join(why.lines())
    assert "deciding key: product_id" in text and "MATCH (first match wins)" in text


def test_explain_says_why_a_missing_devname_fails() -> None:
    host = HostView.from_records(HOST)
    why = DeviceSpecSet.parse([{"devname": "eth9"}]).bind(host).explain(host.devices[0])
    assert why.specs[0].deciding_key == "devname"
    assert "no netdev 'eth9' on this host" in why.specs[0].keys[0].detail


# What each sampled value matches on HOST by itself, worked out by hand from the records above
# (keys of one spec are ANDed; a spec with no key matches every device).
_ALL = frozenset(ADDRS)
_IB = frozenset({IB_PF, "0000:5e:00.1", "0000:5e:00.2"})
_PF0_FAMILY = frozenset({PF0, "0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4"})
_BUS_3B = _PF0_FAMILY | {PF1, "0000:3b:08.2"}
ALONE: dict[str, list[tuple[Any, frozenset[str]]]] = {
    "vendor_id": [("15b3", _ALL - {"0000:00:19.0"}), ("8086", frozenset({"0000:00:19.0"})),
                  ("*", _ALL), ("0x15b3", _ALL - {"0000:00:19.0"})],
    "product_id": [("1017", frozenset({PF0, PF1})), ("101c", _IB - {IB_PF}),
                   ("1018", frozenset({"0000:3b:00.2", "0000:3b:00.3", "0000:3b:00.4",
                                       "0000:3b:08.2"})), ("*", _ALL)],
    "address": [
        (PF0, _PF0_FAMILY),  # names an SR-IOV PF: its VFs too
        ("*:3b:00.*", _PF0_FAMILY | {PF1}),
        (":5e:", _IB),
        (".2", frozenset({"0000:3b:00.2", "0000:3b:08.2", "0000:5e:00.2"})),
        ("0000:3b:00.3", frozenset({"0000:3b:00.3"})),
        ("", _ALL),
        ({"bus": "3b"}, _BUS_3B),
        ({"function": "[12]"}, frozenset({PF1, "0000:3b:00.2", "0000:3b:08.2", "0000:5e:00.1",
                                          "0000:5e:00.2"})),
        ({"bus": "5e", "slot": "00", "domain": "0000", "function": "0"}, _IB),  # the IB PF
    ],
    "drivers": [(["vfio-pci"], frozenset({"0000:3b:00.3"})),
                (["mlx5_core", "e1000e"], _ALL - {"0000:3b:00.3"})],
    "pf_names": [(["ens1f0#1-2"], frozenset({"0000:3b:00.3", "0000:3b:00.4"})),
                 (["ib0"], _IB),
                 (["ens1f1", "ens1f0#0"], frozenset({PF1, "0000:3b:08.2", "0000:3b:00.2"}))],
    "numa_nodes": [([0], _ALL - _IB), ([1], _IB)],
    "pkeys": [(["0x8001"], frozenset({IB_PF, "0000:5e:00.1"})),  # partition 1
              (["0x7fff"], _IB)],  # 0xffff, the default partition, on every IB function
}


def _alone(key: str, value: Any) -> frozenset[str]:
    return next(matched for v, matched in ALONE[key] if v == value)


_spec_values = st.fixed_dictionaries(
    {}, optional={k: st.sampled_from([v for v, _ in pairs]) for k, pairs in ALONE.items()})


@settings(max_examples=200, deadline=None)
@given(st.lists(_spec_values, min_size=1, max_size=6))
def test_the_first_spec_matching_by_the_table_wins_on_both_paths(
        specs: list[dict[str, Any]]) -> None:
    host = HostView.from_records(HOST)
    m = DeviceSpecSet.parse(specs).bind(host)
    for dev in host.devices:
        want = next((i for i, spec in enumerate(specs)
                     if all(dev.address in _alone(k, v) for k, v in spec.items())), None)
        fast = m.match(dev)
        slow = m.explain(dev).match
        assert (fast.spec_index if fast else None) == want, (dev.address, specs)
        assert (slow.spec_index if slow else None) == want, (dev.address, specs)
