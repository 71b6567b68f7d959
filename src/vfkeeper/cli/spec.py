"""``vfkeeper spec check``: which devices of a host the device specs make assignable, and why.

Local command (no controller). Specs come from ``--spec`` (JSON, or ``@FILE``), ``--config``
(vfkeeper's TOML), ``--nova-conf`` and ``--vf-maps``; devices from ``--sysfs-root`` (discovery)
or ``--devices`` (a JSON list of Nova-style device objects). An invalid spec, file or device
record exits with status 2 and a message naming the entry and key.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from vfkeeper.config import ConfigError, load_spec_set
from vfkeeper.config.files import read_text
from vfkeeper.domain.devspec import (
    DeviceSpecError,
    DeviceSpecSet,
    HostMatcher,
    HostView,
    SpecEntry,
    canonical_address,
)

USAGE_ERROR = 2

spec_app = typer.Typer(
    name="spec",
    help="Device specs (Nova's [pci] device_spec syntax, plus extensions): check them against "
         "a host, or show and change the controller's.",
    no_args_is_help=True,
)

# Options shared by `spec check` and `pools` (typer wants them written per command).
SPEC_OPT = typer.Option(
    [], "--spec", metavar="JSON|@FILE",
    help="A device spec: a JSON object or list of objects, or @FILE holding one (repeatable).")
CONFIG_OPT = typer.Option(None, "--config", metavar="FILE",
                          help="vfkeeper TOML config with [[device_spec]] tables.")
NOVA_CONF_OPT = typer.Option(
    [], "--nova-conf", metavar="FILE",
    help="Read [pci] device_spec (and its deprecated names) from a nova.conf (repeatable).")
VF_MAPS_OPT = typer.Option(None, "--vf-maps", metavar="PATH",
                           help="OpenNebula SR-IOV VF map file or vf_maps directory.")
PHYSNET_OPT = typer.Option(
    [], "--vf-map-physnet", metavar="MAP=PHYSNET",
    help="Physical network of an OpenNebula VF map (default: the map's name).")
SYSFS_OPT = typer.Option(None, "--sysfs-root", metavar="PATH",
                         help="Discover the devices under this root ('/' for this host).")
DEVICES_OPT = typer.Option(None, "--devices", metavar="FILE.json",
                           help="A JSON list of Nova-style device objects.")
JSON_OPT = typer.Option(False, "--json", help="Print JSON instead of a table.")


@contextmanager
def usage_errors() -> Iterator[None]:
    """Spec, config and device errors become ``Error: …`` on stderr and exit status 2."""
    try:
        yield
    except (DeviceSpecError, ConfigError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(USAGE_ERROR) from None


def fail(message: str) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(USAGE_ERROR)


def spec_entries(values: list[str]) -> list[SpecEntry]:
    entries: list[SpecEntry] = []
    for n, value in enumerate(values):
        if not value.startswith("@"):
            entries.append(SpecEntry(value, f"--spec #{n}"))
            continue
        path = Path(value[1:])
        text = _read(f"--spec {value}", path)
        try:
            json.loads(text)
            entries.append(SpecEntry(text, f"{path}"))
        except ValueError:  # one JSON entry per line
            entries += [SpecEntry(line, f"{path}:{i}")
                        for i, line in enumerate(text.splitlines(), start=1) if line.strip()]
    return entries


def load_specs(specs: list[str], config: Path | None, nova_confs: list[Path],
               vf_maps: Path | None, physnets: list[str], *, host: HostView) -> DeviceSpecSet:
    pairs = {}
    for item in physnets:
        name, eq, physnet = item.partition("=")
        if not eq or not name or not physnet:
            raise fail(f"--vf-map-physnet {item!r}: expected MAP=PHYSNET, e.g. ib0=fabric-a")
        pairs[name] = physnet
    entries = spec_entries(specs)
    if not (entries or config or nova_confs or vf_maps):
        raise fail("no device specs: give --spec, --config, --nova-conf or --vf-maps")
    with usage_errors():
        spec_set = load_spec_set(specs=entries, config=config, nova_confs=nova_confs,
                                 vf_maps=vf_maps, physnets=pairs, host=host)
    for index, warning in spec_set.warnings:
        typer.echo(f"warning: spec #{index}: {warning}", err=True)
    return spec_set


def _read(given: str, path: Path) -> str:
    """The text of the file the command line names as ``given`` (e.g. ``--spec @F``); one it
    cannot read is a usage error."""
    try:
        return read_text(path, ConfigError, "Check the path and permissions")
    except ConfigError as exc:
        raise fail(f"{given}: {exc.problem}. {exc.fix}") from None


def _records(path: Path) -> list[Any]:
    text = _read(f"--devices {path}", path)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise fail(f"--devices {path}: not valid JSON ({exc})") from None
    if not isinstance(data, list):
        raise fail(f"--devices {path}: expected a JSON list of device objects")
    return data


def load_host(sysfs_root: Path | None, devices: Path | None) -> HostView:
    if (sysfs_root is None) == (devices is None):
        raise fail("give exactly one device source: --sysfs-root PATH or --devices FILE.json")
    if devices is not None:
        with usage_errors():
            return HostView.from_records(_records(devices))
    # Discovery is only needed for --sysfs-root; importing it here keeps `--devices` free of it.
    from vfkeeper.agent.discovery import discover  # noqa: PLC0415
    from vfkeeper.agent.errors import AgentError  # noqa: PLC0415
    from vfkeeper.agent.sysfs import SysfsReader  # noqa: PLC0415

    try:
        inventory = discover(SysfsReader(str(sysfs_root)))
    except AgentError as exc:
        raise fail(f"--sysfs-root {sysfs_root}: {exc}") from None
    return HostView.from_inventory(inventory)


def bind(spec_set: DeviceSpecSet, host: HostView) -> HostMatcher:
    with usage_errors():
        return spec_set.bind(host)


def _table(rows: list[list[str]], echo: Callable[[str], None] = typer.echo) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def check_results(matcher: HostMatcher) -> list[dict[str, Any]]:
    """The ``--json`` document: one object per device, in input order."""
    out = []
    for dev, match in matcher.matches():
        out.append({
            "address": dev.address,
            "matched": match is not None,
            "spec_index": match.spec_index if match else None,
            "tags": dict(match.tags) if match else None,
        })
    return out


def _explain(matcher: HostMatcher, address: str, as_json: bool) -> None:
    canon = canonical_address(address)
    dev = matcher.host.by_address.get(canon or "")
    if dev is None:
        known = ", ".join(d.address for d in matcher.host.devices[:8])
        raise fail(f"--explain {address}: no such device on this host (devices: {known}…)")
    why = matcher.explain(dev)
    if not as_json:
        for line in why.lines():
            typer.echo(line)
        return
    typer.echo(json.dumps({
        "address": why.address, "device": why.device,
        "matched": why.match is not None,
        "spec_index": why.match.spec_index if why.match else None,
        "tags": dict(why.match.tags) if why.match else None,
        "specs": [{"spec_index": s.spec_index, "source": s.source, "matched": s.matched,
                   "deciding_key": s.deciding_key, "shadowed_by": s.shadowed_by,
                   "keys": [{"key": k.key, "ok": k.ok, "detail": k.detail} for k in s.keys]}
                  for s in why.specs],
        "verdict": why.verdict,
    }, indent=2))


@spec_app.command("check")
def check(
    *,
    spec: list[str] = SPEC_OPT,
    config: Path | None = CONFIG_OPT,
    nova_conf: list[Path] = NOVA_CONF_OPT,
    vf_maps: Path | None = VF_MAPS_OPT,
    vf_map_physnet: list[str] = PHYSNET_OPT,
    sysfs_root: Path | None = SYSFS_OPT,
    devices: Path | None = DEVICES_OPT,
    as_json: bool = JSON_OPT,
    explain: str | None = typer.Option(
        None, "--explain", metavar="ADDRESS",
        help="Show, spec by spec and key by key, why this device did or did not match."),
) -> None:
    """Match every device of a host against the specs; the first matching spec wins."""
    host = load_host(sysfs_root, devices)
    spec_set = load_specs(spec, config, nova_conf, vf_maps, vf_map_physnet, host=host)
    matcher = bind(spec_set, host)
    if explain is not None:
        _explain(matcher, explain, as_json)
        return
    results = check_results(matcher)
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    rows = [["ADDRESS", "TYPE", "IDS", "PARENT", "MATCH", "TAGS"]]
    for dev, res in zip(matcher.host.devices, results, strict=True):
        rows.append([
            dev.address, dev.dev_type, f"{dev.vendor_id}:{dev.product_id}",
            dev.parent_addr or "-",
            f"spec #{res['spec_index']}" if res["matched"] else "no",
            json.dumps(res["tags"], sort_keys=True) if res["matched"] else "-",
        ])
    _table(rows)
    matched = sum(1 for r in results if r["matched"])
    typer.echo(f"{matched} of {len(results)} devices assignable; "
               "use --explain ADDRESS to see why a device did or did not match")


def register(app: typer.Typer) -> None:
    app.add_typer(spec_app)
