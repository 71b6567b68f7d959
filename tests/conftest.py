"""Fixtures shared by the whole suite.

PostgreSQL: the suite starts one throwaway cluster for the session (``initdb`` + ``pg_ctl`` as
the ``postgres`` user, on a free loopback port, in a temp dir) and stops it at the end. Each test
that asks for it gets a fresh database. When the server binaries are absent the PostgreSQL
variants skip, saying how to get them.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from sqlalchemy import create_engine, text

PG_BIN = Path(os.environ.get("VFKEEPER_PG_BIN", "/usr/lib/postgresql/15/bin"))
_db_counter = itertools.count()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_postgres(*argv: str) -> subprocess.CompletedProcess[str]:
    cmd = list(argv) if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--", *argv]
    return subprocess.run(cmd, check=True, capture_output=True, text=True)


class PostgresCluster:
    """A running throwaway cluster; ``new_database()`` gives each test its own database."""

    def __init__(self, port: int) -> None:
        self.port = port

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://test@127.0.0.1:{self.port}/{database}"

    def new_database(self, template: str | None = None) -> str:
        name = f"t{os.getpid()}_{next(_db_counter)}"
        engine = create_engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        clause = f' TEMPLATE "{template}"' if template else ""
        with engine.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"{clause}'))
        engine.dispose()
        return self.url(name)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(
            f"PostgreSQL server binaries not found in {PG_BIN}: install the Debian package "
            "'postgresql' (./dev.sh setup does), or set VFKEEPER_PG_BIN"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root and runuser is missing: cannot start PostgreSQL as postgres")
    workdir = Path(tempfile.mkdtemp(prefix="vfkeeper-pg-"))
    data = workdir / "data"
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres", "postgres")
    port = _free_port()
    _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "test", "--auth=trust", "--no-sync")
    opts = f"-k {data} -p {port} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(data / "log"),
                 "-w", "start")
    try:
        yield PostgresCluster(port)
    finally:
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(workdir, ignore_errors=True)


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
