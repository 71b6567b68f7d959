"""``vfkeeper pools``: a host's assignable devices grouped into pools, with free counts."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from vfkeeper.cli.spec import (
    CONFIG_OPT,
    DEVICES_OPT,
    JSON_OPT,
    NOVA_CONF_OPT,
    PHYSNET_OPT,
    SPEC_OPT,
    SYSFS_OPT,
    VF_MAPS_OPT,
    bind,
    load_host,
    load_specs,
)
from vfkeeper.cli.spec import _table as table
from vfkeeper.domain.pools import compute_pools


def pools(
    *,
    spec: list[str] = SPEC_OPT,
    config: Path | None = CONFIG_OPT,
    nova_conf: list[Path] = NOVA_CONF_OPT,
    vf_maps: Path | None = VF_MAPS_OPT,
    vf_map_physnet: list[str] = PHYSNET_OPT,
    sysfs_root: Path | None = SYSFS_OPT,
    devices: Path | None = DEVICES_OPT,
    in_use: list[str] = typer.Option(
        [], "--in-use", metavar="ADDRESS",
        help="A device already handed out (repeatable); PF/VF exclusivity applies."),
    as_json: bool = JSON_OPT,
) -> None:
    """Group a host's assignable devices into pools (physnet, IDs, NUMA node, type, parent
    PF, tags) with total and free counts."""
    host = load_host(sysfs_root, devices)
    spec_set = load_specs(spec, config, nova_conf, vf_maps, vf_map_physnet, host=host)
    matcher = bind(spec_set, host)
    result = compute_pools(matcher, frozenset(a.strip().lower() for a in in_use))
    if as_json:
        typer.echo(json.dumps([p.to_dict() for p in result], indent=2))
        return
    if not result:
        typer.echo("no pools: no device matches the specs "
                   "(vfkeeper spec check --explain ADDRESS shows why)")
        return
    rows = [["PHYSNET", "IDS", "NUMA", "TYPE", "PARENT", "TAGS", "TOTAL", "FREE"]]
    for p in result:
        k = p.key
        physnet = "(tunnelled)" if k.tunnelled else (k.physical_network or "-")
        tags = {n: v for n, v in p.tags.items() if n != "physical_network"}
        rows.append([physnet, f"{k.vendor_id}:{k.product_id}",
                     "-" if k.numa_node < 0 else str(k.numa_node), k.dev_type,
                     k.parent_addr or "-", json.dumps(tags, sort_keys=True) if tags else "-",
                     str(p.total), str(p.free)])
    table(rows)


def register(app: typer.Typer) -> None:
    app.command("pools")(pools)
