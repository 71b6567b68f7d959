"""How a claimed VF (or PF) reaches a VM: the resolved :class:`BoundVif` and its libvirt XML.

A port bound to a host has a ``vif_type`` (how the device is plugged) and a ``vnic_type`` (what
the user asked for). Together they pick one of four libvirt device forms
(``docs/vif-types.md`` says why each exists):

==================  ==========================  ==========================================
vif_type            vnic_type                   libvirt device
==================  ==========================  ==========================================
hw_veb, 802.1qbh    direct                      ``<interface type='hostdev' managed='yes'>``
hw_veb, 802.1qbh    direct + hostdev network    ``<interface type='network'>`` on a
                                                ``<forward mode='hostdev'>`` network
hw_veb, 802.1qbh    macvtap                     ``<interface type='direct'>``, passthrough mode
ib_hostdev          direct                      ``<hostdev mode='subsystem' type='pci'>`` (VF)
hostdev_physical    direct-physical             ``<hostdev mode='subsystem' type='pci'>`` (PF)
==================  ==========================  ==========================================

Everything about PFs, VFs and InfiniBand is decided before a :class:`BoundVif` exists: a
``BoundVif`` that could be constructed can be rendered, and the render functions only render.
Pure: no I/O; the XML is built with :mod:`xml.etree.ElementTree`.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, TypeVar

from vfkeeper.domain.errors import (
    InvalidMacError,
    InvalidPciAddressError,
    InvalidValueError,
    InvalidVlanError,
    UnsupportedVifError,
    VifFieldError,
)
from vfkeeper.domain.guid import parse_mac


class VifType(StrEnum):
    HW_VEB = "hw_veb"
    """The NIC's embedded switch (VEB) forwards for the VF; VLAN programmed on the VF."""
    QBH = "802.1qbh"
    """Cisco VM-FEX: an upstream 802.1Qbh port profile (``profileid``) configures the port,
    its VLAN included; libvirt associates the profile and sets the MAC, nothing else."""
    IB_HOSTDEV = "ib_hostdev"
    """An InfiniBand VF passed through whole; its GUIDs are programmed by LinkOps first."""
    HOSTDEV_PHYSICAL = "hostdev_physical"
    """A whole PF passed through (``vnic_type=direct-physical``)."""


class VnicType(StrEnum):
    DIRECT = "direct"
    MACVTAP = "macvtap"
    DIRECT_PHYSICAL = "direct-physical"


class DeviceForm(StrEnum):
    """The libvirt device a :class:`BoundVif` renders as."""

    HOSTDEV_INTERFACE = "<interface type='hostdev'>"
    NETWORK_INTERFACE = "<interface type='network'>"
    DIRECT_INTERFACE = "<interface type='direct'>"
    PCI_HOSTDEV = "<hostdev type='pci'>"


SUPPORTED_VNIC_TYPES: Final[Mapping[VifType, tuple[VnicType, ...]]] = {
    VifType.HW_VEB: (VnicType.DIRECT, VnicType.MACVTAP),
    VifType.QBH: (VnicType.DIRECT, VnicType.MACVTAP),
    VifType.IB_HOSTDEV: (VnicType.DIRECT,),
    VifType.HOSTDEV_PHYSICAL: (VnicType.DIRECT_PHYSICAL,),
}

VLAN_MIN: Final = 1
VLAN_MAX: Final = 4094
PROFILEID_MAX: Final = 39
"""libvirt's schema (``virtualPortProfileID``) allows at most 39 characters."""
USER_ALIAS_PREFIX: Final = "ua-"
"""libvirt keeps a user-chosen device alias only if it starts with ``ua-``."""

_PCI = re.compile(
    r"(?:(?P<domain>[0-9a-f]{1,4}):)?(?P<bus>[0-9a-f]{1,2}):(?P<slot>[0-9a-f]{1,2})\.(?P<fn>[0-7])"
)
_IFNAME = re.compile(r"[^\s/:]{1,15}")
_ALIAS = re.compile(r"ua-[a-zA-Z0-9_\-.]+")
_NET_NAME = re.compile(r"[^\s/]{1,64}")
_SLOT_MAX = 0x1F
_E = TypeVar("_E", bound=StrEnum)


