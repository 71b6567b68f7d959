"""The cluster demo from start to end: simulated hosts, a real controller on SQLite, and every
step a user would take, through the REST API. ``vfkeeper demo`` calls :func:`run`."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.demo import agents, scenario, server, steps
from vfkeeper.demo.session import Session, new_console
from vfkeeper.demo.views import Placement

AGENT_TIMEOUT_S = 86_400.0
"""The demo's hosts have no agent heartbeating for them (see :mod:`vfkeeper.demo.agents`):
the controller counts a host alive this long after its inventory arrived, so that a kept
controller still schedules on them while you explore."""


@dataclass
class Outcome:
    """What the demo found, step by step (for tests and for ``--keep``)."""

    url: str = ""
    token: str = ""
    roots: dict[str, Path] = field(default_factory=dict)
    boots: dict[str, steps.Boot] = field(default_factory=dict)
    placements: list[Placement] = field(default_factory=list)
    xml: dict[str, str] = field(default_factory=dict)
    unplaceable_status: int = 0
    release: steps.Release | None = None


class StepFailed(Exception):
    def __init__(self, number: int, title: str, cause: BaseException) -> None:
        # the CLI's API client has printed the controller's error and raised typer.Exit
        why = "the API call above failed" if isinstance(cause, typer.Exit) else cause
        super().__init__(f"step {number} ({title}) failed: {why}")
        self.number, self.title = number, title


def settings_for(workdir: Path) -> ControllerSettings:
    return ControllerSettings(db_url=f"sqlite:///{workdir / 'vfkeeper.sqlite'}",
                              agent_timeout_s=AGENT_TIMEOUT_S)


def _steps(out: Outcome, workdir: Path) -> list[tuple[str, Callable[[Session], Any]]]:
    def placed(s: Session) -> None:
        out.boots = steps.boot_instances(s)
        out.placements = steps.show_placements(s)

    def xml(s: Session) -> None:
        out.xml = steps.show_xml(s)

    def unplaceable(s: Session) -> None:
        out.unplaceable_status = steps.try_unplaceable(s)

    def release(s: Session) -> None:
        out.release = steps.delete_instance(s)
        s.cli("allocation", "list")

    def register(s: Session) -> None:
        out.roots = steps.build_hosts(s, workdir / "hosts")
        steps.register_hosts(s, out.roots)

    return [
        ("three simulated hosts: discovery, inventory, device specs", register),
        ("networks: an Ethernet VLAN and an InfiniBand partition", steps.create_networks),
        ("boot instances with mixed vnic types", placed),
        (f"libvirt XML of {scenario.XML_INSTANCE}'s ports", xml),
        ("a request no host can hold", unplaceable),
        (f"delete {scenario.DELETED_INSTANCE}: its VFs go back to the pools", release),
        ("host agents", agents.run_step),
    ]


def run(workdir: Path, *, keep: bool, session_factory: Callable[[str, str], Session] | None
        = None) -> Outcome:
    """Run every step against a controller serving from ``workdir``; with ``keep`` leave it
    running until Ctrl-C. Raises :class:`StepFailed` naming the step that went wrong."""
    make = session_factory or (lambda url, token: Session(url, token, new_console()))
    running = server.controller(settings_for(workdir))
    out = Outcome()
    try:
        running.start()
        out.url, out.token = running.url, server.admin_token(running)
        session = make(out.url, out.token)
        session.say(f"[bold]vfkeeper demo[/bold]: a controller on SQLite "
                    f"({workdir / 'vfkeeper.sqlite'}) serving {out.url}, three simulated hosts, "
                    "and the CLI's API client doing what a user would.")
        for number, (title, action) in enumerate(_steps(out, workdir), start=1):
            session.step(number, title)
            try:
                action(session)
            except Exception as exc:
                raise StepFailed(number, title, exc) from exc
        _finish(session, out, workdir, keep)
        if keep:
            running.wait()
    finally:
        running.stop()
    return out


def _finish(session: Session, out: Outcome, workdir: Path, keep: bool) -> None:
    session.console.print()
    session.console.rule("[bold]done", align="left")
    if not keep:
        session.say("Run [bold]vfkeeper demo --keep[/bold] to leave the controller running "
                    "and explore it with the CLI.")
        return
    host = next(iter(out.roots))
    session.say(f"The controller keeps running at {out.url} (Ctrl-C stops it). "
                "In another shell:")
    lines = [
        f"export VFKEEPER_URL={out.url}",
        f"export VFKEEPER_TOKEN={out.token}",
        "vfkeeper host list",
        "vfkeeper pool list --physical-network " + scenario.IB_PHYSNET,
        "vfkeeper port list",
        "vfkeeper instance list",
        f"vfkeeper host interfaces {host}",
        f"vfkeeper discover --sysfs-root {shlex.quote(str(out.roots[host]))}",
    ]
    session.console.print("\n".join(f"  {line}" for line in lines), markup=False)
    session.say(f"Files (database, simulated hosts): {workdir}")
