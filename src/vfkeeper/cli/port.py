"""``vfkeeper port create|list|show|delete``."""

from __future__ import annotations

from typing import Any

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show

port_app = typer.Typer(name="port", help="Ports: network attachments (Neutron's fields).",
                       no_args_is_help=True)
COLUMNS = ("id", "name", "vnic_type", "mac", "guid", "fixed_ips", "binding:host_id",
           "binding:vif_type", "status", "actual.phase", "actual.last_error")


def addresses_text(fixed_ips: list[dict[str, Any]] | None) -> str:
    """``192.0.2.5, 2001:db8::5054:ff:fe12:3456 (slaac)``; ``-`` for none."""
    return ", ".join(a["ip_address"] + (" (slaac)" if a.get("mode") == "slaac" else "")
                     for a in fixed_ips or []) or "-"


def _readable(port: dict[str, Any]) -> dict[str, Any]:
    return {**port, "fixed_ips": addresses_text(port.get("fixed_ips"))}


@port_app.command("create")
def create(
    ctx: typer.Context,
    *,
    network: str = typer.Option(..., "--network", help="Network id or name."),
    name: str = typer.Option(None, "--name"),
    vnic_type: str = typer.Option("direct", "--vnic-type",
                                  help="normal, direct, macvtap or direct-physical."),
    mac: str = typer.Option(None, "--mac", help="Ask for this MAC (409 if taken)."),
    guid: str = typer.Option(None, "--guid", help="InfiniBand: ask for this GUID."),
    trusted: bool = typer.Option(False, "--trusted"),
    no_port_security: bool = typer.Option(False, "--no-port-security",
                                          help="Turn the VF's spoof check off."),
    min_kbps: int = typer.Option(None, "--min-kbps"),
    max_kbps: int = typer.Option(None, "--max-kbps"),
    link_state: str = typer.Option("auto", "--link-state", help="auto, enable or disable."),
    ips: list[str] = typer.Option([], "--ip", metavar="ADDRESS",
                                  help="Ask for this IP address in the subnet that holds it "
                                       "(repeatable; 409 if taken, 400 if in no subnet)."),
    controller: str = CONTROLLER, token: str | None = TOKEN, as_json: bool = JSON,
) -> None:
    """Create a port; it gets an IP address in each subnet of its network."""
    body = {"network": network, "name": name, "vnic_type": vnic_type, "mac": mac, "guid": guid,
            "trusted": trusted, "port_security": not no_port_security,
            "qos": {"min_kbps": min_kbps, "max_kbps": max_kbps}, "link_state": link_state,
            "fixed_ips": [{"ip_address": ip} for ip in ips]}
    data = client(ctx, controller, token).call("POST", "/v1/ports", body=body)
    show(data if as_json else _readable(data), as_json)


@port_app.command("list")
def list_ports(ctx: typer.Context,
               network: str = typer.Option(None, "--network", help="Only this network id."),
               controller: str = CONTROLLER, token: str | None = TOKEN,
               as_json: bool = JSON) -> None:
    data = client(ctx, controller, token).call("GET", "/v1/ports", params={"network": network})
    show(data if as_json else [_readable(p) for p in data], as_json, COLUMNS)


@port_app.command("show")
def show_port(ctx: typer.Context, port_id: str, controller: str = CONTROLLER,
              token: str | None = TOKEN, as_json: bool = JSON) -> None:
    data = client(ctx, controller, token).call("GET", f"/v1/ports/{port_id}")
    show(data if as_json else _readable(data), as_json)


@port_app.command("delete")
def delete(ctx: typer.Context, port_id: str, controller: str = CONTROLLER,
           token: str | None = TOKEN) -> None:
    client(ctx, controller, token).call("DELETE", f"/v1/ports/{port_id}")
    typer.echo(f"deleted port {port_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(port_app)
