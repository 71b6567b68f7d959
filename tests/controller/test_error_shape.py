"""Pins the one error envelope, whatever produced the error."""

from __future__ import annotations

import socket
from collections.abc import Callable

import anyio
import httpx
from fastapi import FastAPI

from vfkeeper.controller.app import create_app
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.demo.server import RunningController


def _assert_envelope(resp: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    return body["error"]  # type: ignore[no-any-return]


def test_unknown_route_is_a_404_envelope(api: httpx.Client) -> None:
    err = _assert_envelope(api.get("/v1/no-such-thing"), 404, "not_found")
    assert "/v1/no-such-thing" in str(err["message"])


def test_unknown_resource_is_a_404_envelope_naming_it(api: httpx.Client) -> None:
    err = _assert_envelope(api.get("/v1/hosts/ghost"), 404, "not_found")
    assert err["details"] == {"kind": "host", "key": "ghost"}


def test_fastapi_validation_errors_become_422_envelopes(api: httpx.Client) -> None:
    err = _assert_envelope(api.patch("/v1/hosts/h1", json={"enabled": "sometimes"}), 422,
                           "invalid_input")
    errors = err["details"]["errors"]  # type: ignore[index]
    assert errors[0]["loc"] == ["body", "enabled"]


def test_a_body_that_is_not_json_is_a_400_envelope(api: httpx.Client) -> None:
    resp = api.patch("/v1/hosts/h1", content=b"{not json",
                     headers={"content-type": "application/json"})
    _assert_envelope(resp, 400, "malformed_request")


def test_wrong_method_is_a_405_envelope(api: httpx.Client) -> None:
    _assert_envelope(api.delete("/v1/hosts"), 405, "method_not_allowed")


def test_missing_token_is_a_401_envelope_saying_how_to_get_one(
    client: Callable[[str | None], httpx.Client],
) -> None:
    err = _assert_envelope(client(None).get("/v1/hosts"), 401, "unauthenticated")
    assert "vfkeeper token create" in str(err["message"])


def test_unknown_token_is_a_401(client: Callable[[str | None], httpx.Client]) -> None:
    c = client(None)
    _assert_envelope(c.get("/v1/hosts", headers={"Authorization": "Bearer vfk_nope"}), 401,
                     "unauthenticated")


def test_a_role_that_may_not_is_a_403_envelope(
    client: Callable[[str | None], httpx.Client],
) -> None:
    err = _assert_envelope(client("viewer").patch("/v1/hosts/h1", json={"enabled": False}), 403,
                           "forbidden")
    assert err["details"]["role"] == "viewer"  # type: ignore[index]


def test_known_errors_are_answered_not_re_raised_to_the_server(app: object) -> None:
    """A known error is answered by the exception middleware and goes no further: a server
    (uvicorn) must not see it, or it logs a crash and drops the keep-alive connection."""
    async def get(path: str) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)  # type: ignore[arg-type]
        async with httpx.AsyncClient(transport=transport, base_url="http://vfkeeper") as c:
            return await c.get(path, headers={"Authorization": "Bearer nope"})

    assert anyio.run(get, "/v1/hosts/ghost").status_code == 401
    assert anyio.run(get, "/v1/no-such-thing").status_code == 404


def _boom() -> None:
    raise RuntimeError("a bug with a secret inside")


def test_an_unexpected_error_is_a_500_envelope_that_closes_the_connection(app: FastAPI) -> None:
    """Answered inside the app (the server never sees the exception), without the bug's words,
    and with ``Connection: close``."""
    app.add_api_route("/v1/test-boom", _boom)

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
        async with httpx.AsyncClient(transport=transport, base_url="http://vfkeeper") as c:
            return await c.get("/v1/test-boom")

    resp = anyio.run(get)
    err = _assert_envelope(resp, 500, "internal_error")
    assert "secret" not in resp.text and "traceback" in str(err["message"])
    assert resp.headers["connection"] == "close"


def test_after_a_500_the_next_request_on_the_same_connection_pool_succeeds(
    migrated_db_url: str,
) -> None:
    """A real uvicorn and one keep-alive client: the 500 says ``Connection: close`` and the
    server closes that connection after it, so the client's next request goes out on a new one.
    (Without the header the client reused a connection uvicorn was dropping; whether it then got
    "Connection reset by peer" depended on timing, which the header takes out of play.)"""
    app = create_app(ControllerSettings(db_url=migrated_db_url, auth=False))
    app.add_api_route("/v1/test-boom", _boom)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = RunningController(app, sock)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as c:
            assert c.get("/v1/hosts").status_code == 200
            for _ in range(3):
                boom = c.get("/v1/test-boom")
                assert boom.status_code == 500 and boom.headers["connection"] == "close"
                assert c.get("/v1/hosts").status_code == 200
    finally:
        server.stop()
