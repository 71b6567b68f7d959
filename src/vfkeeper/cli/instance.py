"""``vfkeeper instance boot|list|show|delete|attach-port|detach-port|migrate|suspend|resume|
abort``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, ApiClient, client, show, table
from vfkeeper.config.errors import ConfigError
from vfkeeper.config.files import read_text

RUNNING = ("MIGRATING", "SUSPENDING", "RESUMING")
WAIT = typer.Option(False, "--wait", help="Wait until the task ends, printing its progress, "
                    "and, when the instance is ACTIVE again, until the agents report its ports "
                    "back on it; exit 1 if it failed.")
TIMEOUT = typer.Option(600.0, "--timeout", min=1.0, help="With --wait: give up after this "
                       "many seconds (the task goes on).")

instance_app = typer.Typer(name="instance", help="Instances: boot = schedule + claim.",
                           no_args_is_help=True)


@instance_app.command("boot")
def boot(
    ctx: typer.Context,
    name: str = typer.Argument(..., metavar="NAME", help="The instance's name."),
    *,
    ports: list[str] = typer.Option(..., "--port", help="Port id; repeat for more ports."),
    numa_policy: str = typer.Option("legacy", "--numa-policy",
                                    help="required, preferred or legacy."),
    host: str = typer.Option(None, "--host", help="Place it on this host only."),
    hostname: str | None = typer.Option(None, "--hostname",
                                        help="The guest's host name (default: from NAME)."),
    ssh_keys: list[Path] = typer.Option([], "--ssh-key", metavar="FILE.pub",
                                        help="An OpenSSH public key file for the guest "
                                             "(repeatable; named after the file)."),
    user_data: Path | None = typer.Option(None, "--user-data", metavar="FILE",
                                          help="cloud-init user data for the guest (64 KiB)."),
    controller: str = CONTROLLER, token: str | None = TOKEN, as_json: bool = JSON,
) -> None:
    """Boot an instance; when nothing fits, print why for every host and exit 1."""
    body: dict[str, Any] = {"name": name, "ports": ports, "numa_policy": numa_policy,
                            "host": host, "hostname": hostname}
    if ssh_keys:
        body["public_keys"] = {key.stem: _file_text("--ssh-key", key).strip()
                               for key in ssh_keys}
    if user_data is not None:
        body["user_data"] = _file_text("--user-data", user_data)
    data = client(ctx, controller, token).call("POST", "/v1/instances", body=body)
    print_instance(data, as_json)


def _file_text(option: str, path: Path) -> str:
    """A file the command line names; one that cannot be read is a usage error naming it."""
    try:
        return read_text(path, ConfigError, "Check the path and permissions")
    except ConfigError as exc:
        raise typer.BadParameter(f"{exc.problem}. {exc.fix}",
                                 param_hint=f"'{option} {path}'") from None


@instance_app.command("config-drive")
def config_drive(
    ctx: typer.Context,
    instance_id: str = typer.Argument(..., metavar="ID"),
    *,
    out: Path = typer.Option(..., "--out", metavar="FILE.iso", dir_okay=False,
                             help="Where to write the image (replaced whole)."),
    fmt: str = typer.Option("config-2", "--format", metavar="config-2|nocloud",
                            help="config-2: openstack/latest/... (cloud-init's ConfigDrive); "
                                 "nocloud: a cidata seed."),
    controller: str = CONTROLLER, token: str | None = TOKEN,
) -> None:
    """Write the instance's guest documents as an ISO 9660 config drive, for a CD-ROM."""
    image = client(ctx, controller, token).download(
        f"/v1/instances/{instance_id}/metadata/config-drive", params={"format": fmt})
    partial = out.with_name(out.name + ".partial")
    partial.write_bytes(image)
    partial.replace(out)
    typer.echo(f"wrote {out} ({len(image)} bytes, {fmt})")


@instance_app.command("list")
def list_instances(ctx: typer.Context, controller: str = CONTROLLER, token: str | None = TOKEN,
                   as_json: bool = JSON) -> None:
    data = client(ctx, controller, token).call("GET", "/v1/instances")
    show(data, as_json, ("id", "name", "host", "numa_policy", "status", "last_error"))


