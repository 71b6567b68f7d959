"""``vfkeeper host show`` for a person: sections (the host, its agent, its devices in sum, their
problems, what the agent last reported, its pools) instead of the JSON document, which
``--json`` still prints whole. Fields this module does not know are printed as ``key: value``
after the sections, so a new field of the API is never hidden."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import typer

from vfkeeper.cli.client import table, tags_text

_SHOWN = frozenset({
    "name", "enabled", "disabled_reason", "agent", "inventory_updated_at", "schema_version",
    "generation", "spec_problem", "devices_total", "devices_assignable", "devices_in_use",
    "free", "problems", "devices", "pools", "agent_report", "devices_releasing", "releasing",
})
_POOL_COLUMNS = ("physical_network", "dev_type", "parent_pf", "numa_node", "vendor", "tags",
                 "total", "used", "releasing", "free")
_POOL_HEADERS = ("PHYSICAL_NETWORK", "TYPE", "PARENT_PF", "NUMA", "IDS", "TAGS", "TOTAL",
                 "USED", "RELEASING", "FREE")


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _host(view: Mapping[str, Any]) -> list[str]:
    enabled = _yes(view.get("enabled"))
    if not view.get("enabled") and view.get("disabled_reason"):
        enabled += f" ({view['disabled_reason']})"
    lines = [f"host {view.get('name')}", f"  enabled: {enabled}",
             f"  inventory: schema {_text(view.get('schema_version'))}, "
             f"updated {_text(view.get('inventory_updated_at'))}",
             f"  generation: {_text(view.get('generation'))}"]
    if view.get("spec_problem"):
        lines.append(f"  device specs cannot be used: {view['spec_problem']}")
    return lines


def _agent(agent: Mapping[str, Any]) -> list[str]:
    return ["agent",
            f"  alive: {_yes(agent.get('alive'))}, last seen {_text(agent.get('last_seen'))}",
            f"  migration URI: {_text(agent.get('migration_uri'))}"]


def _devices(view: Mapping[str, Any]) -> list[str]:
    lines = ["devices",
             f"  {_text(view.get('devices_total'))} in total, "
             f"{_text(view.get('devices_assignable'))} assignable, "
             f"{_text(view.get('devices_in_use'))} in use, "
             f"{_text(view.get('devices_releasing', 0))} releasing, {_text(view.get('free'))} "
             "free (each device: --json)"]
    releasing = view.get("releasing") or []
    lines.append("releasing" + ("" if releasing else ": none"))
    lines += [f"  {r.get('address')}: {r.get('reason')} (port {r.get('port_id')}, instance "
              f"{r.get('instance_id')}, since {_text(r.get('released_at'))}); free once the "
              "agent reports it given back" for r in releasing]
    problems = view.get("problems") or []
    lines.append("problems" + ("" if problems else ": none"))
    lines += [f"  {p.get('address')}: {p.get('problem')}" + (" (in use)" if p.get("in_use")
                                                             else "") for p in problems]
    return lines


def _report(report: Mapping[str, Any] | None) -> list[str]:
    if report is None:
        return ["agent report: none yet"]
    lines = [f"agent report of {_text(report.get('reported_at'))} (desired generation "
             f"{_text(report.get('desired_generation'))})"]
    for kind in ("foreign", "vanished", "releasing"):
        items = report.get(kind) or []
        lines.append(f"  {kind}: {len(items)}")
        lines += [f"    {json.dumps(item, sort_keys=True, default=str)}" for item in items]
    return lines


def print_host(view: Mapping[str, Any]) -> None:
    """The host view (``GET /v1/hosts/{name}``) in sections."""
    lines = [*_host(view), *_agent(view.get("agent") or {}), *_devices(view),
             *_report(view.get("agent_report"))]
    lines += [f"{key}: {_text(value)}" for key, value in view.items() if key not in _SHOWN]
    for line in lines:
        typer.echo(line)
    pools = [{**p, "vendor": f"{p.get('vendor_id')}:{p.get('product_id')}",
              "tags": tags_text(p.get("tags"))} for p in view.get("pools") or []]
    typer.echo("pools" + ("" if pools else ": none (no device spec selects a device)"))
    if pools:
        table(pools, _POOL_COLUMNS, _POOL_HEADERS)
