"""``vfkeeper demo``: show vfkeeper at work on a simulated host, no hardware needed.

Until the controller exists this is discovery only: it builds a mixed host (ConnectX-5
InfiniBand with a VF bound to vfio-pci, ConnectX-6 Ethernet, ConnectX-3, Intel E810, a Cisco
VIC, and an Intel I350 with SR-IOV off) in a temporary directory and shows what
``vfkeeper discover`` finds there.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import typer

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.cli.render import inventory_table, render, warnings_text
from vfkeeper.sim import HostSpec, PfSpec, build_tree

DEMO_HOST = HostSpec(
    hostname="demo-host",
    pfs=(
        PfSpec("cx5-ib", vfs=4, vfio_vfs=(3,), numa_node=0),
        PfSpec("cx6-eth", vfs=2, numa_node=0),
        PfSpec("cx3-ib", vfs=2, numa_node=1),
        PfSpec("e810", vfs=3, vfio_vfs=(2,), numa_node=1),
        PfSpec("vic", vfs=2, numa_node=1),
        PfSpec("i350", vfs=0, numa_node=0),
    ),
)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


def demo_command(
    out: Path | None = typer.Option(
        None, "--out", help="Keep the simulated host in this directory (default: a temporary "
        "one, removed afterwards)."
    ),
) -> None:
    """Discover a simulated mixed SR-IOV / InfiniBand host and show what vfkeeper sees."""
    if out is not None:
        _show(out)
        typer.echo(f"the tree stays in {out}: explore it with "
                   f"'vfkeeper discover --sysfs-root {out} [--json] [--all]'")
        return
    with tempfile.TemporaryDirectory(prefix="vfkeeper-demo-") as tmp:
        _show(Path(tmp))
    typer.echo("run 'vfkeeper demo --out DIR' to keep the tree and explore it with "
               "'vfkeeper discover --sysfs-root DIR'")


def _show(root: Path) -> None:
    build_tree(DEMO_HOST, root)
    pfs = ", ".join(f"{p.model} ({p.vfs} VFs)" for p in DEMO_HOST.pfs)
    typer.echo(f"vfkeeper demo: a simulated host ({pfs}) built as a fake sysfs tree in {root}; "
               "below is what 'vfkeeper discover' finds on it, PFs with their VFs under them.")
    inv = discover(SysfsReader(root))
    typer.echo(render(inventory_table(inv)), nl=False)
    note = warnings_text(inv)
    if note:
        typer.echo(note)
