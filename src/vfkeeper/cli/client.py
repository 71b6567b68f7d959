"""The CLI's one HTTP client of the controller, and the options every API command shares.

``--controller URL`` / ``VFKEEPER_URL`` and ``--token`` / ``VFKEEPER_TOKEN`` say where and as
whom (a URL that is not ``http(s)://HOST…`` or a token that cannot be sent in a header is a usage
error); ``--json`` prints the API's JSON instead of a table. An API error prints its message
(and, with ``--json``, its details) and exits 1; a request the controller found invalid (422)
exits 2, naming the command's own option where the controller named a field of the request
body (:data:`OPTION_OF_FIELD`). An unreachable controller says which URL was tried. Tests inject
an httpx transport through the click context object
(``runner.invoke(app, args, obj={"transport": t})``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import typer

from vfkeeper.cli.app import FAILED, USAGE_ERROR

DEFAULT_URL = "http://127.0.0.1:8470"


def _controller_url(value: str) -> str:
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL as exc:
        raise typer.BadParameter(f"{value!r} is not a URL ({exc}); give the controller's base "
                                 f"URL, e.g. {DEFAULT_URL}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise typer.BadParameter(f"{value!r} is not an http:// or https:// URL with a host; "
                                 f"give the controller's base URL, e.g. {DEFAULT_URL}")
    return value


_HEADER_SAFE = re.compile(r"[!-~]+")


def _token(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if not _HEADER_SAFE.fullmatch(value):
        raise typer.BadParameter("a token is printable ASCII without spaces (vfkeeper's start "
                                 "with vfk_); copy it as 'vfkeeper token create' printed it")
    return value


CONTROLLER = typer.Option(DEFAULT_URL, "--controller", envvar="VFKEEPER_URL",
                          callback=_controller_url, metavar="URL",
                          help="The controller's base URL.")
TOKEN = typer.Option(None, "--token", envvar="VFKEEPER_TOKEN", callback=_token,
                     metavar="TOKEN", help="API bearer token.")
JSON = typer.Option(False, "--json", help="Print the API's JSON.")

OPTION_OF_FIELD: Mapping[str, Mapping[str, str]] = {
    "network create": {
        "name": "NAME", "physical_network": "--physical-network",
        "segmentation.type": "--type", "segmentation.id": "--id",
        "segmentation.full_membership": "--full-membership", "segmentation": "--type/--id",
        "mtu": "--mtu",
    },
    "port create": {
        "network": "--network", "name": "--name", "vnic_type": "--vnic-type", "mac": "--mac",
        "guid": "--guid", "qos.min_kbps": "--min-kbps", "qos.max_kbps": "--max-kbps",
        "qos": "--min-kbps/--max-kbps", "link_state": "--link-state", "fixed_ips": "--ip",
    },
    "subnet create": {
        "cidr": "CIDR", "name": "--name", "gateway": "--gateway", "gateway_ip": "--gateway",
        "dns_nameservers": "--dns", "host_routes": "--route", "allocation_pools": "--pool",
        "ipv6_mode": "--ipv6-mode", "ip_version": "CIDR",
    },
    "instance boot": {"name": "NAME", "ports": "--port", "numa_policy": "--numa-policy",
                      "host": "--host", "hostname": "--hostname", "public_keys": "--ssh-key",
                      "user_data": "--user-data"},
    "instance migrate": {"host": "--to"},
    "instance config-drive": {"format": "--format"},
    "host disable": {"disabled_reason": "--reason"},
}
"""Per command: the request body's field (a dotted path) → the command's own option. The
longest matching prefix wins, so ``segmentation.id`` names ``--id`` and a check of the whole
``segmentation`` names both options it is built from."""


class ApiClient:
    def __init__(self, url: str, token: str | None, transport: httpx.BaseTransport | None, *,
                 command: str = "", as_json: bool = False) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.url = url.rstrip("/")
        self.command = command
        self.as_json = as_json
        self._http = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                  timeout=30.0)

    def call(self, method: str, path: str, *, body: Any = None,
             params: dict[str, Any] | None = None) -> Any:
        """The answer's JSON (``None`` for an empty one); an error exits as :func:`fail` says."""
        resp = self._request(method, path, body, params)
        return resp.json() if resp.content else None

    def download(self, path: str, *, params: dict[str, Any] | None = None) -> bytes:
        """The bytes a ``GET`` answers (an image, a document), errors as for :meth:`call`."""
        return self._request("GET", path, None, params).content

    def _request(self, method: str, path: str, body: Any,
                 params: dict[str, Any] | None) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            resp = self._http.request(method, path, json=body, params=query)
        except httpx.TransportError as exc:
            typer.echo(f"Error: cannot reach the controller at {self.url} ({exc}); is "
                       "'vfkeeper serve' running there? Set --controller or VFKEEPER_URL.",
                       err=True)
            raise typer.Exit(FAILED) from exc
        if resp.is_success:
            return resp
        raise fail(resp, OPTION_OF_FIELD.get(self.command, {}), as_json=self.as_json)


