"""``vfkeeper discover``: scan this host's (or a simulated host's) sysfs and show what is there."""

from __future__ import annotations

from pathlib import Path

import typer

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.errors import SysfsRootError
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.cli.render import inventory_table, render, warnings_text


def register(app: typer.Typer) -> None:
    app.command("discover")(discover_command)


def discover_command(
    sysfs_root: Path = typer.Option(
        Path("/"), "--sysfs-root", help="Directory holding sys/: / on a host, or the --out of "
        "'vfkeeper simulate host'.",
    ),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON document (schema: docs/inventory-schema.md)."
    ),
    include_all: bool = typer.Option(
        False, "--all", help="Also list non-network PCI functions."
    ),
    hostname: str | None = typer.Option(
        None, "--hostname", help="Host name to report (default: the root's, else this one's)."
    ),
) -> None:
    """Find every SR-IOV / InfiniBand NIC function: PFs with their VFs, drivers, netdevs,
    NUMA nodes, IB GUIDs and PKeys. Unreadable attributes become nulls plus warnings."""
    try:
        inv = discover(SysfsReader(sysfs_root), hostname=hostname, include_all=include_all)
    except SysfsRootError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    if as_json:
        typer.echo(inv.model_dump_json(indent=2))
        return
    typer.echo(render(inventory_table(inv)), nl=False)
    note = warnings_text(inv)
    if note:
        typer.echo(note, err=True)
