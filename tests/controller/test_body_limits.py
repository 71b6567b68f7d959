"""What a request may send before the controller reads it, on a real ``vfkeeper serve``
(uvicorn, loopback): a request without a usable token is answered 401 before its body is read,
a body over ``--max-body-bytes`` is 413 (at once when its length is declared, as soon as the
count passes the limit when it is chunked), and a big host's inventory still fits the default.

The "before it is read" facts are shown with a raw socket: the client sends the headers and a
small part of the body, then waits for the answer; a server that reads the whole body first
never answers (the socket's timeout then fails the test: a guard against hanging, not a
measurement)."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from servers import controller_process
from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.settings import DEFAULT_MAX_BODY_BYTES, ControllerSettings
from vfkeeper.sim import HostSpec, PfSpec, build_tree
from vfkeeper.store import migrate
from vfkeeper.store.database import Database

LIMIT = 65_536
FIFTY_MB = 50_000_000
HANG_GUARD_S = 60.0
PREFIX = b'{"hostname": "h1", "devices": [' + b" " * 4000  # what the client sends of 50 MB


@dataclass
class Server:
    base: str
    admin: str
    agent: str


def _serve(tmp: Path, *args: str) -> Iterator[Server]:
    url = f"sqlite:///{tmp / 'vfkeeper.sqlite'}"
    db = Database(url)
    migrate.upgrade(db.engine)
    with db.write() as s:
        admin, agent = create_token(s, "admin", "limits"), create_token(s, "agent:h1", "limits")
    db.dispose()
    with controller_process(url, tmp / "serve.log", args=args) as base:
        yield Server(base, admin, agent)


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A controller whose bodies may have at most :data:`LIMIT` bytes."""
    yield from _serve(tmp_path_factory.mktemp("limited"), "--max-body-bytes", str(LIMIT))


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A controller with the default limit."""
    yield from _serve(tmp_path_factory.mktemp("default"))


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, Any]:
        body = json.loads(self.body)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
        return body["error"]  # type: ignore[no-any-return]


def _answer_to(base: str, head: list[str], sent: bytes) -> Answer:
    """Send the request line and headers ``head`` and the bytes ``sent`` (however much the
    headers announce), then read the server's answer."""
    where = urlsplit(base)
    with socket.create_connection((where.hostname, where.port), timeout=HANG_GUARD_S) as sock:
        sock.sendall("\r\n".join([*head, "Host: vfkeeper", "", ""]).encode() + sent)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, f"the server closed the connection without answering: {data!r}"
            data += chunk
        top, _, body = data.partition(b"\r\n\r\n")
        status_line, *lines = top.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines)}
        while len(body) < int(headers.get("content-length", "0")):
            chunk = sock.recv(65536)
            assert chunk
            body += chunk
    return Answer(int(status_line.split()[1]), headers, body)


def _put(path: str, token: str | None, *framing: str) -> list[str]:
    auth = [f"Authorization: Bearer {token}"] if token else []
    return [f"PUT {path} HTTP/1.1", "Content-Type: application/json", *auth, *framing]


@pytest.mark.parametrize("token", [None, "vfk_unknown", "Basic dXNlcg=="])
def test_a_50_mb_body_without_a_usable_token_is_refused_before_it_is_read(
    default: Server, token: str | None
) -> None:
    head = _put("/v1/hosts/h1/inventory", None, f"Content-Length: {FIFTY_MB}")
    if token:
        head.insert(2, f"Authorization: {token if ' ' in token else 'Bearer ' + token}")
    answer = _answer_to(default.base, head, PREFIX)  # 4 kB of the 50 MB announced
    assert answer.status == 401
    assert answer.error()["code"] == "unauthenticated"
    assert answer.headers["connection"] == "close"  # the rest of the body is not read


def test_a_chunked_body_without_a_token_is_refused_before_it_is_read(default: Server) -> None:
    chunk = b"%x\r\n%s\r\n" % (len(PREFIX), PREFIX)  # one chunk, and no last one
    answer = _answer_to(default.base, _put("/v1/hosts/h1/inventory", None,
                                           "Transfer-Encoding: chunked"), chunk)
    assert answer.status == 401 and answer.error()["code"] == "unauthenticated"


