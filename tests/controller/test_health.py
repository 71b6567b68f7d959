"""``/healthz`` and ``/readyz`` for load balancers and process supervisors, and the API's
documentation pages, which must not make a browser fetch anything from the internet."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from vfkeeper.controller.app import create_app
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.store import migrate


def _get(app: FastAPI, transport: Callable[[Any], Any], path: str) -> httpx.Response:
    with httpx.Client(transport=transport(app), base_url="http://vfkeeper") as c:
        return c.get(path)  # no token


def test_healthz_and_readyz_answer_without_a_token(app: FastAPI,
                                                   asgi_transport: Callable[[Any], Any]) -> None:
    assert _get(app, asgi_transport, "/v1/hosts").status_code == 401  # auth is on
    health = _get(app, asgi_transport, "/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = _get(app, asgi_transport, "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "schema_revision": migrate.head()}


def test_readyz_is_503_while_the_schema_is_behind(app: FastAPI,
                                                  asgi_transport: Callable[[Any], Any]) -> None:
    engine = app.state.ctx.db.engine
    older = migrate.revisions()[-2]
    migrate.downgrade(engine, older)
    ready = _get(app, asgi_transport, "/readyz")
    assert ready.status_code == 503
    error = ready.json()["error"]
    assert error["code"] == "not_ready"
    assert older in error["message"] and migrate.head() in error["message"]
    assert _get(app, asgi_transport, "/healthz").status_code == 200  # the process is up
    migrate.upgrade(engine)
    assert _get(app, asgi_transport, "/readyz").status_code == 200


def test_readyz_is_503_when_the_database_does_not_answer(
    tmp_path: Path, asgi_transport: Callable[[Any], Any]
) -> None:
    path = tmp_path / "c.sqlite"
    app = create_app(ControllerSettings(db_url=f"sqlite:///{path}"))
    app.state.ctx.db.dispose()
    for leftover in tmp_path.glob("c.sqlite*"):
        leftover.unlink()
    path.mkdir()  # SQLite cannot open a directory
    try:
        ready = _get(app, asgi_transport, "/readyz")
        assert ready.status_code == 503
        assert ready.json()["error"]["code"] == "not_ready"
        assert "database" in ready.json()["error"]["message"]
    finally:
        app.state.ctx.db.dispose()
        shutil.rmtree(path)


_EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


def test_no_page_the_controller_serves_by_default_loads_anything_from_elsewhere(
    app: FastAPI, asgi_transport: Callable[[Any], Any]
) -> None:
    """FastAPI's /docs and /redoc pages load their scripts from a CDN: they are off unless
    asked for (``serve --api-docs``)."""
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        resp = _get(app, asgi_transport, path)
        assert resp.status_code == 404, path
        assert not _EXTERNAL.search(resp.text)
    assert _get(app, asgi_transport, "/openapi.json").status_code == 200


def test_api_docs_on_serve_the_pages_that_need_a_cdn(
    migrated_db_url: str, asgi_transport: Callable[[Any], Any]
) -> None:
    app = create_app(ControllerSettings(db_url=migrated_db_url, api_docs=True))
    try:
        for path in ("/docs", "/redoc"):
            page = _get(app, asgi_transport, path)
            assert page.status_code == 200 and _EXTERNAL.search(page.text), path
    finally:
        app.state.ctx.db.dispose()
