"""An in-memory ``DomainOps`` that refuses what libvirtd refuses, with libvirt's wording.

libvirt's ``test:///default`` driver defines, starts and prints domains but implements no
attach or detach, so this fake models those on top of its own domain table. What it refuses,
as libvirtd 9.0 does (checked in the VM tier, ``tests/vm/test_libvirt_hotplug.py``, which runs
the same sequence against both):

* a live change to a domain that is not running (``DomainNotRunningError``);
* attaching, live, a PCI function a running domain already has (``DeviceInUseError``: "PCI
  device … is in use by driver QEMU, domain …"), and starting a domain whose configuration
  holds such a function;
* a second device with the same alias in one definition (``DuplicateAliasError``);
* detaching a device the definition does not hold (``DeviceNotFoundError``);
* migrating or saving a domain that is not running, or that holds a PCI function
  (``HostdevBlocksError``, QEMU's migration blockers as libvirt passes them on); migrating to a
  URI libvirt's client library calls local (no server and no ``socket=``: error 8, before any
  other check), to a URI nothing in ``fabric`` answers (error 38), to a libvirtd with this one's
  host UUID (error 1), or where a domain of that name runs or has another UUID (55, 9).

What libvirt does to the host, modelled so tests can watch it: a ``managed='yes'`` PCI device
attached live is rebound to ``vfio-pci`` (``drivers``) and given back to its driver when it
leaves; an ``<interface type='hostdev'>`` has its MAC and VLAN set on the VF through the PF
(via the ``LinkOps`` given, when one is) and put back when it leaves — where the VF had no
admin MAC, libvirt puts back the random one its VF driver made up (igbvf), not zeros. With a
``<virtualport type='802.1Qbh'>`` (``virHostdevSetNetConfig``) libvirt instead refuses a
``<vlan>`` (the port profile carries it), associates the port profile (``IFLA_VF_PORTS``;
``port_profiles``) and sets only the MAC, saves nothing and, when the device leaves, only
disassociates the profile. A live
detach completes only when the guest answers the hot-unplug (``guest_answers_unplug``); until
then the device stays in the live definition, as with libvirt when a guest does not respond.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from vfkeeper.agent.libvirt.devices import parse_devices
from vfkeeper.agent.libvirt.errors import (
    OPERATION_INVALID,
    DeviceInUseError,
    DeviceNotFoundError,
    DomainNotFoundError,
    DomainNotRunningError,
    DuplicateAliasError,
    HostdevBlocksError,
    LibvirtCallError,
)
from vfkeeper.agent.libvirt.protocol import Domain, DomainDevice, DomainDevices, DomainState
from vfkeeper.agent.linkops.protocol import ZERO_MAC, LinkOps, VfConfig, Vlan

VfLocator = Callable[[str], "tuple[str, int] | None"]
"""PCI address → (PF netdev, VF index), or None when the address is not a VF."""


@dataclass
class FakeDomain:
    name: str
    uuid: str
    state: DomainState = DomainState.SHUTOFF
    config: list[DomainDevice] = field(default_factory=list)
    live: list[DomainDevice] = field(default_factory=list)
    guest_answers_unplug: bool = True
    """False: a live detach is accepted but the device stays until :meth:`FakeDomainOps.
    guest_acks` (a guest that has not booted far enough to answer the ACPI/PCIe eject)."""
    unplug_pending: list[DomainDevice] = field(default_factory=list)
    managed_save: bool = False
    saved_live: list[DomainDevice] = field(default_factory=list)
    """The live devices in the managed save image, which a start restores."""

    @property
    def info(self) -> Domain:
        return Domain(self.name, self.uuid, self.state, self.managed_save)


def _element(xml: str) -> DomainDevice:
    devices = parse_devices(f"<domain><devices>{xml}</devices></domain>")
    if len(devices) != 1:
        raise LibvirtCallError("parse device XML", "-", 27,
                               "XML error: expected one <interface> or <hostdev> element")
    return devices[0]


def _driver_mac(address: str) -> str:
    """A locally administered MAC standing in for the one a VF driver made up."""
    digest = uuid.uuid5(uuid.NAMESPACE_URL, address).bytes
    return "d2:" + ":".join(f"{b:02x}" for b in digest[:5])


def _same(a: DomainDevice, b: DomainDevice) -> bool:
    """libvirt's device matching for detach by XML: hostdevs by source address, interfaces by
    MAC (and source)."""
    if a.kind != b.kind or a.type != b.type:
        return False
    if a.kind == "hostdev":
        return a.pci_address == b.pci_address
    return (a.mac, a.pci_address, a.source_dev) == (b.mac, b.pci_address, b.source_dev)


class FakeDomainOps:
    """In-memory domains and their devices. ``linkops`` + ``locate`` let it program a VF's MAC
    and VLAN the way libvirt does for ``<interface type='hostdev'>``."""

    def __init__(self, linkops: LinkOps | None = None, locate: VfLocator | None = None, *,
                 uri: str = "fake:///system",
                 fabric: dict[str, FakeDomainOps] | None = None) -> None:  # fmt: skip
        self.uri = uri
        self.fabric = fabric if fabric is not None else {}
        """URI → the fake libvirt there: where :meth:`migrate` can send domains (this one
        joins it under ``uri``)."""
        self.fabric[uri] = self
        self.host_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, uri))
        """libvirtd's host UUID: a migration whose destination has the same is refused."""
        self.domains: dict[str, FakeDomain] = {}
        self.drivers: dict[str, str] = {}
        """PCI address → driver, for functions libvirt rebound (``vfio-pci``)."""
        self.calls: list[tuple[str, str]] = []
        """(operation, domain) of every accepted change, for tests."""
        self.port_profiles: dict[str, str] = {}
        """PCI address → the 802.1Qbh port profile libvirt associated for the VF."""
        self._linkops = linkops
        self._locate = locate
        self._saved: dict[str, VfConfig] = {}

    # -- reads ----------------------------------------------------------------------------------

    def _get(self, name: str) -> FakeDomain:
        try:
            return self.domains[name]
        except KeyError:
            raise DomainNotFoundError(name) from None

    def list_domains(self) -> tuple[Domain, ...]:
        return tuple(d.info for _, d in sorted(self.domains.items()))

    def devices(self, domain: str) -> DomainDevices:
        dom = self._get(domain)
        info = dom.info
        live = tuple(dom.live) if dom.state.active else ()
        return DomainDevices(info, live, tuple(dom.config))

    # -- domain lifecycle (tests, demo) ---------------------------------------------------------

    def define(self, xml: str) -> Domain:
        root = ET.fromstring(xml)
        name = root.findtext("name") or ""
        dom = self.domains.get(name) or FakeDomain(name, root.findtext("uuid") or str(uuid.uuid4()))
        dom.config = list(parse_devices(xml))
        self.domains[name] = dom
        return dom.info

    def start(self, domain: str) -> None:
        """Boot from the persistent definition, or restore the managed save image."""
        dom = self._get(domain)
        if dom.state.active:
            raise LibvirtCallError("start", domain, OPERATION_INVALID,
                                   "Requested operation is not valid: domain is already running")
        devices = dom.saved_live if dom.managed_save else dom.config
        for device in devices:
            self._check_free(device, domain)
            _check_net_config(device, "start", domain)
        dom.state = DomainState.RUNNING
        dom.live = []
        for device in devices:
            self._plug(device)
            dom.live.append(device)
        dom.managed_save, dom.saved_live = False, []
        self.calls.append(("start", domain))

    # -- save and migration ---------------------------------------------------------------------

    def domain_xml(self, domain: str, *, inactive: bool = False) -> str:
        dom = self._get(domain)
        devices = dom.config if inactive or not dom.state.active else dom.live
        body = "".join(d.xml for d in devices)
        return (f"<domain type='kvm'><name>{dom.name}</name><uuid>{dom.uuid}</uuid>"
                f"<devices>{body}</devices></domain>")

    def check_movable(self, domain: str, operation: str) -> None:
        """What libvirtd checks before a migration or a save: a running domain whose QEMU has
        no migration blocker (one per PCI function it holds)."""
        dom = self._get(domain)
        if not dom.state.active:
            raise DomainNotRunningError(dom.name, operation)
        held = tuple(d.pci_address for d in dom.live if d.pci_address is not None)
        if held:
            raise HostdevBlocksError(operation, dom.name, held)

    def managed_save(self, domain: str) -> None:
        self.check_movable(domain, "save")
        dom = self._get(domain)
        dom.saved_live, dom.live = list(dom.live), []
        dom.state, dom.managed_save = DomainState.SHUTOFF, True
        self.calls.append(("managed_save", domain))

    def migrate(self, domain: str, dest_uri: str, *, dest_xml: str | None = None,
                persist_xml: str | None = None) -> None:
        """libvirt's checks in libvirt's order: the client library's "same host" look at the
        URI, the domain running without a migration blocker, the connection to the destination,
        the destination's host UUID, a domain of that name there."""
        dom = self._get(domain)
        if _names_this_host(dest_uri):
            raise LibvirtCallError("migrate", domain, _INVALID_ARG,
                                   "Attempt to migrate guest to the same host")
        self.check_movable(domain, "migrate")
        peer = self.fabric.get(dest_uri)
        if peer is None:
            raise LibvirtCallError("migrate", domain, _SYSTEM_ERROR, _unreachable(dest_uri))
        if peer.host_uuid == self.host_uuid:
            raise LibvirtCallError("migrate", domain, _INTERNAL_ERROR, "internal error: Attempt "
                                   f"to migrate guest to the same host {self.host_uuid}")
        there = peer.domains.get(domain)
        if there is not None and there.uuid != dom.uuid:
            raise LibvirtCallError("migrate", domain, _OPERATION_FAILED, "operation failed: "
                                   f"domain '{domain}' already exists with uuid {there.uuid}")
        if there is not None and there.state.active:
            raise LibvirtCallError("migrate", domain, OPERATION_INVALID, "Requested operation "
                                   f"is not valid: domain '{domain}' is already active")
        live = list(parse_devices(dest_xml)) if dest_xml else list(dom.live)
        config = list(parse_devices(persist_xml)) if persist_xml else list(dom.config)
        moved = FakeDomain(dom.name, dom.uuid, DomainState.RUNNING, config, [],
                           dom.guest_answers_unplug)
        for device in live:
            peer._plug(device)
            moved.live.append(device)
        peer.domains[domain] = moved
        for device in dom.live:
            self._unplug(device)
        del self.domains[domain]
        self.calls.append(("migrate", domain))
        peer.calls.append(("incoming", domain))

    def destroy(self, domain: str) -> None:
        """Power the domain off: its live devices leave (and are given back to the host)."""
        dom = self._get(domain)
        for device in dom.live:
            self._unplug(device)
        dom.live, dom.unplug_pending = [], []
        dom.state = DomainState.SHUTOFF
        self.calls.append(("destroy", domain))

    def undefine(self, domain: str) -> None:
        dom = self._get(domain)
        if dom.state.active:
            self.destroy(domain)
        del self.domains[domain]

    def guest_acks(self, domain: str) -> None:
        """The guest answers every pending hot-unplug: those devices leave the live domain."""
        dom = self._get(domain)
        for device in dom.unplug_pending:
            self._remove_live(dom, device)
        dom.unplug_pending = []

    # -- attach / detach ------------------------------------------------------------------------

    def attach(self, domain: str, xml: str, *, live: bool, config: bool) -> None:
        dom = self._get(domain)
        device = _element(xml)
        if live and not dom.state.active:
            raise DomainNotRunningError(domain, "attach a device")
        # libvirt checks aliases before the PCI function's owner (seen with libvirtd 9.0)
        if live:
            self._check_alias(dom, dom.live, device)
        if config:
            self._check_alias(dom, dom.config, device)
        if live:
            self._check_free(device, None)
            _check_net_config(device, "attach a device", domain)
        if config and device.pci_address in {d.pci_address for d in dom.config} - {None}:
            raise DeviceInUseError(str(device.pci_address), domain,
                                   "device is already in the domain configuration")
        if config:
            dom.config.append(device)
        if live:
            self._plug(device)
            dom.live.append(device)
        self.calls.append(("attach", domain))

    def detach(self, domain: str, device: DomainDevice, *, live: bool, config: bool) -> None:
        dom = self._get(domain)
        if live and not dom.state.active:
            raise DomainNotRunningError(domain, "detach a device")
        live_match = self._match(dom, dom.live, device) if live else None
        config_match = self._match(dom, dom.config, device) if config else None
        if config_match is not None:
            dom.config.remove(config_match)
        if live_match is not None:
            if dom.guest_answers_unplug:
                self._remove_live(dom, live_match)
            elif live_match not in dom.unplug_pending:
                dom.unplug_pending.append(live_match)
        self.calls.append(("detach", domain))

    def _match(self, dom: FakeDomain, devices: list[DomainDevice],
               wanted: DomainDevice) -> DomainDevice:  # fmt: skip
        for d in devices:
            if (wanted.alias is not None and d.alias == wanted.alias) or (
                wanted.alias is None and _same(d, wanted)
            ):
                return d
        what = f"with alias {wanted.alias}" if wanted.alias else wanted.describe
        raise DeviceNotFoundError(dom.name, what, f"internal error: no device found {what}")

    # -- libvirt's checks and host side effects -------------------------------------------------

    def _holder(self, address: str) -> str | None:
        for dom in self.domains.values():
            if dom.state.active and any(d.pci_address == address for d in dom.live):
                return dom.name
        return None

    def _check_free(self, device: DomainDevice, starting: str | None) -> None:
        if device.pci_address is None:
            return
        holder = self._holder(device.pci_address)
        if holder is not None and holder != starting:
            raise DeviceInUseError(
                device.pci_address, holder,
                f"Requested operation is not valid: PCI device {device.pci_address} is in use "
                f"by driver QEMU, domain {holder}")

    @staticmethod
    def _check_alias(dom: FakeDomain, devices: list[DomainDevice], device: DomainDevice) -> None:
        if device.alias is not None and any(d.alias == device.alias for d in devices):
            raise DuplicateAliasError(dom.name, device.alias)

    def _remove_live(self, dom: FakeDomain, device: DomainDevice) -> None:
        if device in dom.live:
            dom.live.remove(device)
            self._unplug(device)

    def _plug(self, device: DomainDevice) -> None:
        if device.pci_address is None:
            return
        self.drivers[device.pci_address] = "vfio-pci"
        if device.kind == "interface" and device.type == "hostdev":
            self._set_mac_vlan(device)

    def _unplug(self, device: DomainDevice) -> None:
        if device.pci_address is None:
            return
        self.drivers.pop(device.pci_address, None)
        self.port_profiles.pop(device.pci_address, None)  # disassociated; nothing was saved
        saved = self._saved.pop(device.pci_address, None)
        where = self._where(device.pci_address)
        if saved is not None and where is not None and self._linkops is not None:
            self._linkops.set_vf(where[0], where[1], saved)

    def _where(self, address: str) -> tuple[str, int] | None:
        return self._locate(address) if self._locate is not None else None

    def _set_mac_vlan(self, device: DomainDevice) -> None:
        assert device.pci_address is not None
        where = self._where(device.pci_address)
        if device.virtualport == QBH:
            self._associate(device, where)
            return
        if where is None or self._linkops is None:
            return
        before = self._linkops.get_vf(*where)
        wanted = VfConfig(mac=device.mac, vlan=Vlan(device.vlan or 0))
        # libvirt saves the MAC the VF's netdev has, which a VF driver picks at random while
        # the admin MAC is unset (igbvf); so it "restores" a random MAC, not the zero one.
        mac = before.mac if before.mac not in (None, ZERO_MAC) else _driver_mac(
            device.pci_address)  # fmt: skip
        self._saved[device.pci_address] = VfConfig(mac=mac, vlan=before.vlan)
        self._linkops.set_vf(where[0], where[1], wanted)


    def _associate(self, device: DomainDevice, where: tuple[str, int] | None) -> None:
        """802.1Qbh: one request on the PF with the VF's MAC (``IFLA_VF_MAC``, enic's
        ``ndo_set_vf_mac``) and the port profile (``IFLA_VF_PORTS``, ``ndo_set_vf_port``)."""
        assert device.pci_address is not None
        if where is not None and self._linkops is not None and device.mac is not None:
            self._linkops.set_vf(where[0], where[1], VfConfig(mac=device.mac))
        self.port_profiles[device.pci_address] = device.profileid or ""


