"""``vfkeeper simulate``: build fake sysfs trees shaped on real NICs, to try vfkeeper without
hardware."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from vfkeeper.cli.render import render
from vfkeeper.sim import NIC_MODELS, SimError, simulate_host


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Build simulated hosts (fake sysfs trees shaped on real NICs).",
        no_args_is_help=True,
    )
    group.command("host")(host_command)
    group.command("models")(models_command)
    app.add_typer(group, name="simulate")


MAX_PFS = 64
MAX_VFS = 1024
"""Beyond any NIC's ``sriov_totalvfs`` (the model's is checked too); the bounds keep a typo
from building millions of files."""
MAX_PKEY_TABLE = 32768
"""The InfiniBand limit (the architecture allows 32768 partitions per port)."""


def _indexes(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected VF indexes like 0,3") from None


def host_command(  # noqa: PLR0917 - typer maps each option to a parameter
    out: Path = typer.Option(..., "--out", help="Directory to build the host in (its sys/ must "
                             "not exist yet)."),
    model: str = typer.Option(..., "--model", help="NIC model: see 'vfkeeper simulate models'."),
    pfs: int = typer.Option(1, "--pfs", min=0, max=MAX_PFS, help="Number of PFs."),
    vfs: int = typer.Option(0, "--vfs", min=0, max=MAX_VFS,
                            help="VFs enabled on each PF (sriov_numvfs)."),
    hostname: str = typer.Option("sim-host", "--hostname", help="Seeds every MAC and GUID."),
    vfio_vfs: str = typer.Option("", "--vfio-vfs", help="VF indexes bound to vfio-pci on "
                                 "each PF, e.g. 0,3."),
    pkey_table: int | None = typer.Option(None, "--pkey-table", min=1, max=MAX_PKEY_TABLE,
                                          help="Entries of each "
                                          "InfiniBand port's PKey table (model's default)."),
) -> None:
    """Build a host of PFS identical PFs with VFS VFs each under OUT."""
    try:
        spec = simulate_host(out, model, pfs, vfs, hostname=hostname,
                             vfio_vfs=_indexes(vfio_vfs), pkey_table=pkey_table)
    except SimError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from exc
    nic = NIC_MODELS[model]
    functions = pfs * (1 + vfs) + len(spec.extra_devices)
    typer.echo(f"built host {hostname!r} in {out}: {pfs} x {nic.description}, {vfs} VFs each "
               f"({functions} PCI functions)")
    typer.echo(f"try: vfkeeper discover --sysfs-root {out}")


def models_command() -> None:
    """List the NIC models the simulator builds."""
    table = Table("model", "description", "PF", "VF", "drivers", "link", "max VFs")
    for name, nic in NIC_MODELS.items():
        alias = "" if nic.name == name else f" (= {nic.name})"
        table.add_row(
            name + alias, nic.description, f"{nic.vendor_id}:{nic.pf_product}",
            f"{nic.vendor_id}:{nic.vf_product}", f"{nic.pf_driver} / {nic.vf_driver}",
            nic.link, str(nic.totalvfs),
        )
    typer.echo(render(table), nl=False)
