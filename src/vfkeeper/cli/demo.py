"""``vfkeeper demo``: vfkeeper's main job on a simulated cluster, no hardware needed.

A controller on SQLite serving on a loopback port, three simulated hosts with different NICs,
each with a real host agent, an Ethernet VLAN and an InfiniBand PKey network, instances with
mixed vnic types whose ports the agents program and attach, the libvirt XML of one, an
unplaceable request with its reasons, and a delete the agent undoes before the VFs return
(:mod:`vfkeeper.demo`). ``--keep`` leaves the controller and the agents running for the CLI.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import typer

WORKDIR_IN_USE = 2


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def demo_command(
    keep: bool = typer.Option(
        False, "--keep", help="Leave the controller and the host agents running afterwards "
        "(Ctrl-C stops them), with the URL and an admin token printed for the CLI."),
    workdir: Path | None = typer.Option(
        None, "--workdir", metavar="DIR", help="Put the database and the simulated hosts here "
        "(a new or empty directory; kept afterwards). Default: a temporary directory, removed "
        "when the demo ends."),
) -> None:
    """Run vfkeeper's main job on a simulated three-host cluster, step by step."""
    from vfkeeper.demo.runner import StepFailed, run  # noqa: PLC0415 - loads the controller stack only for the demo

    if workdir is not None and workdir.exists() and not workdir.is_dir():
        typer.echo(f"Error: --workdir {workdir} is not a directory; give a new or empty "
                   "directory", err=True)
        raise typer.Exit(WORKDIR_IN_USE)
    if workdir is not None and workdir.exists() and any(workdir.iterdir()):
        typer.echo(f"Error: --workdir {workdir} is not empty; give a new or empty directory "
                   "(the demo creates its database and simulated hosts there)", err=True)
        raise typer.Exit(WORKDIR_IN_USE)
    root = workdir or Path(tempfile.mkdtemp(prefix="vfkeeper-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        run(root, keep=keep)
    except StepFailed as exc:
        typer.echo(f"Error: the demo stopped: {exc}", err=True)
        raise typer.Exit(1) from exc
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        if workdir is None:
            shutil.rmtree(root, ignore_errors=True)