def normalize_pci_address(text: str) -> str:
    """``dddd:bb:ss.f`` in lowercase; ``bb:ss.f`` (lspci without ``-D``) means domain 0000."""
    m = _PCI.fullmatch(text.strip().lower())
    if not m or int(m["slot"], 16) > _SLOT_MAX:
        raise InvalidPciAddressError(
            text, "dddd:bb:ss.f in hex with slot <= 1f and function <= 7 (0000:03:10.1)"
        )
    dom, bus, slot = (int(m[k] or "0", 16) for k in ("domain", "bus", "slot"))
    return f"{dom:04x}:{bus:02x}:{slot:02x}.{m['fn']}"


def _pci_attrs(address: str) -> dict[str, str]:
    dom, bus, rest = address.split(":")
    slot, fn = rest.split(".")
    return {"domain": f"0x{dom}", "bus": f"0x{bus}", "slot": f"0x{slot}", "function": f"0x{fn}"}


def _check_name(what: str, value: str, pattern: re.Pattern[str], expected: str) -> None:
    if not pattern.fullmatch(value) or value in (".", ".."):
        raise InvalidValueError(what, value, expected)


@dataclass(frozen=True, slots=True)
class Failover:
    """The persistent half of a migratable SR-IOV pair (virtio ``net_failover`` in the guest).

    The guest bonds a virtio NIC (always present, ``<teaming type='persistent'/>``) with the VF
    (``<teaming type='transient' persistent='ALIAS'/>``) that carries the same MAC; the VF is
    unplugged before migration and traffic falls back to virtio. The virtio NIC sits on a host
    ``bridge`` or a libvirt ``network`` (exactly one of the two).
    """

    alias: str = "ua-failover0"
    bridge: str | None = None
    network: str | None = None

    def __post_init__(self) -> None:
        _check_name("failover alias", self.alias, _ALIAS, "'ua-' followed by [A-Za-z0-9_.-]")
        if (self.bridge is None) == (self.network is None):
            raise VifFieldError(
                "bridge/network", "failover pair", "give exactly one: where the virtio NIC plugs"
            )
        if self.bridge is not None:
            _check_name("bridge", self.bridge, _IFNAME, "a Linux interface name (<= 15 chars)")
        if self.network is not None:
            _check_name("network", self.network, _NET_NAME, "a libvirt network name")


# Fields a form cannot render, and why: given anyway, they would be silently lost.
_HOSTDEV_WHY = "a plain <hostdev> passes the PCI function through as it is"
_REFUSED: Final[Mapping[DeviceForm, Mapping[str, str]]] = {
    DeviceForm.HOSTDEV_INTERFACE: {
        "netdev": "is only used by vnic_type macvtap; drop it",
    },
    DeviceForm.NETWORK_INTERFACE: {
        "pci_address": "is chosen by libvirt from the hostdev network's pool; drop it",
        "netdev": "is only used by vnic_type macvtap; drop it",
    },
    DeviceForm.DIRECT_INTERFACE: {
        "hostdev_network": "needs vnic_type direct (a hostdev pool hands out whole VFs)",
        "failover": "needs vnic_type direct: only a VF passed through can be the transient half",
    },
    DeviceForm.PCI_HOSTDEV: {
        "mac": f"cannot be set: {_HOSTDEV_WHY} (InfiniBand VFs get GUIDs from LinkOps instead)",
        "vlan": f"cannot be set: {_HOSTDEV_WHY} (use a PKey for InfiniBand, hw_veb for VLANs)",
        "netdev": "is only used by vnic_type macvtap; drop it",
        "hostdev_network": "needs vif_type hw_veb or 802.1qbh with vnic_type direct",
        "failover": "needs an <interface type='hostdev'> (vif_type hw_veb, vnic_type direct)",
    },
}
_QBH_VLAN_WHY = (
    "cannot be set: the 802.1Qbh port profile (profileid) carries the VLAN, as the fabric "
    "defines it; libvirt refuses a <vlan> next to an 802.1Qbh virtualport ('direct setting "
    "of the vlan tag is not allowed for hostdev devices using 802.1Qbh mode'); leave it unset"
)
_REQUIRED: Final[Mapping[DeviceForm, Mapping[str, str]]] = {
    DeviceForm.HOSTDEV_INTERFACE: {"pci_address": "the VF's PCI address (0000:03:10.1)"},
    DeviceForm.NETWORK_INTERFACE: {"hostdev_network": "the hostdev network's name"},
    DeviceForm.DIRECT_INTERFACE: {"netdev": "the VF's host netdev name (macvtap sits on it)"},
    DeviceForm.PCI_HOSTDEV: {"pci_address": "the PCI address of the function to pass through"},
}


