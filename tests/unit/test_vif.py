import xml.etree.ElementTree as ET

import pytest

from vfkeeper.domain.errors import (
    InvalidMacError,
    InvalidPciAddressError,
    InvalidValueError,
    InvalidVlanError,
    UnsupportedVifError,
    VifFieldError,
)
from vfkeeper.domain.vif import (
    BoundVif,
    DeviceForm,
    Failover,
    VifType,
    VnicType,
    normalize_pci_address,
    render_failover_pair,
    render_hostdev_network,
    render_interface,
    render_test_domain,
)

VF = "0000:03:10.1"
PF = "0000:03:00.0"
MAC = "fa:16:3e:11:22:33"


def xml(vif: BoundVif) -> ET.Element:
    return ET.fromstring(render_interface(vif))


def pci(el: ET.Element | None) -> dict[str, str]:
    assert el is not None
    return {k: el.attrib[k] for k in ("domain", "bus", "slot", "function")}


VF_ATTRS = {"domain": "0x0000", "bus": "0x03", "slot": "0x10", "function": "0x1"}


# --- hw_veb ----------------------------------------------------------------------------------


def test_hw_veb_direct_is_a_managed_hostdev_interface_with_mac_address_and_vlan() -> None:
    el = xml(BoundVif(VifType.HW_VEB, VnicType.DIRECT, pci_address=VF, mac=MAC, vlan=100))
    assert el.tag == "interface"
    assert el.attrib == {"type": "hostdev", "managed": "yes"}
    addr = el.find("source/address")
    assert addr is not None and addr.get("type") == "pci"
    assert pci(addr) == VF_ATTRS
    assert el.find("mac").get("address") == MAC  # type: ignore[union-attr]
    assert [t.get("id") for t in el.findall("vlan/tag")] == ["100"]
    assert el.find("model") is None  # the guest sees the VF's own PCI device
    assert el.find("virtualport") is None


def test_flat_network_renders_no_vlan_at_all() -> None:
    # Nova rendered <tag id='0'/> for flat networks; an untagged VF has no <vlan>.
    el = xml(BoundVif("hw_veb", "direct", pci_address=VF, mac=MAC))
    assert el.find("vlan") is None


def test_hw_veb_macvtap_is_a_passthrough_direct_interface_on_the_vf_netdev() -> None:
    el = xml(BoundVif("hw_veb", "macvtap", pci_address=VF, mac=MAC, vlan=7, netdev="ens1f0v1"))
    assert el.attrib == {"type": "direct"}
    assert el.find("source").attrib == {"dev": "ens1f0v1", "mode": "passthrough"}  # type: ignore[union-attr]
    assert el.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert el.find("mac").get("address") == MAC  # type: ignore[union-attr]
    assert el.find("vlan/tag").get("id") == "7"  # type: ignore[union-attr]
    assert el.find("source/address") is None


def test_macvtap_needs_the_netdev() -> None:
    with pytest.raises(VifFieldError, match="netdev is required") as exc:
        BoundVif("hw_veb", "macvtap", pci_address=VF)
    assert exc.value.field == "netdev"


# --- 802.1qbh --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vnic", "extra", "iface_type"),
    [("direct", {}, "hostdev"), ("macvtap", {"netdev": "enic0v3"}, "direct")],
)
def test_802_1qbh_adds_the_port_profile(vnic: str, extra: dict[str, str], iface_type: str) -> None:
    el = xml(BoundVif("802.1qbh", vnic, pci_address=VF, mac=MAC, profileid="pp-web", **extra))  # type: ignore[arg-type]
    assert el.get("type") == iface_type
    vp = el.find("virtualport")
    assert vp is not None and vp.get("type") == "802.1Qbh"
    assert vp.find("parameters").attrib == {"profileid": "pp-web"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "form", [{"pci_address": VF}, {"netdev": "enic0v3"}, {"hostdev_network": "vmfex"}],
    ids=["hostdev", "macvtap", "network"],
)
def test_802_1qbh_renders_no_vlan_and_refuses_one(form: dict[str, str]) -> None:
    vnic = "macvtap" if "netdev" in form else "direct"
    el = xml(BoundVif("802.1qbh", vnic, mac=MAC, profileid="pp-web", **form))  # type: ignore[arg-type]
    assert el.find("vlan") is None
    with pytest.raises(VifFieldError, match=r"vlan .*port profile \(profileid\) carries the VLAN"):
        BoundVif("802.1qbh", vnic, mac=MAC, vlan=100, profileid="pp-web", **form)  # type: ignore[arg-type]


