"""The ``DomainOps`` protocol and the frozen values it speaks: domains and their devices.

The agent reads which passthrough devices each libvirt domain holds (hostdev PCI addresses,
interfaces with type, source, MAC, VLAN and alias), and attaches or detaches one device at a
time. A domain has two device lists: the **live** one (what the running QEMU has) and the
**config** one (the persistent definition it boots with). A shut-off domain has only the
config; both lists are then the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol


class DomainState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shutoff"
    OTHER = "other"
    """Crashed, being shut down, suspended to disk: libvirt's other states."""

    @property
    def active(self) -> bool:
        """A QEMU process exists: live attach and detach apply."""
        return self in (DomainState.RUNNING, DomainState.PAUSED)


@dataclass(frozen=True, slots=True)
class Domain:
    name: str
    uuid: str
    state: DomainState
    managed_save: bool = False
    """A managed save image exists (``virsh managedsave``): starting the domain restores it."""


DeviceKind = Literal["interface", "hostdev"]


@dataclass(frozen=True, slots=True)
class DomainDevice:
    """One ``<interface>`` or ``<hostdev>`` of a domain, as libvirt shows it.

    ``type`` is the element's ``type`` (``hostdev``, ``direct``, ``network`` … for interfaces;
    ``pci`` … for hostdevs). ``pci_address`` is the host function a hostdev or a
    ``type='hostdev'`` interface passes through (``dddd:bb:ss.f``); ``source_dev`` the host
    netdev a macvtap (``type='direct'``) sits on. ``virtualport`` is an interface's
    ``<virtualport type=…>`` (``802.1Qbh``) and ``profileid`` its port profile. ``xml`` is the
    element as libvirt printed it, which is what detaching by XML sends back.
    """

    kind: DeviceKind
    type: str
    xml: str
    pci_address: str | None = None
    source_dev: str | None = None
    mac: str | None = None
    vlan: int | None = None
    alias: str | None = None
    virtualport: str | None = None
    profileid: str | None = None

    @property
    def describe(self) -> str:
        what = self.pci_address or self.source_dev or self.mac or "?"
        return f"<{self.kind} type='{self.type}'> {what}" + (
            f" (alias {self.alias})" if self.alias else ""
        )


@dataclass(frozen=True, slots=True)
class DomainDevices:
    """A domain and the passthrough-relevant devices of its live and persistent definitions."""

    domain: Domain
    live: tuple[DomainDevice, ...] = ()
    config: tuple[DomainDevice, ...] = ()

    def all(self) -> Iterator[tuple[str, DomainDevice]]:
        """``("live" | "config", device)`` for every device of both lists."""
        for device in self.live:
            yield "live", device
        for device in self.config:
            yield "config", device


class DomainOps(Protocol):
    """What the agent asks of libvirt. One real implementation (the libvirt binding), one fake."""

    def list_domains(self) -> tuple[Domain, ...]:
        """Every domain defined or running on this host, by name."""
        ...

    def devices(self, domain: str) -> DomainDevices:
        """The domain's interfaces and hostdevs, live and persistent.

        Raises :class:`~vfkeeper.agent.libvirt.errors.DomainNotFoundError`."""
        ...

    def attach(self, domain: str, xml: str, *, live: bool, config: bool) -> None:
        """Attach one device: to the running domain (``live``), to its persistent definition
        (``config``), or both. Raises ``DomainNotRunningError`` (live on a domain that is not
        running), ``DeviceInUseError``, ``DuplicateAliasError``, ``LibvirtCallError``."""
        ...

    def detach(self, domain: str, device: DomainDevice, *, live: bool, config: bool) -> None:
        """Ask libvirt to remove one device (by its alias when it has one, else by its XML).

        A live detach of a PCI device needs the guest to answer the hot-unplug: libvirt may
        return before the guest did, so callers read the devices again to see it gone.
        Raises ``DeviceNotFoundError``, ``DomainNotRunningError``, ``LibvirtCallError``."""
        ...

    def domain_xml(self, domain: str, *, inactive: bool = False) -> str:
        """The domain's XML as migration sends it (``VIR_DOMAIN_XML_MIGRATABLE``): the running
        definition, or with ``inactive`` the persistent one. Raises ``DomainNotFoundError``."""
        ...

    def migrate(self, domain: str, dest_uri: str, *, dest_xml: str | None = None,
                persist_xml: str | None = None) -> None:
        """Live-migrate the running domain to the libvirtd at ``dest_uri`` (peer to peer; it
        becomes persistent there and is undefined here). ``dest_xml`` / ``persist_xml``: its
        running and persistent XML as the destination must have them (a macvtap's source
        netdev rewritten to the destination's VF). Raises ``DomainNotRunningError``,
        ``HostdevBlocksError`` (it holds a PCI hostdev, which libvirt cannot migrate),
        ``LibvirtCallError`` (e.g. the destination cannot be reached)."""
        ...

    def managed_save(self, domain: str) -> None:
        """Save the running domain's memory to libvirt's managed save image and stop it
        (``virDomainManagedSave``); :meth:`start` restores it. Raises
        ``DomainNotRunningError``, ``HostdevBlocksError``, ``LibvirtCallError``."""
        ...

    def define(self, xml: str) -> Domain:
        """Define a domain (tests and the demo; the agent never defines domains)."""
        ...

    def start(self, domain: str) -> None:
        """Start a defined domain; one with a managed save image is restored from it (the
        agent resumes a saved instance so)."""
        ...
