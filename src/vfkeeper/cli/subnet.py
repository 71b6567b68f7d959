"""``vfkeeper subnet create|list|show|delete``: a network's IPv4 and IPv6 subnets."""

from __future__ import annotations

from typing import Any

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show

subnet_app = typer.Typer(name="subnet", no_args_is_help=True,
                         help="Subnets of a network: the addresses its ports get.")
COLUMNS = ("id", "name", "cidr", "gateway_ip", "ipv6_mode", "allocated", "capacity")


def _pair(value: str, sep: str, option: str, example: str) -> tuple[str, str]:
    left, found, right = value.partition(sep)
    if not found or not left.strip() or not right.strip():
        raise typer.BadParameter(f"{value!r} is not of the form {example}", param_hint=option)
    return left.strip(), right.strip()


@subnet_app.command("create")
def create(
    ctx: typer.Context,
    network: str = typer.Argument(..., metavar="NETWORK", help="Network id or name."),
    cidr: str = typer.Argument(..., metavar="CIDR", help="e.g. 192.0.2.0/24 or 2001:db8::/64."),
    *,
    name: str | None = typer.Option(None, "--name"),
    gateway: str | None = typer.Option(None, "--gateway", metavar="IP",
                                       help="Default: the CIDR's first address."),
    no_gateway: bool = typer.Option(False, "--no-gateway", help="A subnet without a gateway."),
    dns: list[str] = typer.Option([], "--dns", metavar="IP", help="A DNS server (repeatable)."),
    routes: list[str] = typer.Option([], "--route", metavar="DEST=NEXTHOP",
                                     help="A host route, e.g. 10.9.0.0/16=192.0.2.254 "
                                          "(repeatable)."),
    pools: list[str] = typer.Option([], "--pool", metavar="START-END",
                                    help="An allocation pool (repeatable). Default: the whole "
                                         "CIDR but the gateway."),
    ipv6_mode: str | None = typer.Option(None, "--ipv6-mode", metavar="static|slaac",
                                         help="IPv6: vfkeeper allocates addresses (static, the "
                                              "default) or the guest forms them (slaac, /64)."),
    controller: str = CONTROLLER, token: str | None = TOKEN, as_json: bool = JSON,
) -> None:
    """Create a subnet: ports created on the network from now on get an address in it."""
    if gateway is not None and no_gateway:
        raise typer.BadParameter("give --gateway or --no-gateway, not both",
                                 param_hint="'--no-gateway'")
    body: dict[str, Any] = {
        "cidr": cidr, "name": name, "dns_nameservers": dns,
        "host_routes": [dict(zip(("destination", "nexthop"),
                                 _pair(r, "=", "'--route'", "DEST=NEXTHOP"), strict=True))
                        for r in routes],
        "allocation_pools": [dict(zip(("start", "end"),
                                      _pair(p, "-", "'--pool'", "START-END"), strict=True))
                             for p in pools],
        "ipv6_mode": ipv6_mode}
    if no_gateway or gateway is not None:
        body["gateway_ip"] = gateway
    show(client(ctx, controller, token).call("POST", f"/v1/networks/{network}/subnets",
                                             body=body), as_json)


@subnet_app.command("list")
def list_subnets(ctx: typer.Context,
                 network: str = typer.Argument(..., metavar="NETWORK",
                                               help="Network id or name."),
                 controller: str = CONTROLLER, token: str | None = TOKEN,
                 as_json: bool = JSON) -> None:
    """The network's subnets, with how many of their addresses ports hold."""
    show(client(ctx, controller, token).call("GET", f"/v1/networks/{network}/subnets"),
         as_json, COLUMNS)


@subnet_app.command("show")
def show_subnet(ctx: typer.Context,
                network: str = typer.Argument(..., metavar="NETWORK"),
                subnet: str = typer.Argument(..., metavar="SUBNET", help="Subnet id or name."),
                *, controller: str = CONTROLLER, token: str | None = TOKEN,
                as_json: bool = JSON) -> None:
    """One subnet, by id or name."""
    show(client(ctx, controller, token).call("GET",
                                             f"/v1/networks/{network}/subnets/{subnet}"), as_json)


@subnet_app.command("delete")
def delete(ctx: typer.Context,
           network: str = typer.Argument(..., metavar="NETWORK"),
           subnet: str = typer.Argument(..., metavar="SUBNET", help="Subnet id or name."),
           *, controller: str = CONTROLLER, token: str | None = TOKEN) -> None:
    """Delete a subnet; refused while ports hold addresses in it (the error names them)."""
    client(ctx, controller, token).call("DELETE", f"/v1/networks/{network}/subnets/{subnet}")
    typer.echo(f"deleted subnet {subnet} of network {network}")


def register(app: typer.Typer) -> None:
    app.add_typer(subnet_app)
