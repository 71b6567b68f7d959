"""The host's part of instances' lifecycle tasks: migrate, suspend (save), resume.

Run after each reconcile pass, on what that pass last observed. Like the reconciler, every
decision is taken from what libvirt shows now, not from what the agent remembers, so a task
survives an agent restart at any point:

* **migrate, source**: wait until the destination is ``ready`` and every ``unplugged`` port of
  the instance is off the domain with its VF given back (the reconciler did that), then
  migrate the domain, its macvtap interfaces rewritten onto the destination's VFs; ``done``.
  A domain no longer here is waited on: the destination reports its arrival.
* **migrate, destination**: ``ready`` once every incoming port's VF is programmed (with the
  netdevs of the macvtap ones); ``arrived`` once a domain whose UUID is the instance id is
  here (looked up by UUID only; the report carries it, and the controller checks it).
* **suspend**: once the ports are unplugged, save the domain (libvirt's managed save); a domain
  already saved is ``done``.
* **resume**: start a saved (or shut-off) domain; a running one is ``done``. The controller
  then marks the ports plugged and the next pass attaches them.

The destination's migration URI is checked again before libvirt sees it
(:func:`vfkeeper.domain.migration.check_migration_uri`): one that could make this host run a
program, pass options to ssh or reach another host than the destination fails the task.

libvirt's refusals end the task as ``failed`` with libvirt's words; the controller rolls back.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from vfkeeper.agent.executor import Outcome
from vfkeeper.agent.libvirt.errors import DomainOpsError
from vfkeeper.agent.libvirt.protocol import DomainDevices, DomainOps
from vfkeeper.domain.agent_state import TaskReport
from vfkeeper.domain.desired_state import ALIAS_PREFIX, DesiredPort, DesiredState, DesiredTask
from vfkeeper.domain.errors import InvalidMigrationUriError
from vfkeeper.domain.migration import check_migration_uri


def _ports(task: DesiredTask, desired: DesiredState) -> list[DesiredPort]:
    return [p for p in desired.vfs if p.instance_id == task.instance_id]


def _report(task: DesiredTask, status: str, detail: str | None = None,
            netdevs: Mapping[str, str] | None = None,
            domain_uuid: str | None = None) -> TaskReport:  # fmt: skip
    return TaskReport(task_id=task.task_id, instance_id=task.instance_id, role=task.role,
                      status=status, detail=detail, netdevs=dict(netdevs or {}),
                      domain_uuid=domain_uuid)


def rewrite_macvtap(xml: str, netdevs: Mapping[str, str]) -> str:
    """The domain XML with each vfkeeper macvtap interface (alias ``ua-vfk-<port>``) moved
    onto the destination's VF netdev (``netdevs``: port id → netdev)."""
    root = ET.fromstring(xml)
    for interface in root.iter("interface"):
        alias = interface.find("alias")
        port = (alias.get("name") or "").removeprefix(ALIAS_PREFIX) if alias is not None else ""
        source = interface.find("source")
        if interface.get("type") == "direct" and source is not None and port in netdevs:
            source.set("dev", netdevs[port])
    return ET.tostring(root, encoding="unicode")


def _settled(task: DesiredTask, devices: DomainDevices | None) -> TaskReport | None:
    """The source's answer when the domain's state decides it without acting (already done,
    aborted, impossible); None: go on."""
    if devices is None:
        if task.kind == "migrate":
            return _report(task, "waiting", f"libvirt domain {task.instance_name} is not on "
                           "this host (migrated already? its destination reports it)")
        return _report(task, "failed", f"no libvirt domain {task.instance_name} on this host")
    dom = devices.domain
    done = {"migrate": False, "suspend": not dom.state.active and dom.managed_save,
            "resume": dom.state.active}[task.kind]
    if done:
        return _report(task, "done")  # done before a restart of the agent, or an abort
    if task.abort:
        return _report(task, "aborted", f"domain {dom.name} left as it was")
    if task.kind != "resume" and not dom.state.active:
        return _report(task, "failed", f"domain {dom.name} is not running: only a running "
                       "domain is live-migrated or saved; start it first")
    return None


