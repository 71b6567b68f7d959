"""Every rendered VIF form against libvirt itself: its schemas accept it, its test driver
defines and starts a domain with it, and the live XML still holds what we rendered."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

import pytest

from vfkeeper.domain.vif import (
    BoundVif,
    Failover,
    render_failover_pair,
    render_hostdev_network,
    render_interface,
    render_test_domain,
)

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")
etree = pytest.importorskip("lxml.etree", reason="lxml is not installed")

pytestmark = pytest.mark.libvirt

VF = "0000:03:10.1"
MAC = "fa:16:3e:11:22:33"
VF_ADDR = {"domain": "0x0000", "bus": "0x03", "slot": "0x10", "function": "0x1"}

# (id, vif, {path below the device: expected attributes}) -- what libvirt must keep.
CASES: list[tuple[str, BoundVif, dict[str, dict[str, str]]]] = [
    (
        "hw_veb-direct-vlan",
        BoundVif("hw_veb", "direct", pci_address=VF, mac=MAC, vlan=100, alias="ua-port1"),
        {
            ".": {"type": "hostdev", "managed": "yes"},
            "mac": {"address": MAC},
            "source/address": {"type": "pci", **VF_ADDR},
            "vlan/tag": {"id": "100"},
            "alias": {"name": "ua-port1"},
        },
    ),
    (
        "hw_veb-direct-flat",
        BoundVif("hw_veb", "direct", pci_address=VF, mac=MAC),
        {".": {"type": "hostdev"}, "source/address": VF_ADDR},
    ),
    (
        "hw_veb-macvtap",
        BoundVif("hw_veb", "macvtap", pci_address=VF, mac=MAC, vlan=7, netdev="ens1f0v1"),
        {
            ".": {"type": "direct"},
            "source": {"dev": "ens1f0v1", "mode": "passthrough"},
            "model": {"type": "virtio"},
            "vlan/tag": {"id": "7"},
        },
    ),
    (
        "802.1qbh-direct",
        BoundVif("802.1qbh", "direct", pci_address=VF, mac=MAC, profileid="pp-web"),
        {
            ".": {"type": "hostdev"},
            "mac": {"address": MAC},
            "virtualport": {"type": "802.1Qbh"},
            "virtualport/parameters": {"profileid": "pp-web"},
        },
    ),
    (
        "802.1qbh-macvtap",
        BoundVif("802.1qbh", "macvtap", mac=MAC, netdev="enic0v3", profileid="pp-db"),
        {
            ".": {"type": "direct"},
            "source": {"dev": "enic0v3", "mode": "passthrough"},
            "virtualport/parameters": {"profileid": "pp-db"},
        },
    ),
    (
        "hostdev_physical",
        BoundVif("hostdev_physical", "direct-physical", pci_address="0000:03:00.0"),
        {
            ".": {"mode": "subsystem", "type": "pci", "managed": "yes"},
            "source/address": {"bus": "0x03", "slot": "0x00", "function": "0x0"},
        },
    ),
    (
        "ib_hostdev",
        BoundVif("ib_hostdev", "direct", pci_address="0000:81:00.7", alias="ua-ib0"),
        {
            ".": {"mode": "subsystem", "type": "pci"},
            "source/address": {"bus": "0x81", "slot": "0x00", "function": "0x7"},
            "alias": {"name": "ua-ib0"},
        },
    ),
    (
        "hostdev-network-interface",
        BoundVif("hw_veb", "direct", hostdev_network="physnet1", mac=MAC, vlan=42),
        {".": {"type": "network"}, "source": {"network": "physnet1"}, "vlan/tag": {"id": "42"}},
    ),
]


def _live_device(live_xml: str, tag: str, index: int = 0) -> ET.Element:
    devices = ET.fromstring(live_xml).find("devices")
    assert devices is not None
    found = devices.findall(tag)
    assert len(found) > index, f"libvirt dropped the <{tag}>:\n{live_xml}"
    return found[index]


def _assert_kept(dev: ET.Element, expected: dict[str, dict[str, str]]) -> None:
    for path, attrs in expected.items():
        el = dev.find(path)
        assert el is not None, f"libvirt dropped {path}: {ET.tostring(dev, encoding='unicode')}"
        assert {k: el.get(k) for k in attrs} == attrs, path


@pytest.mark.parametrize(("vif", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_form_validates_defines_and_starts(
    vif: BoundVif,
    expected: dict[str, dict[str, str]],
    name: str,
    valid_domain: Callable[[str], None],
    start_domain: Callable[[str], str],
) -> None:
    device = render_interface(vif)
    domain = render_test_domain(name, [device])
    valid_domain(domain)
    live = start_domain(domain)
    tag = ET.fromstring(device).tag
    _assert_kept(_live_device(live, tag), expected)


def test_flat_network_is_started_without_any_vlan(
    name: str, start_domain: Callable[[str], str]
) -> None:
    vif = BoundVif("hw_veb", "direct", pci_address=VF, mac=MAC)
    live = start_domain(render_test_domain(name, [render_interface(vif)]))
    assert _live_device(live, "interface").find("vlan") is None


def test_802_1qbh_is_started_with_its_port_profile_and_no_vlan(
    name: str, start_domain: Callable[[str], str]
) -> None:
    """The test driver would keep a <vlan> here; libvirtd's hostdev code refuses one at start
    ("direct setting of the vlan tag is not allowed for hostdev devices using 802.1Qbh mode"),
    so BoundVif refuses it and the live device must show none."""
    vif = BoundVif("802.1qbh", "direct", pci_address=VF, mac=MAC, profileid="pp-web")
    dev = _live_device(start_domain(render_test_domain(name, [render_interface(vif)])),
                       "interface")
    assert dev.find("vlan") is None
    assert dev.find("virtualport/parameters").get("profileid") == "pp-web"  # type: ignore[union-attr]


def test_failover_pair_validates_and_starts_with_its_teaming(
    name: str, valid_domain: Callable[[str], None], start_domain: Callable[[str], str]
) -> None:
    vif = BoundVif(
        "hw_veb", "direct", pci_address=VF, mac=MAC, vlan=5,
        failover=Failover(alias="ua-backup0", bridge="br-ex"),
    )
    domain = render_test_domain(name, render_failover_pair(vif))
    valid_domain(domain)
    live = start_domain(domain)
    persistent, transient = _live_device(live, "interface", 0), _live_device(live, "interface", 1)
    _assert_kept(
        persistent,
        {
            ".": {"type": "bridge"},
            "model": {"type": "virtio"},
            "teaming": {"type": "persistent"},
            "alias": {"name": "ua-backup0"},
            "mac": {"address": MAC},
        },
    )
    _assert_kept(
        transient,
        {
            ".": {"type": "hostdev"},
            "teaming": {"type": "transient", "persistent": "ua-backup0"},
            "mac": {"address": MAC},
            "source/address": VF_ADDR,
        },
    )


@pytest.mark.parametrize(
    ("pfs", "vfs", "kept"),
    [
        (["ens1f0"], [], {"pf": {"dev": "ens1f0"}}),
        ([], [VF, "0000:04:10.1"], {"address": {"type": "pci", **VF_ADDR}}),
    ],
    ids=["one-pf", "vf-list"],
)
def test_hostdev_network_and_an_interface_on_it(
    *,
    pfs: list[str],
    vfs: list[str],
    kept: dict[str, dict[str, str]],
    name: str,
    valid_network: Callable[[str], None],
    valid_domain: Callable[[str], None],
    start_network: Callable[[str], str],
    start_domain: Callable[[str], str],
) -> None:
    network = render_hostdev_network(name, pfs, vf_addresses=vfs)
    valid_network(network)
    live_net = ET.fromstring(start_network(network))
    fwd = live_net.find("forward")
    assert fwd is not None and fwd.get("mode") == "hostdev" and fwd.get("managed") == "yes"
    _assert_kept(fwd, kept)

    vif = BoundVif("hw_veb", "direct", hostdev_network=name, mac=MAC, vlan=42)
    domain = render_test_domain(f"{name}-vm", [render_interface(vif)])
    valid_domain(domain)
    live = start_domain(domain)
    _assert_kept(_live_device(live, "interface"), {"source": {"network": name}})


# The domain core refuses these; libvirt refuses them too, so the rules are libvirt's, not ours.


def test_libvirt_also_refuses_two_pfs_in_one_hostdev_network(
    conn: Any, name: str, network_rng: Any
) -> None:
    one = render_hostdev_network(name, ["ens1f0"])
    two = one.replace('<pf dev="ens1f0" />', '<pf dev="ens1f0" /><pf dev="ens2f0" />')
    assert two != one
    assert not network_rng.validate(etree.fromstring(two))
    with pytest.raises(libvirt.libvirtError, match="Only one <pf>"):
        conn.networkDefineXML(two)


def test_libvirt_also_refuses_a_multicast_mac(conn: Any, name: str) -> None:
    vif = BoundVif("hw_veb", "direct", pci_address=VF, mac=MAC)
    xml = render_test_domain(name, [render_interface(vif)])
    with pytest.raises(libvirt.libvirtError, match="multicast"):
        conn.defineXML(xml.replace(MAC, "01:00:5e:00:00:01"))


def test_libvirt_silently_drops_an_alias_without_ua_prefix(
    conn: Any, name: str, start_domain: Callable[[str], str]
) -> None:
    # Why BoundVif insists on "ua-": anything else would vanish and detach could not find it.
    xml = render_test_domain(
        name, [render_interface(BoundVif("hw_veb", "direct", pci_address=VF, alias="ua-keep"))]
    )
    live = start_domain(xml.replace("ua-keep", "keep"))
    assert _live_device(live, "interface").find("alias") is None
