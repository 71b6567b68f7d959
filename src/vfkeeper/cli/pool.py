"""``vfkeeper pool list``: device pools as the controller holds them (the local ``vfkeeper
pools`` command computes pools from an inventory without a controller)."""

from __future__ import annotations

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show, tags_text

pool_app = typer.Typer(name="pool", help="Device pools as the controller holds them.",
                       no_args_is_help=True)


@pool_app.command("list")
def list_pools(
    ctx: typer.Context,
    *,
    host: str = typer.Option(None, "--host"),
    physical_network: str = typer.Option(None, "--physical-network"),
    controller: str = CONTROLLER, token: str | None = TOKEN, as_json: bool = JSON,
) -> None:
    """Every pool with its tags (trusted=true, profileid=…) and total, used, releasing (freed,
    not yet given back by the host) and free counts."""
    data = client(ctx, controller, token).call(
        "GET", "/v1/pools", params={"host": host, "physical_network": physical_network})
    if not as_json:
        data = [{**p, "tags": tags_text(p.get("tags"))} for p in data]
    show(data, as_json, ("host", "physical_network", "dev_type", "parent_pf", "numa_node",
                         "tags", "total", "used", "releasing", "free"))


def register(app: typer.Typer) -> None:
    app.add_typer(pool_app)
