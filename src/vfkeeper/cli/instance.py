"""``vfkeeper instance boot|list|show|delete|attach-port|detach-port``."""

from __future__ import annotations

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show

instance_app = typer.Typer(name="instance", help="Instances: boot = schedule + claim.",
                           no_args_is_help=True)


@instance_app.command("boot")
def boot(
    ctx: typer.Context, *, name: str,
    ports: list[str] = typer.Option(..., "--port", help="Port id; repeat for more ports."),
    numa_policy: str = typer.Option("legacy", "--numa-policy",
                                    help="required, preferred or legacy."),
    host: str = typer.Option(None, "--host", help="Place it on this host only."),
    controller: str = CONTROLLER, token: str | None = TOKEN, as_json: bool = JSON,
) -> None:
    """Boot an instance; when nothing fits, print why for every host and exit 1."""
    data = client(ctx, controller, token).call("POST", "/v1/instances", body={
        "name": name, "ports": ports, "numa_policy": numa_policy, "host": host})
    show(data, as_json)


@instance_app.command("list")
def list_instances(ctx: typer.Context, controller: str = CONTROLLER, token: str | None = TOKEN,
                   as_json: bool = JSON) -> None:
    data = client(ctx, controller, token).call("GET", "/v1/instances")
    show(data, as_json, ("id", "name", "host", "numa_policy", "status"))


@instance_app.command("show")
def show_instance(ctx: typer.Context, instance_id: str, controller: str = CONTROLLER,
                  token: str | None = TOKEN, as_json: bool = JSON) -> None:
    show(client(ctx, controller, token).call("GET", f"/v1/instances/{instance_id}"), as_json)


@instance_app.command("delete")
def delete(ctx: typer.Context, instance_id: str, controller: str = CONTROLLER,
           token: str | None = TOKEN) -> None:
    """Delete an instance: its devices are released and its ports unbound."""
    client(ctx, controller, token).call("DELETE", f"/v1/instances/{instance_id}")
    typer.echo(f"deleted instance {instance_id}")


@instance_app.command("attach-port")
def attach_port(ctx: typer.Context, instance_id: str, port_id: str, *,
                controller: str = CONTROLLER, token: str | None = TOKEN,
                as_json: bool = JSON) -> None:
    """Hot-plug an unbound port into a running instance: an SR-IOV port's VF is claimed on the
    instance's own host (when it has none to give, print the scheduler's reason and exit 1);
    the host's agent attaches it live. Prints the instance."""
    data = client(ctx, controller, token).call(
        "POST", f"/v1/instances/{instance_id}/ports", body={"port_id": port_id})
    show(data, as_json)


@instance_app.command("detach-port")
def detach_port(ctx: typer.Context, instance_id: str, port_id: str, *,
                controller: str = CONTROLLER, token: str | None = TOKEN,
                as_json: bool = JSON) -> None:
    """Hot-unplug a port: its device is released (the agent detaches it and restores the VF);
    the port stays, unbound, with its MAC/GUID. ``--json`` prints the instance."""
    api = client(ctx, controller, token)
    api.call("DELETE", f"/v1/instances/{instance_id}/ports/{port_id}")
    if as_json:
        show(api.call("GET", f"/v1/instances/{instance_id}"), as_json)
    else:
        typer.echo(f"detached port {port_id} from instance {instance_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(instance_app)
