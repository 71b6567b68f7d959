"""What agents report (``PUT /v1/hosts/{name}/actual-state``) and what the controller makes
of it.

* Each bound port's status becomes the agent's (``BUILD`` until attached, ``ACTIVE``, ``DOWN``
  when its domain is not running, ``ERROR`` with the last error) and its actual state is kept
  next to the desired one for ``GET /v1/ports``. A report is kept only while the agent lists
  the port and the port is bound to that host; ``GET /v1/ports`` also shows it only for the
  binding it was made for (:func:`vfkeeper.controller.ports.states`).
* What keeps the agent from reconciling the host (``problems``: a damaged journal record, a
  pass that failed) is kept with the host's report and shown on ``GET /v1/hosts/{name}``; the
  scheduler refuses the host with the first problem's message until a report without problems
  arrives (:func:`reconcile_problem`). A report of a pass that failed as a whole
  (``ActualState.complete`` false) says nothing of the ports: only its problems are stored.
* A device held by a libvirt domain the controller does not know (``foreign``) is marked
  with a ``problem`` so no pool hands it out; the mark goes when the agent stops reporting it.
  The host's generation moves with the marks, so every controller's scheduling view re-reads
  the host. An inventory PUT rewrites device rows, so the marks are re-applied after it
  (:func:`reapply_marks`).
* A device the controller freed stays releasing (:mod:`vfkeeper.controller.releases`) until a
  complete report answering a desired state at least as new as the release no longer lists
  it as held: not ``releasing`` (a journal record of a port no longer desired), not
  ``foreign``, not the address of a damaged journal record (``problems``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller import releases
from vfkeeper.controller.errors import InvalidInputError
from vfkeeper.controller.fields import column_length
from vfkeeper.controller.hosts import get_host
from vfkeeper.domain.agent_state import ActualState
from vfkeeper.domain.text import clip
from vfkeeper.store.agent_models import HostActual, PortActual
from vfkeeper.store.models import Device, Host, Port

MARK = "agent: "
"""Prefix of the device problems this module sets (and may therefore clear)."""
PROBLEM_MAX = column_length(Device.problem)


def _held(report: HostActual | ActualState) -> dict[str, str]:
    foreign = report.foreign if isinstance(report, ActualState) else [
        _Obj(f) for f in report.foreign]  # fmt: skip
    return {f.address: (f"held by libvirt domain {f.domain!r}, which vfkeeper does not know "
                        "(foreign); not handed out until it is detached there")
            for f in foreign}  # fmt: skip


def still_held(state: ActualState) -> set[str]:
    """Addresses the agent says are not given back: releasing, foreign, or named by a damaged
    journal record (which may hold the only copy of the VF's original settings)."""
    return ({r.address for r in state.releasing} | {f.address for f in state.foreign}
            | {p.address for p in state.problems if p.address})


class _Obj:
    """Attribute access to a stored JSON object."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.__dict__.update(data)

    def __getattr__(self, name: str) -> Any:
        return None


def _mark(session: Session, host: Host, held: dict[str, str]) -> bool:
    """Set/clear this module's device problems; True if any changed."""
    in_use = releases.held_device_ids(session, host.id)
    changed = False
    for device in session.scalars(select(Device).where(Device.host_id == host.id)):
        reason = held.get(device.address) if device.id not in in_use else None
        ours = device.problem is None or device.problem.startswith(MARK)
        wanted = clip(MARK + reason, PROBLEM_MAX) if reason else None
        if ours and device.problem != wanted:
            device.problem = wanted
            changed = True
    return changed


def reapply_marks(session: Session, host: Host) -> None:
    """After an inventory PUT rewrote the host's device rows."""
    report = session.get(HostActual, host.id)
    if report is not None:
        _mark(session, host, _held(report))


def _drop_stale(session: Session, host: Host, reported: list[str]) -> None:
    """Forget this host's reports of ports the agent no longer lists (released, or moved to
    another host), and of ports no longer bound here whatever the report says."""
    rows = session.scalars(select(PortActual).where(PortActual.host_id == host.id))
    bound_here = set(session.scalars(select(Port.id).where(Port.host_id == host.id,
                                                           Port.instance_id.is_not(None))))
    for row in rows:
        if row.port_id not in reported or row.port_id not in bound_here:
            session.delete(row)
    session.flush()


def store_actual(session: Session, name: str, state: ActualState, now: datetime
                 ) -> dict[str, Any]:  # fmt: skip
    """Store one report; returns what was taken and what was ignored."""
    if state.host != name:
        raise InvalidInputError(
            "host", f"the report is for host {state.host!r} but was sent to {name!r}; PUT it "
            f"to /v1/hosts/{state.host}/actual-state")
    if not state.complete:
        host = get_host(session, name, lock=True)
        _summary(session, host, state, now)
        session.flush()
        return {"host": name, "ports": 0, "ignored": [], "foreign": 0, "vanished": 0,
                "releasing": 0, "problems": len(state.problems)}
    ids = sorted(p.port_id for p in state.ports)
    # ports before the host, as every write takes its locks (claims, deletes, tasks)
    ports = {p.id: p for p in session.scalars(
        select(Port).where(Port.id.in_(ids)).order_by(Port.id).with_for_update())}
    host = get_host(session, name, lock=True)
    ignored = []
    _drop_stale(session, host, ids)
    for actual in state.ports:
        port = ports.get(actual.port_id)
        if port is None or port.host_id != host.id or port.instance_id is None:
            ignored.append(actual.port_id)  # released or moved since the agent read it
            continue
        row = session.get(PortActual, port.id) or PortActual(port_id=port.id, host_id=host.id)
        row.host_id, row.address, row.phase = host.id, actual.address, actual.phase
        row.status, row.last_error = actual.status, actual.last_error
        row.waiting_for, row.skipped = actual.waiting_for, list(actual.skipped)
        row.observed = actual.observed.model_dump(mode="json")
        row.desired_generation, row.reported_at = state.desired_generation, now
        session.add(row)
        port.status = actual.status
    summary = _summary(session, host, state, now)
    dump = state.model_dump(mode="json")
    summary.foreign, summary.vanished = dump["foreign"], dump["vanished"]
    summary.releasing = dump["releasing"]
    changed = _mark(session, host, _held(state))
    if releases.clear(session, host, state.desired_generation, still_held(state)):
        changed = True
    if changed:
        host.generation += 1
    session.flush()
    return {"host": name, "ports": len(state.ports) - len(ignored), "ignored": ignored,
            "foreign": len(state.foreign), "vanished": len(state.vanished),
            "releasing": len(state.releasing), "problems": len(state.problems)}


def _summary(session: Session, host: Host, state: ActualState, now: datetime) -> HostActual:
    """The host's report row with the report's generation and problems (a change of problems
    moves the host's generation: every scheduling view re-reads the host)."""
    summary = session.get(HostActual, host.id)
    if summary is None:
        summary = HostActual(host_id=host.id, foreign=[], vanished=[], releasing=[],
                             problems=[])
    problems = [p.model_dump(mode="json") for p in state.problems]
    if problems != (summary.problems or []):
        host.generation += 1
    summary.problems = problems
    summary.desired_generation, summary.reported_at = state.desired_generation, now
    session.add(summary)
    return summary


def reconcile_problem(problems: list[dict[str, Any]] | None) -> str | None:
    """Why the scheduler refuses a host whose agent reported ``problems`` (None: it does not)."""
    if not problems:
        return None
    more = f" (and {len(problems) - 1} more: vfkeeper host show)" if len(problems) > 1 else ""
    return f"{problems[0].get('message', 'the agent reported a problem')}{more}"


def actual_view(row: PortActual | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"phase": row.phase, "status": row.status, "last_error": row.last_error,
            "waiting_for": row.waiting_for, "skipped": row.skipped, **row.observed,
            "desired_generation": row.desired_generation, "reported_at": row.reported_at}


def host_report(session: Session, host: Host) -> dict[str, Any] | None:
    row = session.get(HostActual, host.id)
    if row is None:
        return None
    return {"foreign": row.foreign, "vanished": row.vanished, "releasing": row.releasing,
            "problems": row.problems or [], "desired_generation": row.desired_generation,
            "reported_at": row.reported_at}
