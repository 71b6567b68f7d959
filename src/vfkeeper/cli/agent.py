"""``vfkeeper agent``: the host agent (one per hypervisor host)."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path

import typer

from vfkeeper.agent.errors import AgentError
from vfkeeper.agent.logs import configure_logging
from vfkeeper.cli.client import CONTROLLER, TOKEN


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def agent_command(  # noqa: PLR0917 - typer maps each option to a parameter
    ctx: typer.Context,
    controller: str = CONTROLLER,
    token: str | None = TOKEN,
    host: str | None = typer.Option(None, "--host", help="This host's name (default: the "
                                    "host name sysfs-root's host reports)."),
    sysfs_root: Path = typer.Option(Path("/"), "--sysfs-root", help="The root holding sys/ "
                                    "('/' on a host; a 'vfkeeper simulate host' tree)."),
    libvirt_uri: str = typer.Option("qemu:///system", "--libvirt-uri", help="libvirt URI."),
    state_dir: Path = typer.Option(Path("/var/lib/vfkeeper"), "--state-dir",
                                   help="Where the agent keeps each VF's original settings."),
    fake_linkops: bool = typer.Option(False, "--fake-linkops", help="Simulated host: program "
                                      "VFs in memory instead of through netlink."),
    fake_libvirt: bool = typer.Option(False, "--fake-libvirt", help="Simulated host: an "
                                      "in-memory libvirt where every instance placed here runs."),
    migration_uri: str | None = typer.Option(
        None, "--migration-uri", help="Where peers' libvirt live-migrates domains to this host "
        "(default qemu+tcp://HOST/system; libvirtd must listen there)."),
    heartbeat_s: float = typer.Option(10.0, "--heartbeat-interval", min=0.1),
    rescan_s: float = typer.Option(30.0, "--rescan-interval", min=0.1),
    reconcile_s: float = typer.Option(5.0, "--reconcile-interval", min=0.1),
    once: bool = typer.Option(False, "--once", help="Register, heartbeat, reconcile once, "
                              "print the actual state as JSON and exit."),
    log_level: LogLevel = typer.Option(LogLevel.INFO, "--log-level", case_sensitive=False,
                                       help="info: each step taken, refusals, start-up "
                                       "settings; debug adds every HTTP request and "
                                       "tracebacks."),
) -> None:
    """Make this host match the controller's desired state: register the inventory, heartbeat,
    attach and detach VFs through libvirt, report the actual state (docs/agent.md)."""
    from vfkeeper.agent.main import AgentConfig, build, run_forever  # noqa: PLC0415

    configure_logging(log_level.value)
    config = AgentConfig(
        controller=controller, token=token, host=host, sysfs_root=str(sysfs_root),
        libvirt_uri=libvirt_uri, state_dir=str(state_dir), fake_linkops=fake_linkops,
        fake_libvirt=fake_libvirt, heartbeat_s=heartbeat_s, rescan_s=rescan_s,
        reconcile_s=reconcile_s, migration_uri=migration_uri,
    )
    obj = ctx.find_root().obj
    transport = obj.get("transport") if isinstance(obj, dict) else None
    try:
        agent = build(config, transport=transport)
        if once:
            agent.rescan()
            agent.heartbeat()
            report = agent.reconcile()
            typer.echo(json.dumps(report.model_dump(mode="json"), indent=2))
            return
    except AgentError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from exc
    run_forever(agent)


def register(app: typer.Typer) -> None:
    app.command("agent")(agent_command)
