"""Errors of VF programming (``vfkeeper.agent.linkops``).

Every error names the PF, the VF index and, where it applies, the attribute and the value, and
its message says what to do. The tree::

    LinkOpsError                       base of everything linkops raises
    ├── PfNotFoundError                no network interface of that name on this host
    ├── VfNotFoundError                the PF has no VF with that index
    ├── VfPermissionError              the kernel said EPERM/EACCES: not root / no CAP_NET_ADMIN
    ├── VfRefusedError                 the PF's driver refused one attribute (errno attached)
    │   ├── VfAttributeNotSupportedError   EOPNOTSUPP / EPROTONOSUPPORT: the driver cannot do it
    │   ├── VfValueRejectedError           EINVAL / ERANGE: the driver rejects this value
    │   └── VfBusyError                    EBUSY / EAGAIN: the VF is resetting or in use; retry
    ├── VfRebindError                  a GUID was set but rebinding the VF's driver failed
    └── RestoreIncompleteError         some recorded attributes could not be put back

``LinkOpsError`` is an :class:`~vfkeeper.agent.errors.AgentError`.

A refusal of a *best-effort* attribute (see :mod:`vfkeeper.agent.linkops.snapshot`) is not
raised: it is returned in the apply result so that callers report it.
"""

from __future__ import annotations

import errno as errno_mod
import os
from collections.abc import Sequence

from vfkeeper.agent.errors import AgentError


class LinkOpsError(AgentError):
    """Base of every error VF programming raises."""


class PfNotFoundError(LinkOpsError):
    def __init__(self, pf: str) -> None:
        self.pf = pf
        super().__init__(
            f"no network interface {pf!r} on this host; give the PF's netdev name "
            "as `ip link` shows it (e.g. enp3s0f0 or ib0)"
        )


class VfNotFoundError(LinkOpsError):
    def __init__(self, pf: str, vf_index: int, num_vfs: int) -> None:
        self.pf = pf
        self.vf_index = vf_index
        self.num_vfs = num_vfs
        have = f"VFs 0-{num_vfs - 1}" if num_vfs else "no VFs (is sriov_numvfs 0?)"
        super().__init__(f"{pf} has no VF {vf_index}: it has {have}")


class VfPermissionError(LinkOpsError):
    def __init__(self, pf: str, vf_index: int, attribute: str, errno: int) -> None:
        self.pf = pf
        self.vf_index = vf_index
        self.attribute = attribute
        self.errno = errno
        super().__init__(
            f"{pf} VF {vf_index}: not allowed to set {attribute} ({_errname(errno)}); "
            "run the agent as root or with CAP_NET_ADMIN"
        )


class VfRefusedError(LinkOpsError):
    """The PF's driver refused to set ``attribute`` to ``value`` on VF ``vf_index``."""

    advice = "check the value and the NIC's documentation"

    def __init__(self, pf: str, vf_index: int, attribute: str, value: str, errno: int) -> None:
        self.pf = pf
        self.vf_index = vf_index
        self.attribute = attribute
        self.value = value
        self.errno = errno
        super().__init__(
            f"{pf} VF {vf_index}: the driver refused {attribute}={value} "
            f"({_errname(errno)}: {os.strerror(errno)}); {self.advice}"
        )


class VfAttributeNotSupportedError(VfRefusedError):
    advice = (
        "this NIC's driver cannot set that attribute on a VF: drop it from the request or the "
        "network, or use a NIC that supports it (docs/vf-programming.md lists them)"
    )


class VfValueRejectedError(VfRefusedError):
    advice = (
        "the driver accepts the attribute but not this value: check the NIC's limits "
        "(e.g. a rate must not exceed the link speed; igb, i40e and ixgbe allow no min rate)"
    )


class VfBusyError(VfRefusedError):
    advice = "the VF is being reset or is in use: retry in a moment"


class VfRebindError(LinkOpsError):
    """A VF's GUIDs were written, but unbinding/binding its driver to apply them failed."""

    def __init__(self, pf: str, vf_index: int, pci_address: str, driver: str, reason: str) -> None:
        self.pf = pf
        self.vf_index = vf_index
        self.pci_address = pci_address
        self.driver = driver
        self.reason = reason
        super().__init__(
            f"{pf} VF {vf_index}: its GUIDs are set but rebinding {pci_address} to {driver} "
            f"failed ({reason}); the VF uses the new GUIDs only after its driver is bound again: "
            f"echo {pci_address} > /sys/bus/pci/drivers/{driver}/bind"
        )


class RestoreIncompleteError(LinkOpsError):
    """Restoring a VF's recorded settings left some attributes unrestored."""

    def __init__(
        self,
        pf: str,
        vf_index: int,
        failures: Sequence[LinkOpsError],
        restored: Sequence[str],
    ) -> None:
        self.pf = pf
        self.vf_index = vf_index
        self.failures = tuple(failures)
        self.restored = tuple(restored)
        detail = "; ".join(str(f) for f in self.failures)
        super().__init__(
            f"{pf} VF {vf_index}: could not restore every recorded setting "
            f"(restored: {', '.join(self.restored) or 'none'}): {detail}. The VF keeps "
            "vfkeeper's values for those attributes; fix the cause and release it again"
        )


_NOT_SUPPORTED = {errno_mod.EOPNOTSUPP, errno_mod.EPROTONOSUPPORT}
_REJECTED = {errno_mod.EINVAL, errno_mod.ERANGE}
_BUSY = {errno_mod.EBUSY, errno_mod.EAGAIN}
_PERMISSION = {errno_mod.EPERM, errno_mod.EACCES}


def _errname(errno: int) -> str:
    return errno_mod.errorcode.get(errno, f"errno {errno}")


def refusal(
    pf: str, vf_index: int, attribute: str, value: str, errno: int
) -> VfRefusedError | VfPermissionError:
    """The typed error for a driver's ``-errno`` answer to setting one VF attribute."""
    if errno in _PERMISSION:
        return VfPermissionError(pf, vf_index, attribute, errno)
    cls: type[VfRefusedError] = VfRefusedError
    if errno in _NOT_SUPPORTED:
        cls = VfAttributeNotSupportedError
    elif errno in _REJECTED:
        cls = VfValueRejectedError
    elif errno in _BUSY:
        cls = VfBusyError
    return cls(pf, vf_index, attribute, value, errno)