def test_802_1qbh_without_profileid_is_refused() -> None:
    with pytest.raises(VifFieldError, match="profileid is required"):
        BoundVif("802.1qbh", "direct", pci_address=VF)


def test_profileid_on_hw_veb_is_refused_not_dropped() -> None:
    with pytest.raises(VifFieldError, match=r"only used by vif_type 802\.1qbh"):
        BoundVif("hw_veb", "direct", pci_address=VF, profileid="x")


def test_profileid_longer_than_libvirt_allows() -> None:
    with pytest.raises(InvalidValueError, match="1-39"):
        BoundVif("802.1qbh", "direct", pci_address=VF, profileid="p" * 40)


# --- plain hostdevs --------------------------------------------------------------------------


def test_hostdev_physical_passes_the_pf_through() -> None:
    el = xml(BoundVif("hostdev_physical", "direct-physical", pci_address=PF))
    assert el.tag == "hostdev"
    assert el.attrib == {"mode": "subsystem", "type": "pci", "managed": "yes"}
    assert pci(el.find("source/address")) == {
        "domain": "0x0000", "bus": "0x03", "slot": "0x00", "function": "0x0",
    }


def test_ib_hostdev_passes_the_infiniband_vf_through() -> None:
    el = xml(BoundVif("ib_hostdev", "direct", pci_address="0000:81:00.7", alias="ua-ib0"))
    assert el.tag == "hostdev"
    assert pci(el.find("source/address"))["bus"] == "0x81"
    assert pci(el.find("source/address"))["function"] == "0x7"
    assert el.find("alias").get("name") == "ua-ib0"  # type: ignore[union-attr]


@pytest.mark.parametrize("field", ["mac", "vlan", "netdev", "hostdev_network"])
def test_plain_hostdev_refuses_what_it_cannot_render(field: str) -> None:
    value = {"mac": MAC, "vlan": 5, "netdev": "ib0", "hostdev_network": "n"}[field]
    with pytest.raises(VifFieldError) as exc:
        BoundVif("ib_hostdev", "direct", pci_address=VF, **{field: value})  # type: ignore[arg-type]
    assert exc.value.field == field


def test_managed_no_is_rendered() -> None:
    el = xml(BoundVif("hostdev_physical", "direct-physical", pci_address=PF, managed=False))
    assert el.get("managed") == "no"


# --- combinations ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vif_type", "vnic_type", "expected"),
    [
        ("hostdev_physical", "direct", "'direct-physical'"),
        ("hostdev_physical", "macvtap", "'direct-physical'"),
        ("ib_hostdev", "macvtap", "'direct'"),
        ("ib_hostdev", "direct-physical", "'direct'"),
        ("hw_veb", "direct-physical", "'direct' or 'macvtap'"),
        ("802.1qbh", "direct-physical", "'direct' or 'macvtap'"),
    ],
)
def test_unsupported_combinations_say_what_to_use(
    vif_type: str, vnic_type: str, expected: str
) -> None:
    with pytest.raises(UnsupportedVifError) as exc:
        BoundVif(vif_type, vnic_type, pci_address=VF)  # type: ignore[arg-type]
    assert exc.value.vif_type == vif_type and exc.value.vnic_type == vnic_type
    assert str(exc.value).endswith(f"use vnic_type {expected}")


