"""The demo hosts' hypervisor: libvirt's test driver for the domains, the agent's in-memory
model for the devices attached to them.

Each simulated host gets its own libvirt connection, ``test:///<file>`` (a test-driver
instance of its own: ``test:///default`` would be one instance shared by every connection of
the process). Domains are defined, started, listed and looked up there, through the agent's
real :class:`~vfkeeper.agent.libvirt.libvirt_impl.LibvirtDomainOps`. The test driver
implements no device hot-plug (``virDomainAttachDeviceFlags`` answers ``VIR_ERR_NO_SUPPORT``),
so attach and detach, and the device lists the agent reads back, go to the agent's
:class:`~vfkeeper.agent.libvirt.fake.FakeDomainOps` (which refuses what libvirtd 9.0 refuses
and, as libvirtd does, sets an ``<interface type='hostdev'>``'s MAC and VLAN through the fake
kernel, or for an 802.1Qbh port associates its port profile and sets only the MAC). Every
device call first looks the domain up in the test driver and takes its state from there.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from vfkeeper.agent.libvirt.errors import LibvirtCallError
from vfkeeper.agent.libvirt.fake import FakeDomainOps, VfLocator
from vfkeeper.agent.libvirt.libvirt_impl import LibvirtDomainOps
from vfkeeper.agent.libvirt.protocol import Domain, DomainDevice, DomainDevices
from vfkeeper.agent.linkops.protocol import LinkOps
from vfkeeper.domain.desired_state import DesiredState
from vfkeeper.domain.vif import render_test_domain

EMPTY_NODE = "<node/>\n"
"""A test-driver configuration with no domains, networks or pools."""


def own_test_driver_uri(node_file: Path) -> str:
    """A test-driver connection of its own, starting from ``node_file`` (written if absent)."""
    if not node_file.exists():
        node_file.parent.mkdir(parents=True, exist_ok=True)
        node_file.write_text(EMPTY_NODE)
    return "test://" + str(node_file.resolve())


def domain_xml(name: str, uuid: str) -> str:
    """A minimal domain for the test driver, named after the instance, its id as UUID (the
    agent finds an instance's domain by UUID, else by name)."""
    root = ET.fromstring(render_test_domain(name, [], domain_type="test"))
    ET.SubElement(root, "uuid").text = uuid
    return ET.tostring(root, encoding="unicode")


class HypervisorOnTestDriver:
    """``DomainOps``: domains on libvirt's test driver, devices in the agent's fake."""

    def __init__(self, uri: str, linkops: LinkOps, locate: VfLocator) -> None:
        self.libvirt = LibvirtDomainOps(uri)
        self.model = FakeDomainOps(linkops, locate)
        self.boots_placed_instances = False
        """True: every instance the controller places here gets a running domain when the
        agent next reads its desired state (the demo's ``--keep``, standing in for whatever
        starts VMs)."""

    @property
    def uri(self) -> str:
        return self.libvirt.uri

    def close(self) -> None:
        self.libvirt.close()

    def _domain(self, name: str) -> Domain:
        """The domain as the test driver has it; the device model follows its state."""
        info = self.libvirt.devices(name).domain  # raises DomainNotFoundError
        self.model.domains[name].state = info.state
        return info

    def list_domains(self) -> tuple[Domain, ...]:
        return self.libvirt.list_domains()

    def devices(self, domain: str) -> DomainDevices:
        info = self._domain(domain)
        held = self.model.devices(domain)
        return DomainDevices(info, held.live, held.config)

    def attach(self, domain: str, xml: str, *, live: bool, config: bool) -> None:
        self._domain(domain)
        self.model.attach(domain, xml, live=live, config=config)

    def detach(self, domain: str, device: DomainDevice, *, live: bool, config: bool) -> None:
        self._domain(domain)
        self.model.detach(domain, device, live=live, config=config)

    def domain_xml(self, domain: str, *, inactive: bool = False) -> str:
        self._domain(domain)
        return self.model.domain_xml(domain, inactive=inactive)

    def migrate(self, domain: str, dest_uri: str, *, dest_xml: str | None = None,
                persist_xml: str | None = None) -> None:
        """The test driver cannot migrate: libvirt's answer, once the fake's checks pass."""
        self._domain(domain)
        self.model.check_movable(domain, "migrate")
        raise LibvirtCallError("migrate", domain, 3, "this function is not supported by the "
                               "connection driver: virDomainMigrateToURI3")

    def managed_save(self, domain: str) -> None:
        self._domain(domain)
        self.model.managed_save(domain)  # refuses a domain holding a PCI function
        self.libvirt.managed_save(domain)

    def define(self, xml: str) -> Domain:
        info = self.libvirt.define(xml)
        root = ET.fromstring(xml)
        if root.find("uuid") is None:
            ET.SubElement(root, "uuid").text = info.uuid
        self.model.define(ET.tostring(root, encoding="unicode"))
        return info

    def start(self, domain: str) -> None:
        self.libvirt.start(domain)
        self.model.start(domain)

    def boot(self, name: str, uuid: str) -> Domain:
        """Define and start the instance's domain (what a VM manager does before the agent
        can attach anything)."""
        self.define(domain_xml(name, uuid))
        self.start(name)
        return self._domain(name)

    def ensure_domains(self, desired: DesiredState) -> None:
        """The agent's hook before each pass: with :attr:`boots_placed_instances`, boot the
        domain of every instance placed here that has none yet."""
        if not self.boots_placed_instances:
            return
        known = {d.name for d in self.list_domains()}
        busy = {t.instance_id for t in desired.tasks}
        for port in desired.vfs:
            name = port.instance_name or port.instance_id
            if name not in known and port.instance_id not in busy and not port.incoming:
                self.boot(name, port.instance_id)
                known.add(name)
