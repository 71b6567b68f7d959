"""The desired-state document (``GET /v1/hosts/{name}/desired-state``): what a host's agent must
make true. One model, used by both sides: the controller builds it (a claim decides a
:class:`ClaimedPort` and stores it with the allocation; :class:`DesiredPort` adds what is read
when the document is served), the agent validates it with the same classes, and
``tests/controller/test_schema_pins.py`` pins its JSON schema.

Both sides refuse unknown fields: a controller that sends a field this agent does not know is
newer than the agent, and the agent says so instead of silently ignoring a setting
(docs/operations.md § Upgrades: agents first, then the controller).

Pure: no I/O.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vfkeeper.domain.lifecycle import TaskKind
from vfkeeper.domain.vif import VifType, VnicType

ALIAS_PREFIX = "ua-vfk-"
"""Device aliases the agent gives: libvirt keeps ``ua-`` aliases, so after a crash the agent
recognises its own devices (``ua-vfk-<port id>``)."""

LinkStateName = Literal["auto", "enable", "disable"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ClaimedPort(_Frozen):
    """What a claim decided for one port on one device: stored with the allocation
    (``allocations.desired``) and shown as the port's ``desired`` state."""

    address: str
    """The PCI function passed through (the VF's; the PF's for a whole PF)."""
    parent_pf: str | None = None
    vf_index: int | None = Field(default=None, ge=0)
    port_id: str
    vnic_type: VnicType
    vif_type: VifType
    mac: str | None = None
    guid: str | None = None
    vlan: int | None = Field(default=None, ge=0, le=4094)
    """The network's VLAN id (``None`` on flat and PKey networks). Stored as a string by
    claims before schema 0006; such rows read as integers."""
    pkey: str | None = None
    """``0x%04x``, the full-membership bit included, for a port on a PKey network."""
    trusted: bool = False
    spoofchk: bool = True
    link_state: LinkStateName = "auto"
    min_tx_rate_kbps: int | None = Field(default=None, ge=0)
    max_tx_rate_kbps: int | None = Field(default=None, ge=0)
    mtu: int | None = None


class DesiredPort(ClaimedPort):
    """One entry of the desired state's ``vfs``: a claimed device with the settings the agent
    must program, where it belongs, and whether it must be on its domain now."""

    request_id: str
    instance_id: str
    instance_name: str
    """The agent finds the instance's libvirt domain by UUID (the instance id), else by this."""
    profileid: str | None = None
    """The 802.1Qbh port profile (vif_type ``802.1qbh``)."""
    incoming: bool = False
    """Reserved here for a migrating instance: program the VF; the domain is on its way."""
    unplugged: bool = False
    """The port keeps its device but must be off the domain (the instance migrates away or is
    suspended): detach it and restore the VF."""

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


class DesiredTask(_Frozen):
    """This host's part of an instance's lifecycle task (:mod:`vfkeeper.domain.lifecycle`)."""

    task_id: str
    kind: TaskKind
    role: Literal["source", "target"]
    instance_id: str
    instance_name: str
    peer_host: str | None = None
    """A migration's other host."""
    migration_uri: str | None = None
    """The source's: where libvirt migrates the domain to."""
    ready: bool = False
    """The source's: the destination has programmed its VFs; unplug and migrate."""
    abort: bool = False
    """The source's: an operator aborted the task; stop unless it is done already."""
    netdevs: dict[str, str] = Field(default_factory=dict)
    """The source's: port id → the destination VF's netdev a macvtap interface moves onto."""


class DesiredState(_Frozen):
    """What a host's agent must make true; ``generation`` grows with every change."""

    host: str
    generation: int = Field(ge=0)
    vfs: tuple[DesiredPort, ...] = ()
    tasks: tuple[DesiredTask, ...] = ()

    @property
    def plugged(self) -> tuple[DesiredPort, ...]:
        """The ports whose devices must be on their domains (not ``unplugged``)."""
        return tuple(p for p in self.vfs if not p.unplugged)