def test_a_declared_length_over_the_limit_is_a_413_at_once(limited: Server) -> None:
    answer = _answer_to(limited.base, _put("/v1/hosts/h1/inventory", limited.agent,
                                           f"Content-Length: {FIFTY_MB}"), PREFIX)
    assert answer.status == 413
    error = answer.error()
    assert error["code"] == "body_too_large"
    assert error["details"] == {"limit_bytes": LIMIT, "declared_bytes": FIFTY_MB}
    assert "--max-body-bytes" in error["message"]
    assert answer.headers["connection"] == "close"


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(limited: Server) -> None:
    piece = b"x" * 16_384
    sent = b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(LIMIT // len(piece) + 1))
    answer = _answer_to(limited.base, _put("/v1/hosts/h1/inventory", limited.agent,
                                           "Transfer-Encoding: chunked"), sent)  # never ends
    assert answer.status == 413
    assert answer.error()["details"] == {"limit_bytes": LIMIT}


def test_a_body_within_the_limit_still_reaches_the_route(limited: Server) -> None:
    with httpx.Client(base_url=limited.base, timeout=60,
                      headers={"Authorization": f"Bearer {limited.admin}"}) as api:
        small = api.put("/v1/device-specs", json={"entries": [
            {"vendor_id": "15b3", "physical_network": "physnet1"}]})
        assert small.status_code == 200, small.text
        chunked = api.put("/v1/device-specs", content=iter([b'{"entries": ', b"[]}"]),
                          headers={"Content-Type": "application/json"})
        assert chunked.status_code == 200, chunked.text
        big = api.put("/v1/hosts/h1/inventory",
                      json={"hostname": "h1", "devices": [], "pad": "x" * LIMIT})
        assert big.status_code == 413  # httpx declares the length
        assert api.get("/v1/hosts").status_code == 200  # a new connection, the same client


def test_a_big_hosts_inventory_fits_the_default_limit(default: Server, tmp_path: Path) -> None:
    """16 ConnectX-5 PFs of 64 VFs each (1,040 functions, the discovery benchmark's middle
    host): about 1 MB of JSON, far below the default."""
    spec = HostSpec(hostname="h1", extra_devices=(), pfs=tuple(
        PfSpec("cx5-ib" if k % 2 == 0 else "cx5-eth", vfs=64, numa_node=k % 2, pkey_table=128)
        for k in range(16)))
    build_tree(spec, tmp_path)
    document = discover(SysfsReader(tmp_path), hostname="h1").model_dump(mode="json")
    size = len(json.dumps(document, separators=(",", ":")))
    assert 500_000 < size < DEFAULT_MAX_BODY_BYTES / 8
    with httpx.Client(base_url=default.base, timeout=120,
                      headers={"Authorization": f"Bearer {default.agent}"}) as agent:
        resp = agent.put("/v1/hosts/h1/inventory", json=document)
    assert resp.status_code == 200, resp.text
    assert resp.json()["devices"] == 1040


# --- in-process: which requests the guard looks at -------------------------------------------


@contextmanager
def _app_client(db_url: str, transport: Callable[[Any], Any],
                **settings: Any) -> Iterator[httpx.Client]:
    app = create_app(ControllerSettings(db_url=db_url, max_body_bytes=LIMIT, **settings))
    try:
        with httpx.Client(transport=transport(app), base_url="http://vfkeeper") as client:
            yield client
    finally:
        app.state.ctx.db.dispose()


def test_without_authentication_only_the_size_is_limited(
    migrated_db_url: str, asgi_transport: Callable[[Any], Any]
) -> None:
    with _app_client(migrated_db_url, asgi_transport, auth=False) as anyone:
        assert anyone.put("/v1/device-specs", json={"entries": []}).status_code == 200
        too_big = anyone.put("/v1/device-specs", json={"entries": [], "x": "y" * LIMIT})
        assert too_big.status_code == 413 and too_big.headers["connection"] == "close"


def test_requests_the_routes_answer_without_a_token_are_left_to_them(
    migrated_db_url: str, asgi_transport: Callable[[Any], Any]
) -> None:
    with _app_client(migrated_db_url, asgi_transport) as nobody:
        assert nobody.put("/v1/no-such-route", json={}).status_code == 404  # not 401
        assert nobody.post("/v1/hosts", json={}).status_code == 405
        assert nobody.get("/openapi.json").status_code == 200
        unauthenticated = nobody.get("/v1/hosts")  # no body: the route's own check
        assert unauthenticated.status_code == 401
        assert "connection" not in unauthenticated.headers