@dataclass(frozen=True, slots=True)
class BoundVif:
    """Everything needed to render one port's device, already resolved.

    ``pci_address`` is the VF's, or the PF's for ``hostdev_physical``. ``vlan`` is ``None`` on
    a flat network (no ``<vlan>`` is rendered; Nova rendered ``tag id='0'``), and always for
    ``802.1qbh``, whose port profile carries the VLAN (refused if given). ``alias`` names
    the device in the domain (``ua-…``) so that it can be found again for detach.
    """

    vif_type: VifType
    vnic_type: VnicType
    pci_address: str | None = None
    mac: str | None = None
    vlan: int | None = None
    netdev: str | None = None
    profileid: str | None = None
    hostdev_network: str | None = None
    alias: str | None = None
    failover: Failover | None = None
    managed: bool = True

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "vif_type", _enum(VifType, self.vif_type, "vif_type"))
        set_(self, "vnic_type", _enum(VnicType, self.vnic_type, "vnic_type"))
        supported = SUPPORTED_VNIC_TYPES[self.vif_type]
        if self.vnic_type not in supported:
            raise UnsupportedVifError(self.vif_type, self.vnic_type, supported)
        if self.pci_address is not None:
            set_(self, "pci_address", normalize_pci_address(self.pci_address))
        if self.mac is not None:
            set_(self, "mac", _unicast_mac(self.mac))
        self._check_values()
        self._check_fields()

    @property
    def form(self) -> DeviceForm:
        if self.vif_type in (VifType.IB_HOSTDEV, VifType.HOSTDEV_PHYSICAL):
            return DeviceForm.PCI_HOSTDEV
        if self.vnic_type is VnicType.MACVTAP:
            return DeviceForm.DIRECT_INTERFACE
        if self.hostdev_network is not None:
            return DeviceForm.NETWORK_INTERFACE
        return DeviceForm.HOSTDEV_INTERFACE

    def _check_values(self) -> None:
        if self.vlan is not None and (
            isinstance(self.vlan, bool) or not VLAN_MIN <= self.vlan <= VLAN_MAX
        ):
            raise InvalidVlanError(
                self.vlan, f"{VLAN_MIN}-{VLAN_MAX}; leave it unset for a flat (untagged) network"
            )
        if self.netdev is not None:
            _check_name("netdev", self.netdev, _IFNAME, "a Linux interface name (<= 15 chars)")
        if self.hostdev_network is not None:
            _check_name("hostdev network", self.hostdev_network, _NET_NAME, "a network name")
        if self.alias is not None:
            _check_name("alias", self.alias, _ALIAS, "'ua-' followed by [A-Za-z0-9_.-]")
        if self.profileid is not None and not 0 < len(self.profileid) <= PROFILEID_MAX:
            raise InvalidValueError(
                "802.1Qbh profileid", self.profileid, f"1-{PROFILEID_MAX} characters"
            )

    def _check_fields(self) -> None:
        form = self.form
        where = f"vif_type {self.vif_type} with vnic_type {self.vnic_type}"
        for field, need in _REQUIRED[form].items():
            if getattr(self, field) is None:
                raise VifFieldError(field, where, f"is required: give {need}")
        for field, why in _REFUSED[form].items():
            if getattr(self, field) is not None:
                raise VifFieldError(field, where, why)
        if self.vif_type is VifType.QBH and self.vlan is not None:
            raise VifFieldError("vlan", where, _QBH_VLAN_WHY)
        if (self.vif_type is VifType.QBH) != (self.profileid is not None):
            problem = (
                "is required: the port profile the upstream switch applies"
                if self.profileid is None
                else "is only used by vif_type 802.1qbh; drop it"
            )
            raise VifFieldError("profileid", where, problem)
        self._check_failover(where)

    def _check_failover(self, where: str) -> None:
        if self.failover is None:
            return
        if self.mac is None:
            raise VifFieldError("mac", where, "is required with failover: both halves share it")
        if self.alias == self.failover.alias:
            raise VifFieldError(
                "alias", where, "must differ from the failover alias (two devices, two names)"
            )


