"""What the controller's desired state means on this host.

``GET /v1/hosts/{name}/desired-state`` lists every claimed device with the port's settings;
the document is one model shared with the controller (:mod:`vfkeeper.domain.desired_state`).
:func:`wanted_config` is what LinkOps must program on a port's VF, :func:`bound_vif` the
libvirt device to attach (rendered by :mod:`vfkeeper.domain.vif`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from vfkeeper.agent.linkops.protocol import LinkState, VfAttr, VfConfig, Vlan
from vfkeeper.domain.desired_state import DesiredPort
from vfkeeper.domain.inventory import HostInventory
from vfkeeper.domain.vif import BoundVif, VifType, VnicType


def _mbit(kbps: int | None) -> int | None:
    """The port's kbit/s as the VF's Mbit/s (rounded up, so a small limit stays a limit)."""
    return None if kbps is None else math.ceil(kbps / 1000)


def wanted_config(port: DesiredPort) -> VfConfig:
    """What LinkOps programs on the port's VF before it is attached."""
    common: dict[str, Any] = {"link_state": LinkState(port.link_state)}
    if port.min_tx_rate_kbps:
        common["min_tx_rate"] = _mbit(port.min_tx_rate_kbps)
    if port.max_tx_rate_kbps:
        common["max_tx_rate"] = _mbit(port.max_tx_rate_kbps)
    if port.vif_type == VifType.IB_HOSTDEV:
        return VfConfig(node_guid=port.guid, port_guid=port.guid, **common)
    return VfConfig(mac=port.mac, vlan=Vlan(port.vlan or 0), spoofchk=port.spoofchk,
                    trust=port.trusted, **common)  # fmt: skip


def not_settable(port: DesiredPort) -> frozenset[VfAttr]:
    """What the port asks for that no VF of its kind can be set to, so it is never programmed
    and is reported as skipped: an InfiniBand VF (``ib_hostdev``) has no trust, spoof check or
    VLAN (a PKey isolates it; mlx5_ib refuses the rest), whatever the network says."""
    if port.vif_type != VifType.IB_HOSTDEV:
        return frozenset()
    asked = {VfAttr.TRUST: port.trusted, VfAttr.SPOOFCHK: not port.spoofchk,
             VfAttr.VLAN: bool(port.vlan)}  # fmt: skip
    return frozenset(a for a, wanted in asked.items() if wanted)


@dataclass(frozen=True, slots=True)
class HostIndex:
    """What the agent needs from its own inventory: PF and VF netdev names by PCI address."""

    netdev: dict[str, str]
    addresses: frozenset[str]

    @classmethod
    def of(cls, inventory: HostInventory) -> HostIndex:
        return cls(
            {d.address: d.netdevs[0].name for d in inventory.devices if d.netdevs},
            frozenset(d.address for d in inventory.devices),
        )


def bound_vif(port: DesiredPort, index: HostIndex) -> BoundVif:
    """The libvirt device of the port (raises the domain's typed errors when it cannot be)."""
    vif_type = VifType(port.vif_type)
    vnic_type = VnicType(port.vnic_type)
    pci_hostdev = vif_type in (VifType.IB_HOSTDEV, VifType.HOSTDEV_PHYSICAL)
    macvtap = vnic_type is VnicType.MACVTAP
    return BoundVif(
        vif_type=vif_type,
        vnic_type=vnic_type,
        pci_address=None if macvtap else port.address,
        mac=None if pci_hostdev else port.mac,
        vlan=port.vif_vlan,
        netdev=index.netdev.get(port.address) if macvtap else None,
        profileid=port.profileid,
        alias=port.alias,
    )