QBH = "802.1Qbh"
_CONFIG_UNSUPPORTED = 67
"""``VIR_ERR_CONFIG_UNSUPPORTED``."""


def _check_net_config(device: DomainDevice, operation: str, domain: str) -> None:
    """What ``virHostdevSetNetConfig`` refuses before it touches the VF."""
    if device.kind == "interface" and device.type == "hostdev" and device.virtualport \
            and device.vlan is not None:
        raise LibvirtCallError(
            operation, domain, _CONFIG_UNSUPPORTED,
            "unsupported configuration: direct setting of the vlan tag is not allowed for "
            f"hostdev devices using {device.virtualport} mode")


_INTERNAL_ERROR, _INVALID_ARG, _OPERATION_FAILED, _SYSTEM_ERROR = 1, 8, 9, 38
"""``VIR_ERR_INTERNAL_ERROR``, ``VIR_ERR_INVALID_ARG``, ``VIR_ERR_OPERATION_FAILED``,
``VIR_ERR_SYSTEM_ERROR``."""


def _names_this_host(uri: str) -> bool:
    """libvirt's client library (``virDomainMigrateCheckNotLocal``) refuses a peer-to-peer
    destination URI without a server, unless it names a socket, or whose server starts with
    ``localhost``, before it asks the daemon anything."""
    parts = urlsplit(uri)
    server = parts.hostname
    if server is None:
        return "socket" not in parse_qs(parts.query)
    return server.startswith("localhost")


def _unreachable(uri: str) -> str:
    """libvirt's error when nothing listens at the destination (tcp/tls and unix transports)."""
    parts = urlsplit(uri)
    socket = parse_qs(parts.query).get("socket")
    if socket:
        return f"Failed to connect socket to '{socket[0]}': No such file or directory"
    transport = parts.scheme.partition("+")[2] or "tls"
    port = parts.port or (16509 if transport == "tcp" else 16514)
    return f"unable to connect to server at '{parts.hostname}:{port}': Connection refused"
