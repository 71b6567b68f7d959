"""``vfkeeper spec show|apply|clear-host``: the controller's device specs, as operators change them.

``spec check`` (local) shows what specs would make of one host; these commands change what the
controller applies to every host. Specs are read from the same sources as ``spec check``
(``--spec``, ``--config``, ``--nova-conf``, ``--vf-maps``), checked here first (a bad entry
exits 2 naming the entry and key, and nothing is sent), then sent as one replacement. The
controller re-applies them and reports in-use devices they no longer select: those allocations
are kept and the devices marked, never dropped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from vfkeeper.cli.client import CONTROLLER, JSON, TOKEN, client, show
from vfkeeper.cli.spec import (
    CONFIG_OPT,
    NOVA_CONF_OPT,
    PHYSNET_OPT,
    SPEC_OPT,
    VF_MAPS_OPT,
    fail,
    spec_app,
    spec_entries,
    usage_errors,
)
from vfkeeper.config import SpecSources, read_nova_confs, read_toml_sources, read_vf_maps
from vfkeeper.domain.devspec import DeviceSpecSet


def _entries(specs: list[str], config: Path | None, nova_confs: list[Path],
             vf_maps: Path | None, physnets: list[str]) -> list[Any]:
    """Every entry of every source, in the documented order, as JSON values for the API."""
    pairs = dict(p.split("=", 1) for p in physnets if "=" in p)
    if len(pairs) != len(physnets):
        raise fail("--vf-map-physnet: expected MAP=PHYSNET, e.g. ib0=fabric-a")
    sources = SpecSources(specs=spec_entries(specs), nova_confs=list(nova_confs),
                          vf_maps=vf_maps, physnets=pairs)
    if not (sources.specs or config or nova_confs or vf_maps):
        raise fail("no device specs: give --spec, --config, --nova-conf or --vf-maps")
    with usage_errors():
        if config is not None:
            read_toml_sources(config, sources)
        entries = [*sources.specs, *read_nova_confs(sources.nova_confs)]
        if sources.vf_maps is not None:
            entries += read_vf_maps(sources.vf_maps, sources.physnets)
        DeviceSpecSet.parse(entries)  # refuse here, with the entry's source, before sending
    # Entries written as JSON text (--spec, nova.conf) are sent as the JSON they hold, so that
    # `spec show` reads back as objects; parse() above already refused any that are not JSON.
    return [json.loads(e.value) if isinstance(e.value, str) else e.value for e in entries]


def _report(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    hosts = result.get("recomputed_hosts", [])
    typer.echo(f"{result['scope']}: {len(result['entries'])} entries; pools recomputed on "
               f"{len(hosts)} host(s){': ' + ', '.join(hosts) if hosts else ''}")
    for item in result.get("in_use_devices_kept", []):
        typer.echo(f"kept in use, no longer selected: {json.dumps(item, sort_keys=True)}")
    for host, problem in sorted(result.get("host_problems", {}).items()):
        typer.echo(f"warning: {host}: {problem}", err=True)


@spec_app.command("show")
def show_specs(ctx: typer.Context, url: str = CONTROLLER, token: str | None = TOKEN,
               as_json: bool = JSON) -> None:
    """The controller's device specs: the cluster's, then each host override."""
    show(client(ctx, url, token).call("GET", "/v1/device-specs"), as_json)


@spec_app.command("apply")
def apply_specs(
    ctx: typer.Context,
    *,
    host: str | None = typer.Option(
        None, "--host", help="Set this host's override instead of the cluster's specs."),
    spec: list[str] = SPEC_OPT,
    config: Path | None = CONFIG_OPT,
    nova_conf: list[Path] = NOVA_CONF_OPT,
    vf_maps: Path | None = VF_MAPS_OPT,
    vf_map_physnet: list[str] = PHYSNET_OPT,
    url: str = CONTROLLER,
    token: str | None = TOKEN,
    as_json: bool = JSON,
) -> None:
    """Replace the cluster's device specs (or one host's override) and recompute pools."""
    entries = _entries(spec, config, nova_conf, vf_maps, vf_map_physnet)
    path = f"/v1/hosts/{host}/device-specs" if host else "/v1/device-specs"
    _report(client(ctx, url, token).call("PUT", path, body={"entries": entries}), as_json)


@spec_app.command("clear-host")
def clear_host(ctx: typer.Context, host: str = typer.Argument(..., help="Host name."),
               url: str = CONTROLLER, token: str | None = TOKEN, as_json: bool = JSON) -> None:
    """Drop a host's override: it follows the cluster's specs again."""
    _report(client(ctx, url, token).call("DELETE", f"/v1/hosts/{host}/device-specs"), as_json)


def register(app: typer.Typer) -> None:
    """``spec check`` and these commands share the ``spec`` group."""
    app.add_typer(spec_app)
