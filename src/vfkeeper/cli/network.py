"""``vfkeeper network create|list|show|delete``."""

from __future__ import annotations

from typing import Any

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show

network_app = typer.Typer(name="network", help="Networks: physnet + segmentation + MTU.",
                          no_args_is_help=True)
COLUMNS = ("id", "name", "physical_network", "segmentation", "mtu")


def segmentation_text(seg: dict[str, Any]) -> str:
    """``flat``, ``vlan 100``, ``pkey 0x8a01 (full member)``: PKeys in hex, as InfiniBand
    tools show them."""
    kind = seg.get("type")
    if kind == "pkey":
        member = "full" if seg.get("full_membership") else "limited"
        shared = ", shared" if seg.get("shared") else ""
        return f"pkey {seg.get('pkey')} ({member} member{shared})"
    if kind == "vlan":
        return f"vlan {seg.get('id')}"
    return str(kind)


def _readable(network: dict[str, Any]) -> dict[str, Any]:
    return {**network, "segmentation": segmentation_text(network.get("segmentation") or {})}


def segmentation_id(value: str) -> int:
    """``--id``: a decimal VLAN id or PKey, or a ``0x`` hexadecimal one."""
    text = value.strip()
    try:
        return int(text, 16) if text.lower().startswith("0x") else int(text, 10)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number: give a VLAN id such as 100, or "
                                 "a PKey such as 0x0a01", param_hint="'--id'") from None


@network_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The network's name."),
    *,
    physical_network: str = typer.Option(..., "--physical-network"),
    segmentation: str = typer.Option("flat", "--type", help="flat, vlan or pkey."),
    seg_id: str | None = typer.Option(None, "--id", metavar="N|0xN",
                                      help="VLAN id 1-4094, or PKey 0x0001-0x7ffe."),
    full_membership: bool = typer.Option(False, "--full-membership",
                                         help="PKey: full partition member."),
    shared: bool = typer.Option(False, "--shared",
                                help="PKey: an operator-owned partition (defined at the "
                                     "subnet manager, not by vfkeeper); vfkeeper puts ports "
                                     "on it but never changes its membership."),
    mtu: int = typer.Option(1500, "--mtu"),
    controller: str = CONTROLLER, token: str | None = TOKEN, as_json: bool = JSON,
) -> None:
    """Create a network."""
    seg: dict[str, object] = {"type": segmentation}
    if seg_id is not None:
        seg["id"] = segmentation_id(seg_id)
    if full_membership:
        seg["full_membership"] = True
    if shared:
        seg["shared"] = True
    data = client(ctx, controller, token).call("POST", "/v1/networks", body={
        "name": name, "physical_network": physical_network, "segmentation": seg, "mtu": mtu})
    show(data if as_json else _readable(data), as_json)


@network_app.command("list")
def list_networks(ctx: typer.Context, controller: str = CONTROLLER, token: str | None = TOKEN,
                  as_json: bool = JSON) -> None:
    """Every network; a PKey network's segmentation shows its PKey in hex."""
    data = client(ctx, controller, token).call("GET", "/v1/networks")
    show(data if as_json else [_readable(n) for n in data], as_json, COLUMNS)


@network_app.command("show")
def show_network(ctx: typer.Context, key: str, controller: str = CONTROLLER,
                 token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """By id or name."""
    data = client(ctx, controller, token).call("GET", f"/v1/networks/{key}")
    show(data if as_json else _readable(data), as_json)


@network_app.command("delete")
def delete(ctx: typer.Context, key: str, controller: str = CONTROLLER,
           token: str | None = TOKEN) -> None:
    client(ctx, controller, token).call("DELETE", f"/v1/networks/{key}")
    typer.echo(f"deleted network {key}")


def register(app: typer.Typer) -> None:
    app.add_typer(network_app)