@pytest.mark.parametrize(("vif_type", "vnic_type"), [("ovs", "direct"), ("hw_veb", "normal")])
def test_unknown_types_list_the_known_ones(vif_type: str, vnic_type: str) -> None:
    with pytest.raises(InvalidValueError, match="expected one of"):
        BoundVif(vif_type, vnic_type, pci_address=VF)  # type: ignore[arg-type]


@pytest.mark.parametrize("vlan", [0, -1, 4095, 4096])
def test_vlan_outside_1_to_4094_is_refused(vlan: int) -> None:
    with pytest.raises(InvalidVlanError, match="1-4094; leave it unset for a flat"):
        BoundVif("hw_veb", "direct", pci_address=VF, vlan=vlan)


@pytest.mark.parametrize("vlan", [1, 4094])
def test_vlan_bounds_are_accepted(vlan: int) -> None:
    assert xml(BoundVif("hw_veb", "direct", pci_address=VF, vlan=vlan)).find("vlan/tag") is not None


def test_multicast_mac_is_refused_like_libvirt_does() -> None:
    with pytest.raises(InvalidMacError, match="unicast"):
        BoundVif("hw_veb", "direct", pci_address=VF, mac="01:00:5e:00:00:01")


def test_values_are_normalised() -> None:
    vif = BoundVif("hw_veb", "direct", pci_address="3:10.1", mac="FA-16-3E-11-22-33")
    assert vif.pci_address == VF
    assert vif.mac == MAC
    assert vif.vif_type is VifType.HW_VEB and vif.form is DeviceForm.HOSTDEV_INTERFACE


@pytest.mark.parametrize("addr", ["0000:03:20.0", "0000:03:10.8", "03:10", "0000:003:10.1", "x"])
def test_bad_pci_addresses(addr: str) -> None:
    with pytest.raises(InvalidPciAddressError):
        normalize_pci_address(addr)


@pytest.mark.parametrize(
    ("field", "value"),
    [("netdev", "a-name-longer-than-15"), ("netdev", "bad/name"), ("alias", "port1")],
)
def test_names_libvirt_or_linux_would_refuse(field: str, value: str) -> None:
    kwargs = {"netdev": "ens1f0v1", field: value}
    with pytest.raises(InvalidValueError):
        BoundVif("hw_veb", "macvtap", **kwargs)  # type: ignore[arg-type]


# --- hostdev network pools -------------------------------------------------------------------


def test_interface_on_a_hostdev_network_names_the_network_not_a_pci_address() -> None:
    el = xml(BoundVif("hw_veb", "direct", hostdev_network="physnet1", mac=MAC, vlan=42))
    assert el.attrib == {"type": "network"}
    assert el.find("source").attrib == {"network": "physnet1"}  # type: ignore[union-attr]
    assert el.find("vlan/tag").get("id") == "42"  # type: ignore[union-attr]
    assert el.find(".//address") is None


def test_hostdev_network_with_a_pci_address_is_refused() -> None:
    with pytest.raises(VifFieldError, match="chosen by libvirt"):
        BoundVif("hw_veb", "direct", hostdev_network="physnet1", pci_address=VF)


def test_hostdev_network_of_one_pf() -> None:
    net = ET.fromstring(render_hostdev_network("physnet1", ["ens1f0"]))
    assert net.findtext("name") == "physnet1"
    fwd = net.find("forward")
    assert fwd is not None and fwd.attrib == {"mode": "hostdev", "managed": "yes"}
    assert [p.get("dev") for p in fwd.findall("pf")] == ["ens1f0"]


def test_hostdev_network_of_vf_addresses_may_span_pfs() -> None:
    net = ET.fromstring(render_hostdev_network("pool", vf_addresses=[VF, "0000:04:10.1"]))
    assert [a.get("bus") for a in net.findall("forward/address")] == ["0x03", "0x04"]
    assert all(a.get("type") == "pci" for a in net.findall("forward/address"))


