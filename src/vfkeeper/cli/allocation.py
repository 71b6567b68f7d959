"""``vfkeeper allocation list``."""

from __future__ import annotations

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show

allocation_app = typer.Typer(name="allocation", help="Live device claims.",
                             no_args_is_help=True)


@allocation_app.command("list")
def list_allocations(
    ctx: typer.Context,
    *,
    host: str = typer.Option(None, "--host"),
    instance: str = typer.Option(None, "--instance"),
    controller: str = CONTROLLER, token: str | None = TOKEN, as_json: bool = JSON,
) -> None:
    data = client(ctx, controller, token).call(
        "GET", "/v1/allocations", params={"host": host, "instance": instance})
    show(data, as_json, ("host", "device", "dev_type", "physical_network", "instance_id",
                         "port_id", "device_problem"))


def register(app: typer.Typer) -> None:
    app.add_typer(allocation_app)