class TaskRunner:
    def __init__(self, domain_ops: DomainOps) -> None:
        self.domain_ops = domain_ops

    def run(self, desired: DesiredState, outcome: Outcome, netdev: Mapping[str, str]
            ) -> tuple[TaskReport, ...]:  # fmt: skip
        """One report per task of ``desired``; ``netdev``: this host's PCI address → netdev."""
        reports = []
        for task in desired.tasks:
            try:
                reports.append(self._one(task, desired, outcome, netdev))
            except DomainOpsError as exc:
                reports.append(_report(task, "failed", str(exc)))
        return tuple(reports)

    def _one(self, task: DesiredTask, desired: DesiredState, outcome: Outcome,
             netdev: Mapping[str, str]) -> TaskReport:  # fmt: skip
        obs = outcome.observation
        if task.role == "target":  # by UUID only: a domain of the same name is not it
            return self._target(task, desired, outcome, obs.domain_by_uuid(task.instance_id),
                                netdev)
        return self._source(task, desired, outcome,
                            obs.instance_domain(task.instance_id, task.instance_name))

    def _source(self, task: DesiredTask, desired: DesiredState, outcome: Outcome,
                devices: DomainDevices | None) -> TaskReport:  # fmt: skip
        early = _settled(task, devices)
        if early is not None:
            return early
        assert devices is not None
        name = devices.domain.name
        if task.kind == "resume":
            self.domain_ops.start(name)
            return _report(task, "done")
        if task.kind == "migrate" and not task.ready:
            return _report(task, "waiting", f"host {task.peer_host} is preparing its VFs")
        busy = self._unplugging(task, desired, outcome)
        if busy:
            return _report(task, "waiting", busy)
        if task.kind == "suspend":
            self.domain_ops.managed_save(name)
            return _report(task, "done")
        return self._migrate(task, name)

    def _unplugging(self, task: DesiredTask, desired: DesiredState, outcome: Outcome) -> str:
        """What still keeps the instance's unplugged ports from being off its domain."""
        obs = outcome.observation
        left = [p for p in _ports(task, desired)
                if p.unplugged and (p.port_id in obs.journal or obs.holders.get(p.address))]
        if not left:
            return ""
        why = [outcome.errors.get(p.port_id) or outcome.plan.waiting.get(p.port_id)
               or "detaching" for p in left]  # fmt: skip
        return "unplugging " + "; ".join(f"port {p.port_id}: {w}" for p, w in zip(left, why,
                                                                                   strict=True))

    def _migrate(self, task: DesiredTask, name: str) -> TaskReport:
        if not task.migration_uri or not task.peer_host:
            return _report(task, "failed", f"host {task.peer_host} has no migration URI")
        try:  # again here: a URI an older controller stored unchecked must not reach libvirt
            check_migration_uri(task.migration_uri, task.peer_host)
        except InvalidMigrationUriError as exc:
            return _report(task, "failed", f"not migrating to host {task.peer_host}: the URI "
                           f"its agent announced is unsafe: {exc}")
        live = rewrite_macvtap(self.domain_ops.domain_xml(name), task.netdevs)
        persistent = rewrite_macvtap(self.domain_ops.domain_xml(name, inactive=True),
                                     task.netdevs)
        self.domain_ops.migrate(name, task.migration_uri, dest_xml=live,
                                persist_xml=persistent)
        return _report(task, "done")

    @staticmethod
    def _target(task: DesiredTask, desired: DesiredState, outcome: Outcome,
                devices: DomainDevices | None, netdev: Mapping[str, str]) -> TaskReport:
        if devices is not None:
            return _report(task, "arrived", domain_uuid=devices.domain.uuid)
        obs, todo = outcome.observation, outcome.plan
        incoming = [p for p in _ports(task, desired) if p.incoming]
        failed = [(p.port_id, outcome.errors.get(p.port_id) or todo.errors.get(p.port_id))
                  for p in incoming]
        failed = [(pid, e) for pid, e in failed if e]
        if failed:
            return _report(task, "failed", "; ".join(f"port {pid}: {e}" for pid, e in failed))
        pending = {s.port_id for s in todo.steps}
        unready = [p.port_id for p in incoming
                   if p.port_id not in obs.journal or p.port_id in pending]
        if unready:
            return _report(task, "waiting", "programming the VFs of ports " + ", ".join(unready))
        macvtap = {p.port_id: netdev[p.address] for p in incoming
                   if p.vnic_type == "macvtap" and p.address in netdev}
        return _report(task, "ready", netdevs=macvtap)