def _enum(cls: type[_E], value: object, what: str) -> _E:
    try:
        return cls(str(value))
    except ValueError:
        raise InvalidValueError(what, value, "one of " + ", ".join(e.value for e in cls)) from None


def _unicast_mac(mac: str) -> str:
    norm = parse_mac(mac)
    if int(norm[:2], 16) & 1:
        raise InvalidMacError(mac, "a unicast MAC (libvirt refuses multicast ones)")
    return norm


# --- rendering -------------------------------------------------------------------------------


def _sub(parent: ET.Element, tag: str, **attrs: str) -> ET.Element:
    return ET.SubElement(parent, tag, attrs)


def _common(el: ET.Element, vif: BoundVif) -> None:
    """The children every <interface> form shares."""
    if vif.mac is not None:
        _sub(el, "mac", address=vif.mac)
    if vif.vlan is not None:
        _sub(_sub(el, "vlan"), "tag", id=str(vif.vlan))
    if vif.profileid is not None:
        _sub(_sub(el, "virtualport", type="802.1Qbh"), "parameters", profileid=vif.profileid)
    if vif.failover is not None:
        _sub(el, "teaming", type="transient", persistent=vif.failover.alias)
    if vif.alias is not None:
        _sub(el, "alias", name=vif.alias)


def _managed(vif: BoundVif) -> str:
    return "yes" if vif.managed else "no"


def _hostdev_interface(vif: BoundVif) -> ET.Element:
    el = ET.Element("interface", type="hostdev", managed=_managed(vif))
    assert vif.pci_address is not None  # guaranteed by BoundVif's checks
    _sub(_sub(el, "source"), "address", type="pci", **_pci_attrs(vif.pci_address))
    _common(el, vif)
    return el


def _network_interface(vif: BoundVif) -> ET.Element:
    el = ET.Element("interface", type="network")
    assert vif.hostdev_network is not None
    _sub(el, "source", network=vif.hostdev_network)
    _common(el, vif)
    return el


def _direct_interface(vif: BoundVif) -> ET.Element:
    el = ET.Element("interface", type="direct")
    assert vif.netdev is not None
    _sub(el, "source", dev=vif.netdev, mode="passthrough")
    _sub(el, "model", type="virtio")
    _common(el, vif)
    return el


def _pci_hostdev(vif: BoundVif) -> ET.Element:
    el = ET.Element("hostdev", mode="subsystem", type="pci", managed=_managed(vif))
    assert vif.pci_address is not None
    _sub(_sub(el, "source"), "address", **_pci_attrs(vif.pci_address))
    if vif.alias is not None:
        _sub(el, "alias", name=vif.alias)
    return el


_BUILDERS: Final = {
    DeviceForm.HOSTDEV_INTERFACE: _hostdev_interface,
    DeviceForm.NETWORK_INTERFACE: _network_interface,
    DeviceForm.DIRECT_INTERFACE: _direct_interface,
    DeviceForm.PCI_HOSTDEV: _pci_hostdev,
}


