"""Run the planner's steps, and say where every port stands.

:class:`Reconciler` is one reconcile pass of the agent: observe → plan → execute, repeated
until the plan is empty (a detach is followed, in the next round, by the restore it allowed)
or only failed ports are left; then :func:`report` builds the actual-state document from a
last observation.

Tests make the executor's steps injectable: ``after_step`` is called after each step has
happened. A test raises :class:`SimulatedCrash` there, which no code catches: the process
"dies" with exactly that step done and nothing after it, and a new agent built on the same
journal, kernel and libvirt must converge.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from vfkeeper.agent.desired import HostIndex, not_settable
from vfkeeper.agent.errors import AgentError
from vfkeeper.agent.journal import Journal
from vfkeeper.agent.libvirt.protocol import DomainOps
from vfkeeper.agent.linkops import snapshot as vf
from vfkeeper.agent.linkops.protocol import LinkOps, VfAttr, VfConfig
from vfkeeper.agent.logs import OncePerChange, config_text, done, vf_text
from vfkeeper.agent.reconcile import Observation, Plan, Step, StepKind, observe, plan
from vfkeeper.domain.agent_state import (
    ActualPort,
    ActualState,
    ForeignDevice,
    HostProblem,
    ObservedPort,
    ReleasingDevice,
    VanishedDevice,
)
from vfkeeper.domain.desired_state import DesiredPort, DesiredState
from vfkeeper.domain.errors import DomainError

StepHook = Callable[[Step], None]
MAX_ROUNDS = 4
log = logging.getLogger(__name__)


class SimulatedCrash(BaseException):
    """Raised by a test's ``after_step`` hook: the agent process dies right after a step."""


class Executor:
    def __init__(self, linkops: LinkOps, domain_ops: DomainOps, journal: Journal,
                 after_step: StepHook | None = None) -> None:  # fmt: skip
        self.linkops = linkops
        self.domain_ops = domain_ops
        self.journal = journal
        self.after_step = after_step
        self.skipped: dict[str, frozenset[VfAttr]] = {}
        self.steps_done = 0

    def run(self, steps: Iterable[Step]) -> dict[str, str]:
        """Run ``steps`` in order; a port whose step fails keeps its error and skips its later
        steps. Returns port id → error."""
        failed: dict[str, str] = {}
        for step in steps:
            if step.port_id in failed:
                continue
            try:
                self._do(step)
            except (AgentError, DomainError) as exc:
                failed[step.port_id] = f"{step.kind} of {vf_text(step)} failed: {exc}"
                continue
            if step.kind is not StepKind.PROGRAM:  # that one says what it changed and skipped
                log.info("%s", done(step))
            self.steps_done += 1
            if self.after_step is not None:
                self.after_step(step)
        return failed

    def _do(self, step: Step) -> None:
        kind = step.kind
        if kind is StepKind.RECORD:
            assert step.record is not None
            self.journal.put(step.record)
        elif kind is StepKind.PROGRAM:
            self._program(step)
        elif kind is StepKind.ATTACH:
            assert step.domain is not None
            self.domain_ops.attach(step.domain, step.xml, live=step.live, config=step.config)
        elif kind is StepKind.DETACH:
            assert step.domain is not None and step.device is not None
            self.domain_ops.detach(step.domain, step.device, live=step.live, config=step.config)
        elif kind is StepKind.RESTORE:
            assert step.record is not None and step.record.snapshot is not None
            vf.restore(self.linkops, step.record.snapshot)
        elif kind is StepKind.FORGET:
            self.journal.remove(step.port_id)

    def _program(self, step: Step) -> None:
        assert step.pf is not None and step.vf_index is not None and step.wanted is not None
        previous = step.record.snapshot if step.record else None  # as the journal holds it
        result = vf.apply(self.linkops, step.pf, step.vf_index, step.wanted, previous=previous)
        if step.record is not None and result.snapshot != step.record.snapshot:
            # exactly what was changed: a refused best-effort setting is not an original
            self.journal.put(replace(step.record, snapshot=result.snapshot))
        changed = VfConfig.of((a, step.wanted.value(a)) for a in result.changed)
        log.info("port %s: program: %s: %s", step.port_id, vf_text(step), config_text(changed))
        for refused in result.skipped:
            log.warning("port %s: program: %s: best-effort %s skipped: %s", step.port_id,
                        vf_text(step), refused.attribute, refused)
        if result.skipped:
            refused_attrs = frozenset(VfAttr(r.attribute) for r in result.skipped)
            self.skipped[step.port_id] = self.skipped.get(step.port_id, frozenset()) | \
                refused_attrs


@dataclass
class Outcome:
    """The last round's observation and plan, and every error of the pass."""

    observation: Observation
    plan: Plan
    errors: dict[str, str] = field(default_factory=dict)
    rounds: int = 0