@instance_app.command("show")
def show_instance(ctx: typer.Context, instance_id: str, controller: str = CONTROLLER,
                  token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """One instance, with the device (and its NUMA node) each of its ports holds."""
    print_instance(client(ctx, controller, token).call("GET", f"/v1/instances/{instance_id}"),
                  as_json)


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
    print_instance(data, as_json)


@instance_app.command("detach-port")
def detach_port(ctx: typer.Context, instance_id: str, port_id: str, *,
                controller: str = CONTROLLER, token: str | None = TOKEN,
                as_json: bool = JSON) -> None:
    """Hot-unplug a port: its device is released (the agent detaches it and restores the VF);
    the port stays, unbound, with its MAC/GUID. ``--json`` prints the instance."""
    api = client(ctx, controller, token)
    api.call("DELETE", f"/v1/instances/{instance_id}/ports/{port_id}")
    if as_json:
        print_instance(api.call("GET", f"/v1/instances/{instance_id}"), as_json)
    else:
        typer.echo(f"detached port {port_id} from instance {instance_id}")


@instance_app.command("migrate")
def migrate(ctx: typer.Context, instance_id: str, *,
            to: str = typer.Option(None, "--to", help="The destination host."),
            abort: bool = typer.Option(False, "--abort", help="Give up the running migration "
                                       "(as vfkeeper instance abort)."),
            wait: bool = WAIT, timeout: float = TIMEOUT, controller: str = CONTROLLER,
            token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Live-migrate a running instance to another host. A VF is reserved there for every
    SR-IOV port first (when the host has none to give, print why and exit 1); then the agents
    unplug the hostdev ports, migrate, and plug them in on the destination; macvtap ports move
    as they are. Prints the instance (MIGRATING)."""
    if abort == (to is not None):
        raise typer.BadParameter("give --to HOST to migrate, or --abort to give up a running "
                                 "migration (not both)")
    api = client(ctx, controller, token)
    if abort:
        data = api.call("POST", f"/v1/instances/{instance_id}/abort")
    else:
        data = api.call("POST", f"/v1/instances/{instance_id}/migrate", body={"host": to})
    _finish(api, data, wait, timeout, as_json)


@instance_app.command("abort")
def abort_task(ctx: typer.Context, instance_id: str, *, wait: bool = WAIT,
               timeout: float = TIMEOUT, controller: str = CONTROLLER,
               token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Give up the instance's running task (migrate, suspend, resume): it stops wherever the
    source host's agent has not acted yet, and the instance is back as it was. Prints it."""
    api = client(ctx, controller, token)
    _finish(api, api.call("POST", f"/v1/instances/{instance_id}/abort"), wait, timeout,
            as_json)


@instance_app.command("suspend")
def suspend(ctx: typer.Context, instance_id: str, *,
            no_detach: bool = typer.Option(False, "--no-detach", help="Refuse (naming the "
                                           "ports) rather than unplug passthrough ports."),
            wait: bool = WAIT, timeout: float = TIMEOUT, controller: str = CONTROLLER,
            token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Save a running instance to disk (libvirt managed save). libvirt cannot save a domain
    holding a PCI function, so its hostdev ports are unplugged across the save and keep their
    VFs; macvtap ports stay. Prints the instance (SUSPENDING)."""
    api = client(ctx, controller, token)
    data = api.call("POST", f"/v1/instances/{instance_id}/suspend",
                    body={"detach_devices": not no_detach})
    _finish(api, data, wait, timeout, as_json)


@instance_app.command("resume")
def resume(ctx: typer.Context, instance_id: str, *, wait: bool = WAIT,
           timeout: float = TIMEOUT, controller: str = CONTROLLER, token: str | None = TOKEN,
           as_json: bool = JSON) -> None:
    """Restore a suspended instance and plug its ports back in. Prints it (RESUMING)."""
    api = client(ctx, controller, token)
    _finish(api, api.call("POST", f"/v1/instances/{instance_id}/resume"), wait, timeout,
            as_json)


def _progress(data: dict[str, Any]) -> str:
    task = data.get("task") or {}
    waits = [f"{side}: {task[key]}" for side, key in (("source", "source_waiting_for"),
                                                      ("destination", "target_waiting_for"))
             if task.get(key)]
    return f"{data['status']}" + (f" ({'; '.join(waits)})" if waits else "")


def print_instance(data: dict[str, Any], as_json: bool) -> None:
    """The instance as ``key: value`` lines, its allocations as a table with the NUMA node of
    each claimed device; ``--json``: the API's document."""
    if as_json:
        show(data, as_json)
        return
    allocations = data.get("allocations") or []
    show({k: v for k, v in data.items() if k != "allocations"}, as_json)
    typer.echo("allocations:" if allocations else "allocations: none")
    if allocations:
        table(allocations, ("port_id", "device", "numa_node", "request_id"),
              ("PORT", "DEVICE", "NUMA", "REQUEST"))


def _ports_back(ports: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether every port holding a device is back on the instance as its agent reports it
    (attached, ACTIVE or DOWN), and a line saying how far they are."""
    devices = [p for p in ports if p.get("desired") is not None]
    failed = [p for p in devices if p.get("status") == "ERROR"]
    if failed:
        why = (failed[0].get("actual") or {}).get("last_error") or "no reason reported"
        typer.echo(f"error: port {failed[0]['id']} is in ERROR: {why}", err=True)
        raise typer.Exit(1)
    back = [p for p in devices if (p.get("actual") or {}).get("phase") == "attached"
            and p.get("status") in ("ACTIVE", "DOWN")]
    return len(back) == len(devices), f"ports: {len(back)} of {len(devices)} back"


def _poll(deadline: float, timeout: float, data: dict[str, Any], what: str) -> None:
    if time.monotonic() > deadline:
        typer.echo(f"still {what} after {timeout:g} s; the task goes on: "
                   f"vfkeeper instance show {data['id']}", err=True)
        raise typer.Exit(2)
    time.sleep(0.5)


def _finish(api: ApiClient, data: dict[str, Any], wait: bool, timeout: float,
            as_json: bool) -> None:  # fmt: skip
    """Print the instance; with ``wait``, poll until its task ends, printing each change, and
    when it is ACTIVE again, until its ports are back on it (re-plugged by the agent)."""
    deadline, last = time.monotonic() + timeout, ""

    def say(line: str) -> None:
        nonlocal last
        if line != last and not as_json:
            typer.echo(line)
            last = line

    while wait and data["status"] in RUNNING:
        say(_progress(data))
        _poll(deadline, timeout, data, data["status"])
        data = api.call("GET", f"/v1/instances/{data['id']}")
    while wait and data["status"] == "ACTIVE" and not data.get("last_error"):
        done, line = _ports_back(api.call("GET", "/v1/ports", params={"instance": data["id"]}))
        if done:
            break
        say(line)
        _poll(deadline, timeout, data, "waiting for its ports")
    print_instance(data, as_json)
    if wait and data.get("last_error"):
        typer.echo(f"error: {data['last_error']}", err=True)
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(instance_app)
