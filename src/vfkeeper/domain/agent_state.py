"""The actual-state document an agent reports (``PUT /v1/hosts/{name}/actual-state``).

Shared by the agent (which builds it) and the controller (which validates and stores it), so
the two cannot drift; ``tests/agent/test_actual_state_schema.py`` pins its JSON schema.

Per port: where it stands on the host (``phase``), the status users see (``BUILD`` until the
device is attached, ``ACTIVE`` once it is attached to the running domain with the VF
programmed, ``DOWN`` when attached to a domain that is not running, ``ERROR`` with the last
error), and what the kernel and libvirt show. Plus what needs a person: devices held by
domains the controller does not know (``foreign``), desired devices that vanished from the
host, released devices not yet given back (a guest has not answered the unplug), and what keeps
the agent from reconciling the whole host (``problems``: the controller places nothing there
while the last report has one).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Phase = Literal["pending", "recorded", "programmed", "attached", "unplugged"]
"""``unplugged``: the port keeps its device but is off the domain while the instance migrates
or is suspended."""
Status = Literal["BUILD", "ACTIVE", "DOWN", "ERROR"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObservedPort(_Frozen):
    domain: str | None = None
    domain_state: str | None = None
    attached_live: bool = False
    attached_config: bool = False
    mac: str | None = None
    vlan: int | None = None
    port_guid: str | None = None


class ActualPort(_Frozen):
    port_id: str
    address: str
    phase: Phase
    status: Status
    last_error: str | None = None
    waiting_for: str | None = None
    skipped: tuple[str, ...] = ()
    """Best-effort settings the NIC refused (e.g. a forced link state on igb)."""
    observed: ObservedPort = ObservedPort()


class ForeignDevice(_Frozen):
    address: str
    domain: str
    where: Literal["live", "config"]
    device: str


class VanishedDevice(_Frozen):
    port_id: str
    address: str


class ReleasingDevice(_Frozen):
    port_id: str
    address: str
    domain: str
    waiting_for: str | None = None


class TaskReport(_Frozen):
    """How far this host got with its part of an instance's lifecycle task (a migration's
    source or destination, a suspend, a resume)."""

    task_id: str
    instance_id: str
    role: Literal["source", "target"]
    status: Literal["waiting", "ready", "done", "arrived", "failed", "aborted"]
    detail: str | None = None
    """What it waits for, or why it failed."""
    netdevs: dict[str, str] = Field(default_factory=dict)
    """``ready``: port id → the netdev of the VF a macvtap port will sit on here."""


class HostProblem(_Frozen):
    """Something that keeps the agent from reconciling the whole host.

    ``journal``: a damaged journal record; its port (``port_id``, and ``address`` when the
    record still names it) is left alone, the host's other ports are reconciled.
    ``reconcile``: the pass failed as a whole; a report with such a problem says nothing of the
    ports (its lists are empty and the controller keeps what it had)."""

    kind: Literal["journal", "reconcile"]
    message: str = Field(max_length=4096)
    """What is wrong and what to do."""
    path: str | None = Field(default=None, max_length=4096)
    port_id: str | None = Field(default=None, max_length=255)
    address: str | None = Field(default=None, max_length=64)


class ActualState(_Frozen):
    host: str
    desired_generation: int = Field(ge=0)
    """The desired-state generation this report answers."""
    ports: tuple[ActualPort, ...] = ()
    foreign: tuple[ForeignDevice, ...] = ()
    vanished: tuple[VanishedDevice, ...] = ()
    releasing: tuple[ReleasingDevice, ...] = ()
    tasks: tuple[TaskReport, ...] = ()
    problems: tuple[HostProblem, ...] = ()
    """Empty when the agent reconciled every port it was asked to."""

    @property
    def complete(self) -> bool:
        """Whether the report describes the ports (not a pass that failed as a whole)."""
        return not any(p.kind == "reconcile" for p in self.problems)
