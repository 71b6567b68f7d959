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

Every value fits where the controller stores it (:mod:`vfkeeper.domain.text`): ids and names
are refused when they do not; the free-text diagnostics (``last_error``, ``waiting_for``, a
task's ``detail``) are cleaned and cut to fit instead, so that one odd message cannot cost a host
its report.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vfkeeper.domain.inventory_rules import (
    HOSTNAME_MAX,
    PCI_ADDRESS,
    PCI_ADDRESS_FORM,
    netdev_name_problem,
)
from vfkeeper.domain.text import NonNegativeInt32, TextRules, diagnostic

Phase = Literal["pending", "recorded", "programmed", "attached", "unplugged"]
"""``unplugged``: the port keeps its device but is off the domain while the instance migrates
or is suspended."""
Status = Literal["BUILD", "ACTIVE", "DOWN", "ERROR"]

ID_MAX = 36
"""Port, instance and task ids are UUIDs, in ``VARCHAR(36)`` columns (the lengths here are
the controller's columns', pinned by ``tests/store/test_text_limits.py``)."""
LAST_ERROR_MAX = 2048
WAITING_FOR_MAX = 1024


def _pci_address(value: str) -> str:
    if not PCI_ADDRESS.fullmatch(value):
        raise ValueError(f"expected {PCI_ADDRESS_FORM}")
    return value


def _netdev_name(value: str) -> str:
    problem = netdev_name_problem(value)
    if problem:
        raise ValueError(f"not an interface name: {problem}")
    return value


Id = Annotated[str, TextRules(ID_MAX)]
Address = Annotated[str, AfterValidator(_pci_address)]
Label = Annotated[str, TextRules(1024, min_length=0, prose=True)]
"""What libvirt or the kernel shows (a domain's name or state, a MAC, a device's summary)."""
NetdevName = Annotated[str, AfterValidator(_netdev_name)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ObservedPort(_Frozen):
    domain: Label | None = None
    domain_state: Label | None = None
    attached_live: bool = False
    attached_config: bool = False
    mac: Label | None = None
    vlan: NonNegativeInt32 | None = None
    port_guid: Label | None = None


class ActualPort(_Frozen):
    port_id: Id
    address: Address
    phase: Phase
    status: Status
    last_error: Annotated[str, diagnostic(LAST_ERROR_MAX)] | None = None
    """Free text: NULs and lone surrogates become U+FFFD, and it is cut to 2048 characters."""
    waiting_for: Annotated[str, diagnostic(WAITING_FOR_MAX)] | None = None
    skipped: tuple[Label, ...] = ()
    """Best-effort settings the NIC refused (e.g. a forced link state on igb)."""
    observed: ObservedPort = ObservedPort()


class ForeignDevice(_Frozen):
    address: Address
    domain: Label
    where: Literal["live", "config"]
    device: Label


class VanishedDevice(_Frozen):
    port_id: Id
    address: Address


class ReleasingDevice(_Frozen):
    port_id: Id
    address: Address
    domain: Label
    waiting_for: Annotated[str, diagnostic(WAITING_FOR_MAX)] | None = None


class TaskReport(_Frozen):
    """How far this host got with its part of an instance's lifecycle task (a migration's
    source or destination, a suspend, a resume)."""

    task_id: Id
    instance_id: Id
    role: Literal["source", "target"]
    status: Literal["waiting", "ready", "done", "arrived", "failed", "aborted"]
    detail: Annotated[str, diagnostic(LAST_ERROR_MAX)] | None = None
    """What it waits for, or why it failed."""
    netdevs: dict[Id, NetdevName] = Field(default_factory=dict)
    """``ready``: port id → the netdev of the VF a macvtap port will sit on here."""
    domain_uuid: Id | None = None
    """``arrived``: the UUID of the libvirt domain the destination sees; the controller ends
    the migration only when it is the instance's id."""


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
    host: Annotated[str, TextRules(HOSTNAME_MAX)]
    desired_generation: NonNegativeInt32
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