class Reconciler:
    """Makes the host match the desired state: see the module docstring."""

    def __init__(self, linkops: LinkOps, domain_ops: DomainOps, journal: Journal,
                 after_step: StepHook | None = None) -> None:  # fmt: skip
        self.linkops = linkops
        self.domain_ops = domain_ops
        self.journal = journal
        self.executor = Executor(linkops, domain_ops, journal, after_step)
        self._errors = OncePerChange(log, logging.ERROR)

    def _observe(self, desired: DesiredState, index: HostIndex) -> Observation:
        records = self.journal.load()
        pfs = {index.netdev[p.parent_pf] for p in desired.plugged
               if p.parent_pf and p.parent_pf in index.netdev}  # fmt: skip
        pfs |= {r.snapshot.pf for r in records.records.values() if r.snapshot is not None}
        return observe(self.domain_ops, self.linkops, index, records, pfs,
                       skipped=self.executor.skipped)  # fmt: skip

    def reconcile(self, desired: DesiredState, index: HostIndex) -> Outcome:
        errors: dict[str, str] = {}
        for rounds in range(1, MAX_ROUNDS + 1):
            obs = self._observe(desired, index)
            todo = plan(desired.plugged, obs)
            steps = [s for s in todo.steps if s.port_id not in errors]
            if not steps:
                return self._said(Outcome(obs, todo, errors, rounds))
            errors.update(self.executor.run(steps))
        obs = self._observe(desired, index)
        return self._said(Outcome(obs, plan(desired.plugged, obs), errors, MAX_ROUNDS))

    def _said(self, outcome: Outcome) -> Outcome:
        """Log each port that cannot go on, and each damaged record, once per change."""
        damaged = {d.port_id: d.message for d in outcome.observation.damaged.values()}
        failing = {pid: f"port {pid}: {why}"
                   for pid, why in {**outcome.plan.errors, **outcome.errors}.items()}
        self._errors.say({**failing, **damaged})
        return outcome

    def report(self, desired: DesiredState, outcome: Outcome) -> ActualState:
        return report(desired, outcome, self.executor.skipped)


# --- the actual-state document -----------------------------------------------------------------


def _observed(port: DesiredPort, obs: Observation) -> ObservedPort:
    from vfkeeper.agent.reconcile import vf_key  # noqa: PLC0415

    devices = obs.domain_for(port)
    held = [h for h in obs.holders.get(port.address, ())
            if devices is not None and h.domain == devices.domain.name]  # fmt: skip
    key = vf_key(port, obs)
    state = obs.vfs.get(key) if key else None
    return ObservedPort(
        domain=devices.domain.name if devices else None,
        domain_state=devices.domain.state.value if devices else None,
        attached_live=any(h.where == "live" for h in held),
        attached_config=any(h.where == "config" for h in held),
        mac=state.mac if state else None,
        vlan=state.vlan.id if state and state.vlan else None,
        port_guid=state.port_guid if state else None,
    )


def _port(port: DesiredPort, outcome: Outcome, skipped: frozenset[VfAttr]) -> ActualPort:
    obs, todo = outcome.observation, outcome.plan
    seen = _observed(port, obs)
    pending = {s.kind for s in todo.steps if s.port_id == port.port_id}
    programmed = port.port_id in obs.journal and not pending & {StepKind.RECORD,
                                                                StepKind.PROGRAM}
    active = seen.domain_state in ("running", "paused")
    attached = seen.attached_config and (seen.attached_live or not active)
    phase = ("attached" if programmed and attached else "programmed" if programmed
             else "recorded" if port.port_id in obs.journal else "pending")  # fmt: skip
    error = outcome.errors.get(port.port_id) or todo.errors.get(port.port_id)
    status = ("ERROR" if error else "BUILD" if phase != "attached"
              else "ACTIVE" if active else "DOWN")  # fmt: skip
    if port.unplugged:  # kept off the domain: DOWN once detached and its VF given back
        gone = not (seen.attached_live or seen.attached_config) and \
            port.port_id not in obs.journal
        phase, status = ("unplugged", "DOWN") if gone else ("attached", "BUILD")
    return ActualPort(
        port_id=port.port_id, address=port.address, phase=phase, status=status,
        last_error=error, waiting_for=todo.waiting.get(port.port_id),
        skipped=tuple(sorted(a.value for a in skipped | not_settable(port))), observed=seen,
    )  # fmt: skip


def report(desired: DesiredState, outcome: Outcome,
           skipped: dict[str, frozenset[VfAttr]]) -> ActualState:  # fmt: skip
    obs, todo = outcome.observation, outcome.plan
    wanted = {p.port_id: p.address for p in desired.vfs}
    return ActualState(
        host=desired.host,
        desired_generation=desired.generation,
        ports=tuple(_port(p, outcome, skipped.get(p.port_id, frozenset())) for p in desired.vfs),
        foreign=tuple(ForeignDevice(address=a, domain=h.domain, where=h.where,
                                    device=h.device.describe)
                      for a, hs in sorted(obs.holders.items()) for h in hs
                      if h in todo.foreign),
        vanished=tuple(VanishedDevice(port_id=p.port_id, address=p.address)
                       for p in todo.vanished),
        releasing=tuple(ReleasingDevice(port_id=r.port_id, address=r.address, domain=r.domain,
                                        waiting_for=todo.waiting.get(r.port_id))
                        for r in obs.journal.values()
                        if wanted.get(r.port_id) != r.address),
        problems=tuple(HostProblem(kind="journal", message=d.message, path=d.path,
                                   port_id=d.port_id, address=d.address)
                       for d in obs.damaged.values()),
    )
