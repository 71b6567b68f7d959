"""The libvirt adapter: read which devices each domain holds, attach and detach one device.

* :mod:`.protocol` — ``DomainOps`` and its frozen values (``Domain``, ``DomainDevice``, …)
* :mod:`.devices` — domain XML → ``DomainDevice`` values (pure)
* :mod:`.libvirt_impl` — the real implementation on the libvirt Python binding
* :mod:`.fake` — in memory, refusing what libvirtd refuses (the test driver cannot attach)
* :mod:`.errors` — the typed errors

See docs/agent.md.
"""

from vfkeeper.agent.libvirt.errors import (
    DeviceInUseError,
    DeviceNotFoundError,
    DomainNotFoundError,
    DomainNotRunningError,
    DomainOpsError,
    DuplicateAliasError,
    HostdevBlocksError,
    LibvirtCallError,
    LibvirtUnavailableError,
)
from vfkeeper.agent.libvirt.protocol import (
    Domain,
    DomainDevice,
    DomainDevices,
    DomainOps,
    DomainState,
)

__all__ = [
    "DeviceInUseError",
    "DeviceNotFoundError",
    "Domain",
    "DomainDevice",
    "DomainDevices",
    "DomainNotFoundError",
    "DomainNotRunningError",
    "DomainOps",
    "DomainOpsError",
    "DomainState",
    "DuplicateAliasError",
    "HostdevBlocksError",
    "LibvirtCallError",
    "LibvirtUnavailableError",
]
