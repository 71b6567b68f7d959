"""A small UFM Enterprise REST server for the tests, written from UFM's documentation.

It is a real HTTP/1.1 server (``http.server`` in a thread, on a loopback port, with real TLS
when given a certificate) that holds PKeys and their GUIDs the way UFM documents them, so that
vfkeeper's UFM backend is tested against UFM's behaviour and not against a mock of itself.

Sources (UFM Enterprise REST API Guide, the same text in v6.10 to v6.22):

* "PKey GUIDs Rest API",
  https://docs.nvidia.com/networking/display/ufmenterpriserestapiv6221/pkey+guids+rest+api:
  create an empty PKey (``POST /ufmRest/resources/pkeys/add``; only ``pkey`` is required;
  ``index0``, ``ip_over_ib``, ``mtu_limit``, ``service_level``, ``rate_limit``, and
  ``partition_name`` since 6.22); add GUIDs (``POST /ufmRest/resources/pkeys/``: ``guids``
  hex strings of 16 to 20 characters, ``pkey`` a hex string between 0x0 and 0x7fff
  exclusive, ``index0`` default false, ``ip_over_ib`` default true, ``membership`` full or
  limited (default full), or ``memberships`` one per GUID, the same length as ``guids``, which
  *conflicts* with ``membership``); remove GUIDs, get one PKey, get all PKeys, delete a PKey.
  The page says the older ``/ufmRest/actions/`` PKey calls are deprecated.
* "Access Tokens API",
  https://docs.nvidia.com/networking/display/ufmenterpriserestapiv6202/access+tokens+api, and
  "REST API Complementary Information": ``/ufmRest/...`` takes HTTP Basic auth,
  ``/ufmRestV3/...`` takes ``Authorization: Basic <access_token>``; tokens are made by
  ``POST /ufmRest/app/tokens`` (answer ``{access_token, revoked, issued_at, expires_in,
  username}``), listed by ``GET``, revoked by ``POST /ufmRest/app/tokens/revoke`` (multipart
  field ``token``; 200, or 404 for an unknown token); only the System_Admin role may create
  tokens. ``/ufmRestV2`` (session cookie from ``POST /dologin``) is not built here.
* What production clients send and expect, which pins the paths and shapes the guide leaves
  loose: Mellanox/ib-kubernetes ``pkg/sm/plugins/ufm/ufm.go`` (``GET /ufmRest/app/ufm_version``
  as a probe; adds with ``POST /ufmRest/resources/pkeys`` to a PKey it never created, and
  expects 200; removes with the deprecated ``POST /ufmRest/actions/remove_guids_from_pkey``
  ``{"pkey", "guids"}``; lists with ``GET /ufmRest/resources/pkeys/?guids_data=true``, GUIDs
  coming back bare); fabiendupont/nvidia-ufm-api ``pkg/ufmclient/partitions.go`` (``DELETE
  /ufmRest/resources/pkeys/{pkey}/guids/{g1,g2,...}``, ``DELETE
  /ufmRest/resources/pkeys/{pkey}``, a list without ``guids_data`` is a JSON list of keys, any
  status >= 400 carries an opaque body); an NVIDIA-written UFM simulator (Rust, "carbide UFM
  mock": the default partition is listed as ``"0x7fff": {"partition": "management"}``, a PKey
  made through the API is named ``api_pkey_0x<pkey>``, getting an unknown PKey answers 200
  ``{}``, version is ``{"ufm_release_version": ...}``); an NVIDIA Rust UFM client (PKeys
  written ``0x%x``; the rate limits UFM accepts).

Not documented anywhere found, so this server takes the **stricter** reading, marked
ASSUMED in the code: creating a PKey that exists is refused (400); an empty ``guids`` list is
refused; a GUID must fit in 64 bits; removing GUIDs from a PKey that does not exist is 404
(GUIDs that are not members are ignored); a successful write answers 200 with an empty body;
API refusals are JSON ``{"error": "..."}`` and web-server refusals (401, unknown route, 405,
414 for a request line over Apache's 8190-byte ``LimitRequestLine``; UFM's REST API sits
behind Apache httpd) are short HTML pages. The guide fixes no error body, so a client must
treat every body as opaque text.

Tests make it fail through the constructor (:class:`Fault`: answer a status, hang past the
client's timeout, drop the connection), or make it an older UFM that lacks the per-GUID DELETE
(``legacy_removal_status``). ``requests`` records every request that reached it.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import json
import secrets
import ssl
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

from tls_certs import TestCa
from ufm_state import (
    MONITORING_ONLY,
    ApiError,
    UfmFabric,
    UfmPKey,
    User,
    parse_guid,
    parse_guids,
    parse_pkey,
)

__all__ = ["MONITORING_ONLY", "Fault", "Request", "UfmPKey", "UfmServer", "User"]

MAX_REQUEST_LINE = 8190  # Apache httpd's LimitRequestLine default


@dataclass(frozen=True)
class Fault:
    """Make matching requests fail. ``kind``: ``status`` answers ``status`` with ``body``;
    ``hang`` answers nothing until ``hang_s`` has passed (or the server stops), then closes;
    ``drop`` closes the connection without an answer. ``method`` None matches any method;
    ``path`` is the request path (no query), or a prefix of it when it ends with ``*``;
    ``times`` None fails every match."""

    kind: Literal["status", "hang", "drop"]
    method: str | None = None
    path: str = "*"
    status: int = 500
    body: str = "Internal Server Error"
    times: int | None = None
    hang_s: float = 30.0


@dataclass
class _Armed:
    fault: Fault
    left: int
    """Matches left before the fault is spent; negative: never spent."""


def _matches(pattern: str, path: str) -> bool:
    return path.startswith(pattern[:-1]) if pattern.endswith("*") else path == pattern


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    """Path and query, as sent."""


class WebError(Exception):
    """A refusal of the web server in front of UFM (short HTML page)."""

    def __init__(self, status: int, title: str, text: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(title)
        self.status, self.title, self.text = status, title, text
        self.headers = dict(headers or {})


def _multipart_field(content_type: str, body: bytes, name: str) -> str | None:
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    for part in message.iter_parts() if message.is_multipart() else ():
        if part.get_param("name", header="content-disposition") == name:
            return str(part.get_content()).strip()
    return None


# ---- HTTP ----------------------------------------------------------------------------------

_NOT_FOUND = WebError(404, "Not Found", "The requested URL was not found on this server.")
_UNAUTHORIZED_TEXT = ("This server could not verify that you are authorized to access the "
                      "document requested. Either you supplied the wrong credentials (e.g., "
                      "bad password), or your browser doesn't understand how to supply the "
                      "credentials required.")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _HttpServer

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: tests read ``requests`` instead

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def _serve(self) -> None:
        ufm = self.server.ufm
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ufm.record(Request(self.command, self.path))
        fault = ufm.take_fault(self.command, urlsplit(self.path).path)
        if fault is not None:
            self._fail(fault)
            return
        try:
            if len(self.requestline) > MAX_REQUEST_LINE:
                raise WebError(414, "Request-URI Too Long", "The requested URL's length "
                               "exceeds the capacity limit for this server.")
            status, answer = ufm.route(self.command, self.path, self.headers, body)
        except ApiError as exc:
            self._send(exc.status, json.dumps({"error": str(exc)}).encode(),
                       "application/json")
        except WebError as exc:
            page = (f"<!DOCTYPE HTML PUBLIC \"-//IETF//DTD HTML 2.0//EN\">\n<html><head>\n"
                    f"<title>{exc.status} {exc.title}</title>\n</head><body>\n"
                    f"<h1>{exc.title}</h1>\n<p>{exc.text}</p>\n</body></html>\n")
            self._send(exc.status, page.encode(), "text/html; charset=iso-8859-1",
                       exc.headers)
        else:
            data = b"" if answer is None else json.dumps(answer).encode()
            self._send(status, data, "application/json")

    def _send(self, status: int, data: bytes, ctype: str,
              headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _fail(self, fault: Fault) -> None:
        if fault.kind == "status":
            self._send(fault.status, fault.body.encode(), "text/plain; charset=utf-8")
            return
        if fault.kind == "hang":
            self.server.stopping.wait(fault.hang_s)
        self.close_connection = True
        self.connection.close()


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, ufm: UfmServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.ufm = ufm
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ssl.SSLError | ConnectionError):
            return  # a client that refused our certificate, or hung up: not a server bug
        super().handle_error(request, client_address)


class UfmServer:
    """Run with ``with UfmServer(...) as ufm:``; ``ufm.url`` is its base URL."""

    def __init__(self, *, users: Iterable[User] = (User("admin", "123456"),),
                 pkeys: Iterable[UfmPKey] = (), faults: Iterable[Fault] = (),
                 tls: TestCa | None = None, version: str = "6.22.1-5",
                 legacy_removal_status: Literal[404, 405] | None = None) -> None:
        """``legacy_removal_status``: answer this to ``DELETE .../pkeys/{pkey}/guids/...``, as
        a UFM older than that call does (its clients use the deprecated action instead)."""
        self.users = {u.name: u for u in users}
        self.fabric = UfmFabric(pkeys)
        self.version = version
        self.legacy_removal_status = legacy_removal_status
        self.requests: list[Request] = []
        self._faults = [_Armed(f, -1 if f.times is None else f.times) for f in faults]
        self._lock = threading.Lock()
        self._tls = tls
        self._http = _HttpServer(self)
        self._thread: threading.Thread | None = None
        scheme = "https" if tls else "http"
        self.url = f"{scheme}://127.0.0.1:{self._http.server_address[1]}"

    def __enter__(self) -> UfmServer:
        if self._tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self._tls.server_cert, self._tls.server_key)
            self._http.socket = ctx.wrap_socket(self._http.socket, server_side=True,
                                                do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.stopping.set()
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # what tests look at
    def members(self) -> dict[int, dict[str, str]]:
        """PKey → bare GUID → membership, as the server holds them now."""
        with self.fabric.lock:
            return {p: {g: m.membership for g, m in e.members.items()}
                    for p, e in self.fabric.pkeys.items()}

    def writes(self) -> list[Request]:
        return [r for r in self.requests if r.method != "GET"]

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for armed in self._faults:
                fault = armed.fault
                if fault.method in (None, method) and _matches(fault.path, path) and armed.left:
                    armed.left -= 1
                    return fault
        return None

    # routing
    def route(self, method: str, target: str, headers: Any, body: bytes) -> tuple[int, Any]:
        url = urlsplit(target)
        query = parse_qs(url.query)
        if url.path.startswith("/ufmRestV3/"):
            user = self._token_user(headers)
            rest = url.path.removeprefix("/ufmRestV3/")
        elif url.path.startswith("/ufmRest/"):
            user = self._basic_user(headers)
            rest = url.path.removeprefix("/ufmRest/")
        else:
            raise _NOT_FOUND
        if method != "GET" and user.role == MONITORING_ONLY:
            raise ApiError(403, f"User {user.name} is not allowed to perform this action")
        ask = _Ask(method, rest.rstrip("/"), query, headers, body, user)
        methods = self._routes().get(_pattern(ask.parts))
        if methods is None:
            raise _NOT_FOUND
        if method not in methods:
            raise WebError(405, "Method Not Allowed",
                           f"The requested method {method} is not allowed for this URL.",
                           {"Allow": ", ".join(methods)})
        return methods[method](ask)

    def _routes(self) -> dict[str, dict[str, Callable[[_Ask], tuple[int, Any]]]]:
        fabric = self.fabric
        routes: dict[str, dict[str, Callable[[_Ask], tuple[int, Any]]]] = {
            "app/ufm_version": {"GET": lambda a: (200, {"ufm_release_version": self.version})},
            "app/tokens": {"GET": lambda a: (200, fabric.tokens_of(a.user.name)),
                           "POST": lambda a: (200, fabric.new_token(a.user))},
            "app/tokens/revoke": {"POST": _revoke(fabric)},
            "resources/pkeys/add": {"POST": lambda a: _write(fabric.create, a.json())},
            "resources/pkeys": {"GET": lambda a: (200, fabric.listing(a.query)),
                                "POST": lambda a: _write(fabric.add, a.json())},
            "resources/pkeys/*": {
                "GET": lambda a: (200, fabric.one(parse_pkey(a.parts[2]), a.query)),
                "DELETE": lambda a: _write(fabric.delete, parse_pkey(a.parts[2]))},
            "resources/pkeys/*/guids/*": {
                "DELETE": lambda a: _write(fabric.remove, parse_pkey(a.parts[2]),
                                           [parse_guid(g) for g in a.parts[4].split(",")])},
            "actions/remove_guids_from_pkey": {
                "POST": lambda a: _write(fabric.remove, parse_pkey(a.json().get("pkey")),
                                         parse_guids(a.json()))},
        }
        if self.legacy_removal_status == 404:
            del routes["resources/pkeys/*/guids/*"]
        elif self.legacy_removal_status == 405:
            routes["resources/pkeys/*/guids/*"] = {}
        return routes

    def _basic_user(self, headers: Any) -> User:
        scheme, _, value = str(headers.get("Authorization", "")).partition(" ")
        try:
            name, _, password = base64.b64decode(value, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            name, password = "", ""
        user = self.users.get(name)
        if scheme != "Basic" or user is None or not secrets.compare_digest(user.password,
                                                                           password):
            raise WebError(401, "Unauthorized", _UNAUTHORIZED_TEXT,
                           {"WWW-Authenticate": 'Basic realm="UFM"'})
        return user

    def _token_user(self, headers: Any) -> User:
        scheme, _, value = str(headers.get("Authorization", "")).partition(" ")
        name = self.fabric.token_user(value) if scheme == "Basic" else None
        if name is None or name not in self.users:
            raise WebError(401, "Unauthorized", _UNAUTHORIZED_TEXT)
        return self.users[name]


@dataclass(frozen=True)
class _Ask:
    """One authenticated request, as the routes see it."""

    method: str
    rest: str
    query: Mapping[str, list[str]]
    headers: Any
    body: bytes
    user: User

    @property
    def parts(self) -> list[str]:
        return self.rest.split("/")

    def json(self) -> dict[str, Any]:
        return _json(self.body)


def _pattern(parts: list[str]) -> str:
    """``resources/pkeys/0xa01/guids/a,b`` → ``resources/pkeys/*/guids/*``."""
    if parts[:2] == ["resources", "pkeys"] and len(parts) in (3, 5) and parts[2] != "add":
        return "/".join("*" if i in (2, 4) else p for i, p in enumerate(parts))
    return "/".join(parts)


def _write(change: Callable[..., None], *args: Any) -> tuple[int, Any]:
    change(*args)
    return 200, None  # ASSUMED: a successful write answers 200 with an empty body


def _revoke(fabric: UfmFabric) -> Callable[[_Ask], tuple[int, Any]]:
    def revoke(ask: _Ask) -> tuple[int, Any]:
        value = _multipart_field(ask.headers.get("Content-Type", ""), ask.body, "token")
        if value is None:
            raise ApiError(400, "token is a required parameter")
        fabric.revoke(value)
        return 200, None
    return revoke


def _json(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"null")
    except ValueError as exc:
        raise ApiError(400, f"Request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return data