def _text(el: ET.Element) -> str:
    ET.indent(el)
    return ET.tostring(el, encoding="unicode")


def render_interface(vif: BoundVif) -> str:
    """The device XML for one bound port (an ``<interface>`` or a ``<hostdev>``).

    With ``vif.failover`` set this is the VF (transient) half of the pair; use
    :func:`render_failover_pair` to get both.
    """
    return _text(_BUILDERS[vif.form](vif))


def render_failover_pair(vif: BoundVif) -> tuple[str, str]:
    """``(persistent virtio interface, transient VF interface)`` of a migratable SR-IOV port.

    Attach the virtio one first: the guest's ``net_failover`` enslaves the VF to it by MAC.
    """
    if vif.failover is None:
        raise VifFieldError(
            "failover", "render_failover_pair", "is required: say where the virtio NIC plugs"
        )
    fo = vif.failover
    assert vif.mac is not None
    if fo.bridge is not None:
        el = ET.Element("interface", type="bridge")
        _sub(el, "source", bridge=fo.bridge)
    else:
        el = ET.Element("interface", type="network")
        _sub(el, "source", network=str(fo.network))
    _sub(el, "mac", address=vif.mac)
    _sub(el, "model", type="virtio")
    _sub(el, "teaming", type="persistent")
    _sub(el, "alias", name=fo.alias)
    return _text(el), render_interface(vif)


def render_hostdev_network(
    name: str, pf_devs: Sequence[str] = (), *, vf_addresses: Iterable[str] = ()
) -> str:
    """A libvirt ``<network>`` that is a pool of VFs (``<forward mode='hostdev' managed='yes'>``).

    VMs then use ``<interface type='network'><source network='NAME'/>`` and libvirt picks a
    free VF: the domain XML names a logical network, not a host's PCI address, so it stays
    valid on any host that defines a network of the same name (migration).

    The pool is either all VFs of **one** PF (``pf_devs``, its netdev name; libvirt allows a
    single ``<pf>`` per network) or an explicit list of VF PCI addresses, which may span PFs.
    """
    _check_name("network name", name, _NET_NAME, "1-64 characters without '/' or whitespace")
    vfs = [normalize_pci_address(a) for a in vf_addresses]
    pfs = list(pf_devs)
    if not pfs and not vfs:
        raise VifFieldError(
            "pf_devs", f"hostdev network {name!r}", "is empty: give one PF or VF addresses"
        )
    if len(pfs) + (1 if vfs else 0) != 1:
        raise VifFieldError(
            "pf_devs",
            f"hostdev network {name!r}",
            f"has {len(pfs)} PF(s) and {len(vfs)} VF address(es), but libvirt allows exactly "
            "one <pf> per network, or a list of VF addresses instead: for several PFs define "
            "one network per PF, or list their VFs",
        )
    net = ET.Element("network")
    ET.SubElement(net, "name").text = name
    fwd = _sub(net, "forward", mode="hostdev", managed="yes")
    for pf in pfs:
        _check_name("PF netdev", pf, _IFNAME, "a Linux interface name (<= 15 chars)")
        _sub(fwd, "pf", dev=pf)
    for vf in vfs:
        _sub(fwd, "address", type="pci", **_pci_attrs(vf))
    return _text(net)


def render_test_domain(name: str, devices: Iterable[str], *, domain_type: str = "test") -> str:
    """A minimal ``<domain>`` around device XML: what libvirt's schema and its ``test:///``
    driver need to validate, define and start rendered devices (tests, bench, simulator)."""
    dom = ET.Element("domain", type=domain_type)
    ET.SubElement(dom, "name").text = name
    ET.SubElement(dom, "memory", unit="KiB").text = "1048576"
    ET.SubElement(dom, "vcpu").text = "1"
    ET.SubElement(ET.SubElement(dom, "os"), "type", arch="x86_64").text = "hvm"
    devs = ET.SubElement(dom, "devices")
    for xml in devices:
        devs.append(ET.fromstring(xml))
    return _text(dom)
