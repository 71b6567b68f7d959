"""Pins the one error envelope, whatever produced the error."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import httpx


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
