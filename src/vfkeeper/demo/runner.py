"""The cluster demo from start to end: simulated hosts, a real controller on SQLite, and every
step a user would take, through the REST API. ``vfkeeper demo`` calls :func:`run`."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from vfkeeper.agent.main import AgentConfig
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.demo import agent_steps, guest_steps, scenario, server, steps
from vfkeeper.demo.agents import Fleet
from vfkeeper.demo.session import Session, new_console
from vfkeeper.demo.views import Placement, PortState


@dataclass
class Outcome:
    """What the demo found, step by step (for tests and for ``--keep``)."""

    url: str = ""
    token: str = ""
    roots: dict[str, Path] = field(default_factory=dict)
    boots: dict[str, steps.Boot] = field(default_factory=dict)
    placements: list[Placement] = field(default_factory=list)
    attached: list[PortState] = field(default_factory=list)
    xml: dict[str, str] = field(default_factory=dict)
    unplaceable_status: int = 0
    release: agent_steps.Release | None = None
    guest: guest_steps.GuestView | None = None
    fleet: Fleet | None = None


class StepFailed(Exception):
    def __init__(self, number: int, title: str, cause: BaseException) -> None:
        # the CLI's API client has printed the controller's error and raised typer.Exit
        why = "the API call above failed" if isinstance(cause, typer.Exit) else cause
        super().__init__(f"step {number} ({title}) failed: {why}")
        self.number, self.title = number, title


def settings_for(workdir: Path) -> ControllerSettings:
    return ControllerSettings(db_url=f"sqlite:///{workdir / 'vfkeeper.sqlite'}")


def _steps(out: Outcome, workdir: Path, token_for: Callable[[str], str]
           ) -> list[tuple[str, Callable[[Session], Any]]]:
    def fleet() -> Fleet:
        assert out.fleet is not None
        return out.fleet

    def register(s: Session) -> None:
        out.roots = steps.build_hosts(s, workdir / "hosts")
        out.fleet = Fleet.start(out.roots, workdir / "agents", out.url, token_for)
        steps.register_hosts(s, out.fleet)

    def placed(s: Session) -> None:
        out.boots = steps.boot_instances(s)
        out.placements = steps.show_placements(s)

    def attached(s: Session) -> None:
        out.attached = agent_steps.attach_ports(s, fleet())

    def xml(s: Session) -> None:
        out.xml = agent_steps.show_domain_xml(s, fleet())

    def networks(s: Session) -> None:
        steps.create_networks(s)
        guest_steps.create_subnets(s)

    def guest(s: Session) -> None:
        out.guest = guest_steps.show_guest(s)

    def unplaceable(s: Session) -> None:
        out.unplaceable_status = steps.try_unplaceable(s)

    def release(s: Session) -> None:
        out.release = agent_steps.delete_instance(s, fleet())
        s.cli("allocation", "list")

    return [
        ("three simulated hosts and their agents: discovery, inventory, device specs",
         register),
        ("networks: an Ethernet VLAN and an InfiniBand partition, with IPv4 and IPv6 subnets",
         networks),
        ("boot instances with mixed vnic types", placed),
        ("the host agents program the VFs and attach them", attached),
        (f"libvirt XML of {scenario.XML_INSTANCE}'s ports, in its domain", xml),
        (f"what {scenario.GUEST_INSTANCE}'s guest reads, and what cloud-init writes from it",
         guest),
        ("a request no host can hold", unplaceable),
        (f"delete {scenario.DELETED_INSTANCE}: detached, VFs restored, back in the pools",
         release),
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

        def token_for(role: str) -> str:
            return server.token(running, role, f"vfkeeper demo {role}")

        session = make(out.url, out.token)
        session.say(f"[bold]vfkeeper demo[/bold]: a controller on SQLite "
                    f"({workdir / 'vfkeeper.sqlite'}) serving {out.url}, three simulated hosts, "
                    "and the CLI's API client doing what a user would.")
        for number, (title, action) in enumerate(_steps(out, workdir, token_for), start=1):
            session.step(number, title)
            try:
                action(session)
            except Exception as exc:
                raise StepFailed(number, title, exc) from exc
        _finish(session, out, workdir, keep)
        if keep:
            running.wait()
    finally:
        if out.fleet is not None:
            out.fleet.stop()
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
    if out.fleet is not None:
        out.fleet.run_in_background()
        session.say("Each host's agent now runs its own loop in a thread (heartbeat every "
                    f"{AgentConfig.heartbeat_s:.0f} s, reconcile every "
                    f"{AgentConfig.reconcile_s:.0f} s): an instance you boot gets a running "
                    "domain on its host's test driver and its ports go ACTIVE at the next "
                    "reconcile.")
    session.say(f"The controller keeps running at {out.url} (Ctrl-C stops it and the agents). "
                "In another shell:")
    lines = [
        f"export VFKEEPER_URL={out.url}",
        f"export VFKEEPER_TOKEN={out.token}",
        "vfkeeper host list",
        "vfkeeper pool list --physical-network " + scenario.IB_PHYSNET,
        "vfkeeper port list          # status and the agents' actual state",
        "vfkeeper instance list",
        f"vfkeeper host interfaces {host}",
        f"vfkeeper discover --sysfs-root {shlex.quote(str(out.roots[host]))}",
    ]
    session.console.print("\n".join(f"  {line}" for line in lines), markup=False)
    session.say(f"Files (database, simulated hosts, agents' journals): {workdir}")
