"""``vfkeeper host list|show|interfaces|enable|disable|delete|force-release``."""

from __future__ import annotations

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show
from vfkeeper.cli.host_view import print_host

host_app = typer.Typer(name="host", help="Hosts, their devices, pools and NICs.",
                       no_args_is_help=True)


@host_app.command("list")
def list_hosts(ctx: typer.Context, controller: str = CONTROLLER, token: str | None = TOKEN,
               as_json: bool = JSON) -> None:
    """Every host with its scheduling state and free devices."""
    data = client(ctx, controller, token).call("GET", "/v1/hosts")
    show(data, as_json, ("name", "enabled", "agent.alive", "devices_assignable",
                         "devices_in_use", "free"))


@host_app.command("show")
def show_host(ctx: typer.Context,
              name: str = typer.Argument(..., metavar="NAME", help="The host's name."),
              controller: str = CONTROLLER,
              token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """One host: its agent, devices, problems, the agent's last report and pools."""
    data = client(ctx, controller, token).call("GET", f"/v1/hosts/{name}")
    if as_json:
        show(data, as_json)
    else:
        print_host(data)


@host_app.command("interfaces")
def interfaces(ctx: typer.Context, name: str, controller: str = CONTROLLER,
               token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Every NIC of the host with bus_info and driver."""
    data = client(ctx, controller, token).call("GET", f"/v1/hosts/{name}/interfaces")
    show(data, as_json, ("name", "mac", "bus_info", "driver", "dev_type", "link_type",
                         "numa_node"))


@host_app.command("disable")
def disable(ctx: typer.Context,
            name: str = typer.Argument(..., metavar="NAME", help="The host's name."), *,
            reason: str = typer.Option(None, "--reason", help="Why (shown in host views)."),
            controller: str = CONTROLLER, token: str | None = TOKEN,
            as_json: bool = JSON) -> None:
    """Take a host out of scheduling (its instances stay)."""
    data = client(ctx, controller, token).call(
        "PATCH", f"/v1/hosts/{name}", body={"enabled": False, "disabled_reason": reason})
    show(data if as_json else {"name": name, "enabled": data["enabled"]}, as_json)


@host_app.command("enable")
def enable(ctx: typer.Context, name: str, controller: str = CONTROLLER,
           token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Put a host back into scheduling."""
    data = client(ctx, controller, token).call("PATCH", f"/v1/hosts/{name}",
                                               body={"enabled": True})
    show(data if as_json else {"name": name, "enabled": data["enabled"]}, as_json)


@host_app.command("delete")
def delete(ctx: typer.Context,
           name: str = typer.Argument(..., metavar="NAME", help="The host's name."), *,
           controller: str = CONTROLLER, token: str | None = TOKEN) -> None:
    """Forget a host, its devices and its agent's reports (refused while an instance is on
    it). An agent still running there registers the host again."""
    client(ctx, controller, token).call("DELETE", f"/v1/hosts/{name}")
    typer.echo(f"deleted host {name}")


FORCE_WARNING = (
    "Forcing the release of {address} on host {name} hands it out again without the host's "
    "word that it was given back: the VF may still be attached to the old domain and keep its "
    "old MAC, VLAN or GUID, which the next instance given it could then share. Use this only "
    "when the host is gone or the domain is known to be destroyed.")


@host_app.command("force-release")
def force_release(ctx: typer.Context,
                  name: str = typer.Argument(..., metavar="HOST", help="The host's name."),
                  address: str = typer.Argument(..., metavar="ADDRESS",
                                                help="The releasing device's PCI address."),
                  *, yes: bool = typer.Option(False, "--yes",
                                              help="Do not ask for confirmation."),
                  controller: str = CONTROLLER, token: str | None = TOKEN,
                  as_json: bool = JSON) -> None:
    """Free a releasing device its host's agent has not given back (admin; see
    docs/operations.md, Releasing devices). Says what it risks and asks first."""
    api = client(ctx, controller, token)
    if not yes:
        typer.echo(FORCE_WARNING.format(address=address, name=name), err=True)
        if not typer.confirm("Force the release?", default=False, err=True):
            typer.echo("nothing done", err=True)
            raise typer.Exit(1)
    data = api.call("POST", f"/v1/hosts/{name}/devices/{address}/force-release")
    if as_json:
        show(data, as_json)
    else:
        typer.echo(f"released {address} on host {name} (it was releasing since "
                   f"{data['released_at']}: {data['reason']}); it can be handed out again")


def register(app: typer.Typer) -> None:
    app.add_typer(host_app)
