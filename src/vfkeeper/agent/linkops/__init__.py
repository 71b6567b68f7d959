"""VF programming: read and set a VF's MAC, VLAN, trust, spoof check, link state, rates and
InfiniBand GUIDs through one narrow :class:`LinkOps` protocol, with snapshot-and-restore.

* :mod:`.protocol` — ``LinkOps`` and its frozen values (``VfState``, ``VfConfig``, ``Vlan``)
* :mod:`.pyroute2_impl` — the real implementation (netlink, MLNX_OFED sysfs fallback)
* :mod:`.fake` — an in-memory implementation that refuses what each NIC's driver refuses
* :mod:`.snapshot` — apply with a required/best-effort policy; restore what was changed
* :mod:`.privileged` — the few writes that change the host
* :mod:`.errors` — the typed errors

See docs/vf-programming.md.
"""

from vfkeeper.agent.linkops.errors import (
    LinkOpsError,
    PfNotFoundError,
    RestoreIncompleteError,
    VfAttributeNotSupportedError,
    VfBusyError,
    VfNotFoundError,
    VfPermissionError,
    VfRebindError,
    VfRefusedError,
    VfValueRejectedError,
)
from vfkeeper.agent.linkops.protocol import LinkOps, LinkState, VfAttr, VfConfig, VfState, Vlan
from vfkeeper.agent.linkops.snapshot import (
    DEFAULT_POLICY,
    STRICT_POLICY,
    ApplyResult,
    Requirement,
    VfSnapshot,
    apply,
    restore,
)

__all__ = [
    "DEFAULT_POLICY",
    "STRICT_POLICY",
    "ApplyResult",
    "LinkOps",
    "LinkOpsError",
    "LinkState",
    "PfNotFoundError",
    "Requirement",
    "RestoreIncompleteError",
    "VfAttr",
    "VfAttributeNotSupportedError",
    "VfBusyError",
    "VfConfig",
    "VfNotFoundError",
    "VfPermissionError",
    "VfRebindError",
    "VfRefusedError",
    "VfSnapshot",
    "VfState",
    "VfValueRejectedError",
    "Vlan",
    "apply",
    "restore",
]
