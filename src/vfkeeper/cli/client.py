"""The CLI's one HTTP client of the controller, and the options every API command shares.

``--controller URL`` / ``VFKEEPER_URL`` and ``--token`` / ``VFKEEPER_TOKEN`` say where and as
whom; ``--json`` prints the API's JSON instead of a table. An API error prints its message and
details and exits 1; an unreachable controller says which URL was tried. Tests inject an httpx
transport through the click context object (``runner.invoke(app, args, obj={"transport": t})``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import typer

DEFAULT_URL = "http://127.0.0.1:8470"

CONTROLLER = typer.Option(DEFAULT_URL, "--controller", envvar="VFKEEPER_URL",
                          help="The controller's base URL.")
TOKEN = typer.Option(None, "--token", envvar="VFKEEPER_TOKEN", help="API bearer token.")
JSON = typer.Option(False, "--json", help="Print the API's JSON.")


class ApiClient:
    def __init__(self, url: str, token: str | None, transport: httpx.BaseTransport | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                  timeout=30.0)

    def call(self, method: str, path: str, *, body: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self._http.request(method, path, json=body, params=query)
        except httpx.TransportError as exc:
            typer.echo(f"Error: cannot reach the controller at {self.url} ({exc}); is "
                       "'vfkeeper serve' running there? Set --controller or VFKEEPER_URL.",
                       err=True)
            raise typer.Exit(1) from exc
        if resp.is_success:
            return resp.json() if resp.content else None
        fail(resp)
        return None


def fail(resp: httpx.Response) -> None:
    """Print an API error (the envelope's message, then its details) and exit 1."""
    try:
        error = resp.json()["error"]
        message, details = error["message"], error.get("details") or {}
    except (ValueError, KeyError, TypeError):
        message, details = f"HTTP {resp.status_code}: {resp.text[:200]}", {}
    typer.echo(f"Error: {message}", err=True)
    if details:
        typer.echo(json.dumps(details, indent=2, default=str), err=True)
    raise typer.Exit(1)


def client(ctx: typer.Context, url: str, token: str | None) -> ApiClient:
    obj = ctx.find_root().obj
    transport = obj.get("transport") if isinstance(obj, dict) else None
    return ApiClient(url, token, transport)


def show(data: Any, as_json: bool, columns: Sequence[str] = ()) -> None:
    """``--json``: the JSON; a list: a table of ``columns``; an object: ``key: value`` lines."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif isinstance(data, list):
        _table(data, columns)
    elif isinstance(data, dict):
        for key, value in data.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            typer.echo(f"{key}: {text}")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    cells = [[_cell(_get(row, c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _get(row: dict[str, Any], column: str) -> Any:
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value
