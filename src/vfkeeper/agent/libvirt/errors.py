"""Errors of the libvirt adapter (``vfkeeper.agent.libvirt``).

The real implementation turns libvirt's errors into these by code and message; the fake raises
the same ones, with libvirt's wording, for the same requests. The tree::

    DomainOpsError                  base of everything the adapter raises (an AgentError)
    ├── LibvirtUnavailableError     the binding is missing or the connection URI cannot be opened
    ├── DomainNotFoundError         no domain of that name on this host
    ├── DomainNotRunningError       a live change was asked of a domain that is not running
    ├── DeviceInUseError            the PCI function is already attached to a domain
    ├── DuplicateAliasError         the domain already has a device with that alias
    ├── DeviceNotFoundError         detach: the domain does not hold that device
    ├── HostdevBlocksError          migrate/save refused: the domain holds a PCI hostdev
    └── LibvirtCallError            anything else libvirt refused (its code and message kept)
"""

from __future__ import annotations

from vfkeeper.agent.errors import AgentError


class DomainOpsError(AgentError):
    """Base of every error the libvirt adapter raises."""


class LibvirtUnavailableError(DomainOpsError):
    def __init__(self, uri: str, reason: str) -> None:
        self.uri = uri
        self.reason = reason
        super().__init__(
            f"cannot use libvirt at {uri!r}: {reason}; check that libvirtd runs and the URI is "
            "right (--libvirt-uri, e.g. qemu:///system), and that libvirt-python is installed"
        )


class DomainNotFoundError(DomainOpsError):
    def __init__(self, domain: str) -> None:
        self.domain = domain
        super().__init__(
            f"no libvirt domain {domain!r} on this host; define it first (virsh define), or "
            "check the instance's host"
        )


class DomainNotRunningError(DomainOpsError):
    def __init__(self, domain: str, operation: str) -> None:
        self.domain = domain
        self.operation = operation
        super().__init__(
            f"cannot {operation} live: domain {domain!r} is not running; change only its "
            "persistent configuration (live=False, config=True)"
        )


class DeviceInUseError(DomainOpsError):
    def __init__(self, address: str, holder: str, message: str = "") -> None:
        self.address = address
        self.holder = holder
        super().__init__(
            f"PCI device {address} is in use by domain {holder!r}"
            + (f" (libvirt: {message})" if message else "")
            + "; detach it there first, or pick another VF"
        )


class DuplicateAliasError(DomainOpsError):
    def __init__(self, domain: str, alias: str) -> None:
        self.domain = domain
        self.alias = alias
        super().__init__(
            f"domain {domain!r} already has a device with alias {alias!r} (libvirt: unsupported "
            "configuration: non unique alias detected); detach that device or give another alias"
        )


class DeviceNotFoundError(DomainOpsError):
    def __init__(self, domain: str, what: str, message: str = "") -> None:
        self.domain = domain
        self.what = what
        super().__init__(
            f"domain {domain!r} holds no device {what}"
            + (f" (libvirt: {message})" if message else "")
            + "; read its devices again, it may already be detached"
        )


VFIO_BLOCKER_WORDING = "{address}: VFIO migration is not supported in kernel"
"""QEMU's migration blocker for a VFIO device whose kernel driver (plain ``vfio-pci``) cannot
migrate its state, one per device, as QEMU 10.0 words it (seen in the VM tier; QEMU 7.2,
Debian 12's own, says "VFIO device doesn't support migration", without the address)."""

HOSTDEV_BLOCKS_WORDING = "Requested operation is not valid: cannot migrate domain: {blockers}"
"""What libvirtd 9.0 answers a migration, a save or a managed save of a running domain that holds
a PCI function (``VIR_ERR_OPERATION_INVALID``, 55): it asks QEMU for its migration blockers and
joins them with "; ". Seen in the VM tier (libvirtd 9.0, QEMU 10.0, igb VFs on vfio-pci):
``…cannot migrate domain: 0000:01:10.0: VFIO migration is not supported in kernel; 0000:01:10.2:
VFIO migration is not supported in kernel``. For a QEMU that cannot report blockers, libvirt
checks the hostdevs itself and answers ``Operation not supported: cannot migrate a domain with
<interface type='hostdev'>`` (``VIR_ERR_OPERATION_UNSUPPORTED``, 84); the real adapter maps both."""

OPERATION_INVALID = 55
"""``VIR_ERR_OPERATION_INVALID``."""


def hostdev_blocks_message(addresses: tuple[str, ...]) -> str:
    """libvirtd 9.0's refusal to move a domain holding these PCI functions, as QEMU 10 words it."""
    return HOSTDEV_BLOCKS_WORDING.format(
        blockers="; ".join(VFIO_BLOCKER_WORDING.format(address=a) for a in addresses))


class HostdevBlocksError(DomainOpsError):
    """libvirt cannot migrate or save a domain while it holds a PCI function (``<hostdev>``
    or ``<interface type='hostdev'>``): QEMU cannot carry a device's state across.
    ``devices``: the PCI addresses the refusal names (QEMU 7.2's and libvirt's own wording name
    none); ``code``: libvirt's error code."""

    def __init__(self, operation: str, domain: str, devices: tuple[str, ...] = (),
                 message: str | None = None, *, code: int = OPERATION_INVALID) -> None:  # fmt: skip
        self.operation = operation
        self.domain = domain
        self.devices = devices
        self.code = code
        self.libvirt_message = message if message is not None else hostdev_blocks_message(devices)
        held = f" (it holds {', '.join(devices)})" if devices else ""
        super().__init__(
            f"libvirt cannot {operation} domain {domain!r} while it holds PCI passthrough "
            f"devices{held} (libvirt: {self.libvirt_message}); hot-unplug them first, as "
            "vfkeeper's migrate and suspend do")


class LibvirtCallError(DomainOpsError):
    def __init__(self, operation: str, domain: str, code: int, message: str) -> None:
        self.operation = operation
        self.domain = domain
        self.code = code
        self.libvirt_message = message
        super().__init__(
            f"libvirt refused to {operation} on domain {domain!r} (error {code}: {message}); "
            "see libvirtd's log for the cause"
        )