def _option(path: str, options: Mapping[str, str]) -> str | None:
    parts = re.sub(r"\[\d+\]", "", path).split(".")
    for n in range(len(parts), 0, -1):
        option = options.get(".".join(parts[:n]))
        if option is not None:
            return option
    return None


def _invalid(error: dict[str, Any], options: Mapping[str, str]) -> str:
    """A 422's message, with the request's fields named as the command's options."""
    details = error.get("details") or {}
    lines = []
    for item in details.get("errors") or []:  # FastAPI's validation of the body or query
        loc = [str(p) for p in item.get("loc", ())]
        path = ".".join(loc[1:] if loc[:1] in (["body"], ["query"]) else loc)
        option = _option(path, options)
        text = str(item.get("message", "")).removeprefix("Value error, ")
        lines.append(f"{option or path}: {text}")
    field = details.get("field")
    if not lines and isinstance(field, str) and _option(field, options):
        message = str(error["message"])
        lines.append(f"{_option(field, options)}: {message.removeprefix(field + ': ')}")
    return "\n".join(lines) or str(error["message"])


def fail(resp: httpx.Response, options: Mapping[str, str] = {},
         *, as_json: bool = False) -> typer.Exit:
    """Print an API error and return the exit to raise: 2 for an invalid request (422), 1 for
    every other refusal. Details are printed with ``--json`` only: the message says it all
    (for "no valid host", the reason of every host)."""
    try:
        error = resp.json()["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        typer.echo(f"Error: HTTP {resp.status_code}: {resp.text[:200]}", err=True)
        return typer.Exit(FAILED)
    invalid = resp.status_code == 422
    typer.echo(f"Error: {_invalid(error, options) if invalid else message}", err=True)
    if as_json:
        typer.echo(json.dumps(error, indent=2, default=str), err=True)
    return typer.Exit(USAGE_ERROR if invalid else FAILED)


def _command(ctx: typer.Context) -> str:
    """``network create``: the command's words below ``vfkeeper``."""
    names = []
    here: Any = ctx
    while here is not None and here.parent is not None:
        names.append(here.info_name or "")
        here = here.parent
    return " ".join(reversed(names))


def client(ctx: typer.Context, url: str, token: str | None) -> ApiClient:
    obj = ctx.find_root().obj
    transport = obj.get("transport") if isinstance(obj, dict) else None
    return ApiClient(url, token, transport, command=_command(ctx),
                     as_json=bool(ctx.params.get("as_json")))


def show(data: Any, as_json: bool, columns: Sequence[str] = ()) -> None:
    """``--json``: the JSON; a list: a table of ``columns``; an object: ``key: value`` lines."""
    if as_json:
        typer.echo(json.dumps(data, indent=2, default=str))
    elif isinstance(data, list):
        table(data, columns)
    elif isinstance(data, dict):
        for key, value in data.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str)
            typer.echo(f"{key}: {text}")


def cell(value: Any) -> str:
    """A value as one table cell: ``-`` for nothing, strings as they are, the rest as JSON."""
    if value is None:
        return "-"
    return value if isinstance(value, str) else json.dumps(value, default=str)


def tags_text(tags: Mapping[str, Any] | None) -> str:
    """A device's or pool's tags as ``trusted=true,profileid=p1``; ``-`` for none."""
    return ",".join(f"{k}={v}" for k, v in sorted((tags or {}).items())) or "-"


def table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
          headers: Sequence[str] | None = None) -> None:
    """Rows as aligned columns under a header line (``columns`` upper-cased, or ``headers``);
    a column may be a dotted path into nested objects."""
    cells = [[cell(_get(row, c)) for c in columns] for row in rows]
    heads = list(headers) if headers is not None else [c.upper() for c in columns]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(heads)]
    typer.echo("  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip())
    for r in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def _get(row: Mapping[str, Any], column: str) -> Any:
    value: Any = row
    for part in column.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value