@pytest.mark.parametrize(("pfs", "vfs"), [(["ens1f0", "ens2f0"], []), (["ens1f0"], [VF])])
def test_hostdev_network_needs_exactly_one_pf_or_a_vf_list(pfs: list[str], vfs: list[str]) -> None:
    with pytest.raises(VifFieldError, match="exactly one <pf> per network"):
        render_hostdev_network("physnet1", pfs, vf_addresses=vfs)


def test_empty_hostdev_network_is_refused() -> None:
    with pytest.raises(VifFieldError, match="is empty"):
        render_hostdev_network("physnet1", [])


@pytest.mark.parametrize("name", ["", "a/b", "has space"])
def test_hostdev_network_name_checked(name: str) -> None:
    with pytest.raises(InvalidValueError):
        render_hostdev_network(name, ["ens1f0"])


# --- failover pairs --------------------------------------------------------------------------


def test_failover_pair_shares_the_mac_and_links_by_alias() -> None:
    vif = BoundVif(
        "hw_veb", "direct", pci_address=VF, mac=MAC, vlan=9, failover=Failover(bridge="br-ex")
    )
    persistent, transient = (ET.fromstring(x) for x in render_failover_pair(vif))
    assert persistent.attrib == {"type": "bridge"}
    assert persistent.find("source").get("bridge") == "br-ex"  # type: ignore[union-attr]
    assert persistent.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert persistent.find("teaming").attrib == {"type": "persistent"}  # type: ignore[union-attr]
    assert persistent.find("alias").get("name") == "ua-failover0"  # type: ignore[union-attr]
    assert transient.get("type") == "hostdev"
    assert transient.find("teaming").attrib == {  # type: ignore[union-attr]
        "type": "transient", "persistent": "ua-failover0",
    }
    for el in (persistent, transient):
        assert el.find("mac").get("address") == MAC  # type: ignore[union-attr]


def test_failover_on_a_network() -> None:
    vif = BoundVif(
        "hw_veb", "direct", pci_address=VF, mac=MAC,
        failover=Failover(alias="ua-fo1", network="default"),
    )
    persistent, _ = render_failover_pair(vif)
    assert ET.fromstring(persistent).find("source").attrib == {"network": "default"}  # type: ignore[union-attr]


def test_failover_needs_a_mac() -> None:
    with pytest.raises(VifFieldError, match="both halves share it"):
        BoundVif("hw_veb", "direct", pci_address=VF, failover=Failover(bridge="br0"))


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"bridge": "br0", "network": "n"}, {"bridge": "br0", "alias": "failover0"}],
)
def test_failover_options_checked(kwargs: dict[str, str]) -> None:
    with pytest.raises(InvalidValueError if "alias" in kwargs else VifFieldError):
        Failover(**kwargs)


def test_failover_on_macvtap_or_hostdev_is_refused() -> None:
    fo = Failover(bridge="br0")
    with pytest.raises(VifFieldError, match="transient half"):
        BoundVif("hw_veb", "macvtap", netdev="ens1f0v1", mac=MAC, failover=fo)
    with pytest.raises(VifFieldError) as exc:
        BoundVif("ib_hostdev", "direct", pci_address=VF, failover=fo)
    assert exc.value.field == "failover"


def test_failover_pair_without_failover() -> None:
    with pytest.raises(VifFieldError):
        render_failover_pair(BoundVif("hw_veb", "direct", pci_address=VF))


def test_test_domain_wraps_devices() -> None:
    dev = render_interface(BoundVif("hw_veb", "direct", pci_address=VF))
    dom = ET.fromstring(render_test_domain("vm1", [dev, dev]))
    assert dom.get("type") == "test" and dom.findtext("name") == "vm1"
    assert len(dom.findall("devices/interface")) == 2
