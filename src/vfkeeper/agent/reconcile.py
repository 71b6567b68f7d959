"""The reconcile planner: desired state + what the host shows → an ordered list of steps.

Pure apart from its input: :func:`observe` reads libvirt (every domain's live and persistent
devices), the kernel (every PF's VF settings, through LinkOps) and the journal once;
:func:`plan` turns that :class:`Observation` and the desired ports into :class:`Step` s.

Every step is planned from what is *observed*, not from what the agent remembers doing, so a
step that already happened is simply not planned again (level-triggered, like a kubelet):

* attach — ``record`` (journal: the VF's original settings), ``program`` (LinkOps, only the
  attributes that differ), ``attach`` live (running domain) and to the persistent config;
* removal — a journal record no desired port explains: ``detach`` from every definition that
  holds the function, and only once no domain holds it any more ``restore`` the VF's original
  settings and ``forget`` the record. Nothing is restored while a domain still holds the VF.
  A device whose record (damaged or not) belongs to another port is not attached to anyone
  until that record is gone: its originals are the VF's, not the previous port's settings.

Problems that need a person are reported, not repaired: a VF held by a domain the controller
does not know (``foreign``), a desired VF that vanished from the host (``vanished``), a damaged
journal record (its port fails with what to do, and nothing touches its VF or its device: the
record may hold the only copy of the VF's original settings).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum

from vfkeeper.agent.desired import HostIndex, wanted_config
from vfkeeper.agent.journal import DamagedRecord, JournalContents, PortRecord
from vfkeeper.agent.libvirt.protocol import DomainDevice, DomainDevices, DomainOps
from vfkeeper.agent.linkops.errors import LinkOpsError
from vfkeeper.agent.linkops.protocol import LinkOps, VfAttr, VfConfig, VfState
from vfkeeper.agent.linkops.snapshot import originals
from vfkeeper.domain.desired_state import ALIAS_PREFIX, DesiredPort


class StepKind(StrEnum):
    RECORD = "record"
    PROGRAM = "program"
    ATTACH = "attach"
    DETACH = "detach"
    RESTORE = "restore"
    FORGET = "forget"


@dataclass(frozen=True, slots=True)
class Step:
    kind: StepKind
    port_id: str
    record: PortRecord | None = None
    domain: str | None = None
    device: DomainDevice | None = None
    live: bool = False
    config: bool = False
    xml: str = ""
    pf: str | None = None
    vf_index: int | None = None
    wanted: VfConfig | None = None
    address: str | None = None
    """The PCI function the step is about, when no ``record`` names it (attach, strays)."""

    @property
    def function(self) -> str | None:
        """The PCI function the step is about."""
        return self.address or (self.record.address if self.record else None)

    def __str__(self) -> str:
        where = ("live" if self.live else "") + ("+config" if self.config else "")
        return f"{self.kind} {self.port_id}" + (f" {self.domain} {where}" if self.domain else "")


@dataclass(frozen=True, slots=True)
class Holder:
    domain: str
    where: str
    """``live`` or ``config``."""
    device: DomainDevice


@dataclass(frozen=True)
class Observation:
    domains: dict[str, DomainDevices]
    vfs: dict[tuple[str, int], VfState]
    index: HostIndex
    journal: dict[str, PortRecord]
    holders: dict[str, tuple[Holder, ...]] = field(default_factory=dict)
    """PCI address → every definition holding it (macvtap resolved through its netdev)."""
    skipped: dict[str, frozenset[VfAttr]] = field(default_factory=dict)
    damaged: dict[str, DamagedRecord] = field(default_factory=dict)
    """Port id → its journal record that cannot be used."""

    def damaged_at(self, port: DesiredPort) -> DamagedRecord | None:
        """The damaged record of the port, or of its device (a record of another port)."""
        own = self.damaged.get(port.port_id)
        if own is not None:
            return own
        return next((d for d in self.damaged.values() if d.address == port.address), None)

    def untouchable(self, address: str, alias: str | None) -> bool:
        """Whether a device belongs to a damaged record (by address, or by the agent's alias)."""
        port_id = alias.removeprefix(ALIAS_PREFIX) if alias else None
        return port_id in self.damaged or any(d.address == address
                                              for d in self.damaged.values())

    def domain_for(self, port: DesiredPort) -> DomainDevices | None:
        return self.instance_domain(port.instance_id, port.instance_name)

    def instance_domain(self, instance_id: str, name: str | None) -> DomainDevices | None:
        """The instance's domain: by UUID (the instance id, as Nova names domains), else by
        the instance's name."""
        return self.domain_by_uuid(instance_id) or self.domains.get(name or instance_id)

    def domain_by_uuid(self, uuid: str) -> DomainDevices | None:
        return next((d for d in self.domains.values() if d.domain.uuid == uuid), None)

    def journal_holder(self, address: str, port_id: str) -> str | None:
        """The other port whose journal record (a damaged one included) still holds the
        device ``address``: it must be detached and restored before anyone else gets it."""
        for record in self.journal.values():
            if record.address == address and record.port_id != port_id:
                return record.port_id
        return next((d.port_id for d in self.damaged.values()
                     if d.address == address and d.port_id != port_id), None)


def _address_of(device: DomainDevice, by_netdev: dict[str, str]) -> str | None:
    if device.pci_address is not None:
        return device.pci_address
    return by_netdev.get(device.source_dev) if device.source_dev else None


def _holders(domains: Iterable[DomainDevices], index: HostIndex) -> dict[str, tuple[Holder, ...]]:
    by_netdev = {name: addr for addr, name in index.netdev.items()}
    out: dict[str, list[Holder]] = {}
    for devices in domains:
        for where, device in devices.all():
            address = _address_of(device, by_netdev)
            if address is not None:
                out.setdefault(address, []).append(Holder(devices.domain.name, where, device))
    return {a: tuple(h) for a, h in out.items()}


def observe(domain_ops: DomainOps, linkops: LinkOps, index: HostIndex,
            journal: JournalContents, pfs: Iterable[str], *,
            skipped: dict[str, frozenset[VfAttr]] | None = None) -> Observation:  # fmt: skip
    """Read libvirt, the kernel and the journal once. A PF LinkOps cannot read is left out
    (its ports then fail their program step with LinkOps' own error)."""
    domains = {d.name: domain_ops.devices(d.name) for d in domain_ops.list_domains()}
    vfs: dict[tuple[str, int], VfState] = {}
    for pf in sorted(set(pfs)):
        try:
            vfs.update(((pf, v.index), v) for v in linkops.list_vfs(pf))
        except LinkOpsError:
            continue
    return Observation(domains, vfs, index, journal.records, _holders(domains.values(), index),
                       dict(skipped or {}), {d.port_id: d for d in journal.damaged})


@dataclass
class Plan:
    steps: list[Step] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    """Port id → why it cannot go on (a conflict, a vanished VF, a missing netdev)."""
    waiting: dict[str, str] = field(default_factory=dict)
    """Port id → what it waits for (its domain to be defined, a guest to answer an unplug)."""
    foreign: list[Holder] = field(default_factory=list)
    vanished: list[DesiredPort] = field(default_factory=list)


def plan(desired: Iterable[DesiredPort], obs: Observation) -> Plan:
    """The steps that make the host match ``desired``; see the module docstring.

    Attributes in ``obs.skipped`` (port id → attributes the NIC refused as best-effort) are
    not programmed again."""
    out = Plan()
    wanted_ports = {p.port_id: p for p in desired}
    claimed: set[tuple[str, str]] = set()
    for port in wanted_ports.values():
        damaged = obs.damaged_at(port)
        if damaged is not None:
            out.errors[port.port_id] = damaged.message
            continue
        _plan_port(port, obs, out, claimed)
    for record in obs.journal.values():
        owner = wanted_ports.get(record.port_id)
        if owner is None or owner.address != record.address:
            _plan_removal(record, obs, out)
        claimed.add((record.address, record.domain))
    _plan_strays(obs, out, claimed)
    return out


def _plan_port(port: DesiredPort, obs: Observation, out: Plan,
               claimed: set[tuple[str, str]]) -> None:  # fmt: skip
    pid = port.port_id
    if port.address not in obs.index.addresses:
        out.errors[pid] = (f"its device {port.address} is no longer on this host (removed, or "
                           "sriov_numvfs lowered); delete the instance or restore the VF")
        out.vanished.append(port)
        return
    holder = obs.journal_holder(port.address, pid)
    if holder is not None:  # its originals are in that record: restored first, then ours
        out.waiting[pid] = (f"its device {port.address} is still held by port {holder}'s "
                            "journal record: detached and restored first")
        return
    devices = obs.domain_for(port)
    if devices is None:
        name = port.instance_name or port.instance_id
        if port.incoming:  # the VF is made ready before the domain migrates in
            holders = obs.holders.get(port.address, ())
            if holders:
                out.errors[pid] = (f"its device {port.address} is held by libvirt domain "
                                   f"{holders[0].domain!r}; detach it there (virsh "
                                   "detach-device)")
            elif _plan_program(port, obs, out, obs.journal.get(pid), name) is not None:
                out.waiting[pid] = f"instance {name} migrating in"
            return
        out.waiting[pid] = f"libvirt domain {name} is not defined on this host yet"
        return
    dom = devices.domain.name
    claimed.add((port.address, dom))
    others = [h for h in obs.holders.get(port.address, ()) if h.domain != dom]
    if others:
        out.errors[pid] = (f"its device {port.address} is held by libvirt domain "
                           f"{others[0].domain!r}; detach it there (virsh detach-device)")
        return
    record = obs.journal.get(pid)
    if record is not None and record.address != port.address:
        out.waiting[pid] = f"its previous device {record.address} is being released first"
        return
    xml = _plan_program(port, obs, out, record, dom)
    if xml is not None:
        _plan_attach(port, devices, obs, out, xml)


def wanted_for(port: DesiredPort, obs: Observation) -> VfConfig:
    """The port's VF settings less those its NIC refused as best-effort."""
    ignore = obs.skipped.get(port.port_id, frozenset())
    return VfConfig.of((a, v) for a, v in wanted_config(port).items() if a not in ignore)


def vf_key(port: DesiredPort, obs: Observation) -> tuple[str, int] | None:
    """(PF netdev, VF index) of the port's VF, from this host's inventory."""
    return _vf_key(port, obs)


def _vf_key(port: DesiredPort, obs: Observation) -> tuple[str, int] | None:
    pf = obs.index.netdev.get(port.parent_pf or "")
    if pf is None or port.vf_index is None:
        return None
    return pf, port.vf_index


def _plan_program(port: DesiredPort, obs: Observation, out: Plan, record: PortRecord | None,
                  dom: str) -> str | None:  # fmt: skip
    """Plan record + program. Returns the device XML to attach, or None when the port cannot
    go on (the reason is in ``out.errors``)."""
    from vfkeeper.agent.desired import bound_vif  # noqa: PLC0415 - avoid a cycle at import
    from vfkeeper.domain.vif import render_interface  # noqa: PLC0415

    try:
        xml = render_interface(bound_vif(port, obs.index))
    except ValueError as exc:
        out.errors[port.port_id] = f"cannot render its libvirt device: {exc}"
        return None
    if not port.programs_vf:
        if record is None:
            new = PortRecord(port.port_id, port.address, dom, port.alias, xml, None)
            out.steps.append(Step(StepKind.RECORD, port.port_id, record=new))
        return record.xml if record else xml
    key = _vf_key(port, obs)
    state = obs.vfs.get(key) if key else None
    if key is None or state is None:
        out.errors[port.port_id] = (f"cannot read VF {port.vf_index} of PF {port.parent_pf} "
                                    "through netlink (no netdev for the PF?)")
        return None
    wanted = wanted_for(port, obs)
    before = originals(state, wanted)
    journaled = before if record is None or record.snapshot is None else \
        record.snapshot.adding(before)
    if record is None or journaled != record.snapshot:
        # the journal holds every original before the VF changes (a crash loses none)
        record = (PortRecord(port.port_id, port.address, dom, port.alias, xml, journaled)
                  if record is None else replace(record, snapshot=journaled))
        out.steps.append(Step(StepKind.RECORD, port.port_id, record=record))
    if before.original:
        out.steps.append(Step(StepKind.PROGRAM, port.port_id, record=record, pf=key[0],
                              vf_index=key[1], wanted=wanted))
    return record.xml


def _plan_attach(port: DesiredPort, devices: DomainDevices, obs: Observation, out: Plan,
                 xml: str) -> None:  # fmt: skip
    """Live first (a refusal there leaves no config entry behind), then the config."""
    dom = devices.domain
    held = [h for h in obs.holders.get(port.address, ()) if h.domain == dom.name]
    if dom.state.active and not any(h.where == "live" for h in held):
        out.steps.append(Step(StepKind.ATTACH, port.port_id, domain=dom.name, live=True, xml=xml,
                              address=port.address))
    if not any(h.where == "config" for h in held):
        out.steps.append(Step(StepKind.ATTACH, port.port_id, domain=dom.name, config=True,
                              xml=xml, address=port.address))


def _plan_removal(record: PortRecord, obs: Observation, out: Plan) -> None:
    holders = obs.holders.get(record.address, ())
    own = [h for h in holders if h.domain == record.domain or h.device.alias == record.alias]
    if own:
        out.waiting[record.port_id] = (f"detaching {record.address} from domain "
                                       f"{own[0].domain!r}; not restored while held")
        for h in own:
            out.steps.append(Step(StepKind.DETACH, record.port_id, record=record,
                                  domain=h.domain, device=h.device, live=h.where == "live",
                                  config=h.where == "config"))
        return
    if holders:
        out.waiting[record.port_id] = (f"{record.address} is held by domain "
                                       f"{holders[0].domain!r}; not restored while held")
        return
    if record.snapshot is not None and record.address in obs.index.addresses:
        out.steps.append(Step(StepKind.RESTORE, record.port_id, record=record))
    out.steps.append(Step(StepKind.FORGET, record.port_id, record=record))


def _plan_strays(obs: Observation, out: Plan, claimed: set[tuple[str, str]]) -> None:
    """Devices nobody asked for: the agent's own (alias ``ua-vfk-``, e.g. after the state dir
    was lost) are detached; anything else holding one of this host's functions is foreign."""
    for address, holders in sorted(obs.holders.items()):
        for h in holders:
            if (address, h.domain) in claimed or obs.untouchable(address, h.device.alias):
                continue
            if h.device.alias and h.device.alias.startswith(ALIAS_PREFIX):
                port_id = h.device.alias.removeprefix(ALIAS_PREFIX)
                out.steps.append(Step(StepKind.DETACH, port_id, domain=h.domain,
                                      device=h.device, live=h.where == "live",
                                      config=h.where == "config", address=address))
            elif address in obs.index.addresses:
                out.foreign.append(h)
