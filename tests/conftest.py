"""Fixtures shared by the whole suite.

PostgreSQL: the suite starts one throwaway cluster for the session (``initdb`` + ``pg_ctl`` as
the ``postgres`` user, on a free loopback port, in a temp dir; ``tests/servers.py``, which the
benchmarks share) and stops it at the end. Each test
that asks for it gets a fresh database. When the server binaries are absent the PostgreSQL
variants skip, saying how to get them.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import servers
from manual_clock import ManualClock
from servers import PostgresCluster


@pytest.fixture(autouse=True)
def _logger_levels_restored() -> Iterator[None]:
    """The agent's log set-up (run in-process by CLI tests) gives loggers levels of their own;
    put them back so that a later test's log capture sees what it expects."""
    names = ("", "vfkeeper", "httpx", "httpcore")
    before = {name: logging.getLogger(name).level for name in names}
    yield
    for name, level in before.items():
        logging.getLogger(name).setLevel(level)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    try:
        with servers.postgres_cluster() as cluster:
            yield cluster
    except servers.ServerUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'vfkeeper.sqlite'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database()


class SyncASGITransport(httpx.BaseTransport):
    """httpx's ASGI transport, usable from a synchronous ``httpx.Client``: the API tests and
    the CLI tests drive the app in-process through it (no server, no ports)."""

    def __init__(self, app: Any) -> None:
        self._inner = httpx.ASGITransport(app=app, raise_app_exceptions=False)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def run() -> httpx.Response:
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=body)

        return anyio.run(run)


@pytest.fixture
def asgi_transport() -> type[SyncASGITransport]:
    """The class of the in-process transport: ``httpx.Client(transport=asgi_transport(app))``."""
    return SyncASGITransport


def _migrate(url: str) -> None:
    from vfkeeper.store import migrate
    from vfkeeper.store.database import Database

    db = Database(url)
    migrate.upgrade(db.engine)
    db.dispose()


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "head.sqlite"
    _migrate(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def _postgres_template(postgres_cluster: PostgresCluster) -> str:
    url = postgres_cluster.new_database()
    _migrate(url)
    return url.rsplit("/", 1)[1]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def migrated_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database already at the newest schema (copied from a template migrated once per
    session), once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "vfkeeper.sqlite"
        shutil.copyfile(request.getfixturevalue("_sqlite_template"), target)
        return f"sqlite:///{target}"
    cluster: PostgresCluster = request.getfixturevalue("postgres_cluster")
    return cluster.new_database(template=request.getfixturevalue("_postgres_template"))


@pytest.fixture
def clock() -> ManualClock:
    """A controller clock the test moves by hand (``clock.now += timedelta(...)``)."""
    return ManualClock()
