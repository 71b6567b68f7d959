"""``vfkeeper partition list|show|sync``: InfiniBand partition membership — what vfkeeper
wants in each partition, what the subnet manager has, the difference, and a forced sync.
PKeys are shown and taken in hex (``0x0a01``), as InfiniBand tools write them."""

from __future__ import annotations

from typing import Any

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show, table

partition_app = typer.Typer(name="partition", no_args_is_help=True,
                            help="InfiniBand partitions (PKeys): membership and the subnet "
                                 "manager.")
STATE_COLUMNS = ("pending_add", "member", "pending_remove", "external")


def pkey_argument(value: str) -> str:
    """A PKey in hex, with or without ``0x``; refused here unless it is one."""
    text = value.strip().lower().removeprefix("0x")
    if not text or len(text) > 4 or any(c not in "0123456789abcdef" for c in text) or \
            not 0x0001 <= int(text, 16) <= 0x7FFE:
        raise typer.BadParameter(f"{value!r} is not a PKey: give it in hex, 0x0001 to 0x7ffe "
                                 "(e.g. 0x0a01)", param_hint="PKEY")
    return f"{int(text, 16):#06x}"


@partition_app.command("list")
def list_partitions(ctx: typer.Context, controller: str = CONTROLLER,
                    token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Every PKey vfkeeper's networks use, its members by state, and the subnet manager."""
    data = client(ctx, controller, token).call("GET", "/v1/partitions")
    if as_json:
        show(data, True)
        return
    sm = data.get("subnet_manager") or {}
    last = sm.get("last_pass") or {}
    typer.echo(f"subnet manager: {sm.get('backend')}"
               + ("" if sm.get("managed") else " (membership managed outside vfkeeper)"))
    if last.get("error"):
        typer.echo(f"last pass failed: {last['error']}")
    rows = [{"pkey": p["pkey"], "networks": ",".join(p["networks"]) or "-",
             "shared": p["shared"], **p["members"]} for p in data.get("partitions", [])]
    table(rows, ("pkey", "networks", "shared", *STATE_COLUMNS))


@partition_app.command("show")
def show_partition(ctx: typer.Context,
                   pkey: str = typer.Argument(..., metavar="PKEY", help="The PKey, in hex."),
                   controller: str = CONTROLLER, token: str | None = TOKEN,
                   as_json: bool = JSON) -> None:
    """What vfkeeper wants in the partition, what the subnet manager has, the difference."""
    data = client(ctx, controller, token).call("GET", f"/v1/partitions/{pkey_argument(pkey)}")
    if as_json:
        show(data, True)
        return
    typer.echo(f"pkey: {data['pkey']}  networks: {', '.join(data['networks']) or '-'}"
               f"{'  (shared: operator-owned)' if data.get('shared') else ''}")
    typer.echo("wanted by vfkeeper:")
    table(data.get("wanted", []), ("guid", "membership", "state", "port_id", "error"))
    sm: dict[str, Any] = data.get("subnet_manager") or {}
    if sm.get("managed_outside"):
        typer.echo(f"subnet manager ({sm.get('backend')}): membership is managed outside "
                   "vfkeeper")
    elif sm.get("error"):
        typer.echo(f"subnet manager ({sm.get('backend')}): cannot be read: {sm['error']}")
    else:
        typer.echo(f"subnet manager ({sm.get('backend')}) has:")
        table(sm.get("members", []), ("guid", "membership"))
    diffs = data.get("differences") or []
    typer.echo("differences: none" if not diffs else "differences:")
    for line in diffs:
        typer.echo(f"  {line}")


@partition_app.command("sync")
def sync(ctx: typer.Context, controller: str = CONTROLLER, token: str | None = TOKEN,
         as_json: bool = JSON) -> None:
    """Compare the subnet manager with the allocations now, and send what differs."""
    data = client(ctx, controller, token).call("POST", "/v1/partitions/sync")
    if as_json:
        show(data, True)
        return
    typer.echo(f"added {data['added']}, removed {data['removed']}, still pending "
               f"{data['pending']}, batches sent {data['batches']}")
    for line in data.get("differences") or []:
        typer.echo(f"  difference: {line}")
    if data.get("error"):
        typer.echo(f"Error: {data['error']}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(partition_app)
