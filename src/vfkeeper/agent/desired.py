"""The controller's desired state as the agent reads it, and what it means on this host.

``GET /v1/hosts/{name}/desired-state`` lists every claimed device with the port's settings.
:class:`DesiredPort` is one entry; :func:`wanted_config` is what LinkOps must program on the
VF, :func:`bound_vif` the libvirt device to attach (rendered by :mod:`vfkeeper.domain.vif`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vfkeeper.agent.linkops.protocol import LinkState, VfAttr, VfConfig, Vlan
from vfkeeper.domain.inventory import HostInventory
from vfkeeper.domain.vif import BoundVif, VifType, VnicType

ALIAS_PREFIX = "ua-vfk-"
"""Device aliases the agent gives: libvirt keeps ``ua-`` aliases, so after a crash the agent
recognises its own devices (``ua-vfk-<port id>``)."""


class DesiredPort(BaseModel):
    """One entry of the desired state's ``vfs`` list."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    port_id: str
    request_id: str
    instance_id: str
    instance_name: str | None = None
    address: str
    parent_pf: str | None = None
    vf_index: int | None = None
    vnic_type: str
    vif_type: str
    mac: str | None = None
    guid: str | None = None
    vlan: int | None = None
    pkey: str | None = None
    profileid: str | None = None
    trusted: bool = False
    spoofchk: bool = True
    link_state: str = "auto"
    min_tx_rate_kbps: int | None = Field(default=None, ge=0)
    max_tx_rate_kbps: int | None = Field(default=None, ge=0)
    incoming: bool = False
    """Reserved here for an instance migrating in: program the VF before the domain comes."""
    unplugged: bool = False
    """Keep the device claimed but off the domain (the instance migrates away or is saved)."""

    @property
    def alias(self) -> str:
        return ALIAS_PREFIX + self.port_id

    @property
    def programs_vf(self) -> bool:
        """Whether LinkOps programs the VF before the attach. Not for a whole PF passed through
        (nothing can be), nor for an 802.1Qbh (VM-FEX) VF: libvirt associates its port profile
        and sets its MAC when it attaches the device, and the profile defined on the fabric
        carries the VLAN (enic has no ``ndo_set_vf_vlan``, spoof check, trust, rate or link
        state); so vfkeeper changes nothing on it and has nothing to restore."""
        return self.vif_type not in (VifType.HOSTDEV_PHYSICAL, VifType.QBH)

    @property
    def vif_vlan(self) -> int | None:
        """The VLAN the port's libvirt device carries: the network's, but for a PCI hostdev
        (none can be set) and 802.1qbh (its port profile carries it), and none on a flat
        network (``vlan`` 0 or unset)."""
        if self.vif_type in (VifType.IB_HOSTDEV, VifType.HOSTDEV_PHYSICAL, VifType.QBH):
            return None
        return self.vlan or None


class DesiredTask(BaseModel):
    """This host's part of an instance's lifecycle task (see docs/agent.md)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    task_id: str
    kind: Literal["migrate", "suspend", "resume"]
    role: Literal["source", "target"]
    instance_id: str
    instance_name: str | None = None
    peer_host: str | None = None
    migration_uri: str | None = None
    ready: bool = False
    abort: bool = False
    netdevs: dict[str, str] = Field(default_factory=dict)


class DesiredState(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    host: str
    generation: int
    vfs: tuple[DesiredPort, ...] = ()
    tasks: tuple[DesiredTask, ...] = ()

    @property
    def plugged(self) -> tuple[DesiredPort, ...]:
        """The ports whose devices must be on their domains (not ``unplugged``)."""
        return tuple(p for p in self.vfs if not p.unplugged)


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
