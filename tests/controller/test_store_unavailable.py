"""The database going away: a real ``vfkeeper serve`` (uvicorn) on a PostgreSQL server of this
module's own, which the tests stop and start again, and an SQLite file that cannot be opened.
Every request is then answered 503 ``store_unavailable`` with ``Retry-After`` (for a known
token, an unknown one, a request with a body), logged as one short line instead of a traceback
per request; every 5xx closes its connection cleanly, so one keep-alive client keeps working;
and the same controller serves again once the database is back."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

import servers
from servers import PostgresCluster, controller_process
from vfkeeper.agent.controller_client import ControllerClient, ControllerStoreUnavailableError
from vfkeeper.cli.main import build_app
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.store import migrate
from vfkeeper.store.database import Database

NETWORK = {"name": "n1", "physical_network": "p", "segmentation": {"type": "vlan", "id": 7}}


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresCluster]:
    """A cluster these tests may stop (the suite's own is shared by every other test)."""
    try:
        with servers.postgres_cluster(max_connections=50) as cluster:
            yield cluster
    except servers.ServerUnavailable as exc:
        pytest.skip(str(exc))


@dataclass
class Served:
    base: str
    admin: str
    agent: str
    log: Path
    postgres: PostgresCluster


@pytest.fixture
def served(own_postgres: PostgresCluster, tmp_path: Path) -> Iterator[Served]:
    url = own_postgres.new_database()
    db = Database(url)
    migrate.upgrade(db.engine)
    with db.write() as s:
        admin, agent = create_token(s, "admin", "outage"), create_token(s, "agent:h1", "outage")
    db.dispose()
    log = tmp_path / "serve.log"
    try:
        with controller_process(url, log) as base:
            yield Served(base, admin, agent, log, own_postgres)
    finally:
        with suppress(subprocess.CalledProcessError):  # running already, unless a test failed
            own_postgres.start()


def _unavailable(resp: httpx.Response, backend: str = "PostgreSQL") -> dict[str, object]:
    assert resp.status_code == 503, resp.text
    assert resp.headers["connection"] == "close"
    assert int(resp.headers["retry-after"]) > 0
    body = resp.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == "store_unavailable"
    assert "database" in body["error"]["message"]
    assert backend in body["error"]["message"]  # what to check
    return body["error"]  # type: ignore[no-any-return]


@pytest.mark.postgres
def test_a_database_outage_is_a_503_that_says_so_and_the_same_client_recovers(
    served: Served,
) -> None:
    auth = {"Authorization": f"Bearer {served.admin}"}
    with httpx.Client(base_url=served.base, headers=auth, timeout=60) as api:
        assert api.get("/v1/hosts").status_code == 200  # the token is now cached
        served.postgres.stop()

        _unavailable(api.get("/v1/hosts"))  # a known token: the route's own read fails
        # the next requests on the same keep-alive client are answered too (each 5xx closed
        # its connection cleanly instead of leaving the client a dead one)
        _unavailable(api.get("/v1/hosts", headers={"Authorization": "Bearer vfk_unknown"}))
        _unavailable(api.post("/v1/networks", json=NETWORK,
                              headers={"Authorization": "Bearer vfk_unknown"}))
        _unavailable(api.post("/v1/networks", json=NETWORK))
        with httpx.Client(base_url=served.base, timeout=60,
                          headers={"Authorization": f"Bearer {served.agent}"}) as agent:
            _unavailable(agent.post("/v1/hosts/h1/heartbeat"))  # a token never seen yet

        served.postgres.start()
        assert api.get("/v1/hosts").status_code == 200  # the same controller, same client
        assert api.post("/v1/networks", json=NETWORK
                        ).status_code == 201

    log = served.log.read_text(errors="replace")
    assert "Traceback" not in log
    warnings = [line for line in log.splitlines() if "database does not answer" in line]
    assert warnings and all(len(line) < 600 for line in warnings)
    assert len(warnings) < 5  # once for the outage, not once per request (5 were refused)


def test_an_sqlite_file_that_cannot_be_opened_is_a_503_until_it_is_back(
    tmp_path: Path, asgi_transport: Callable[[Any], Any],
) -> None:
    home = tmp_path / "db"
    home.mkdir()
    app = create_app(ControllerSettings(db_url=f"sqlite:///{home / 'vfkeeper.sqlite'}"))
    db = app.state.ctx.db
    with db.write() as s:
        token = create_token(s, "admin", "outage")
    try:
        with httpx.Client(transport=asgi_transport(app), base_url="http://vfkeeper",
                          headers={"Authorization": f"Bearer {token}"}) as api:
            assert api.get("/v1/hosts").status_code == 200
            db.dispose()  # no open connection left, as after a restart
            home.rename(tmp_path / "moved")
            error = _unavailable(api.get("/v1/hosts"), backend="SQLite")
            assert error["details"] == {"backend": "sqlite",
                                        "cause": "unable to open database file",
                                        "retry_after_s": 5}
            _unavailable(api.get("/v1/hosts", headers={"Authorization": "Bearer vfk_unknown"}),
                         backend="SQLite")
            _clients_say_so(app, token, asgi_transport)
            (tmp_path / "moved").rename(home)
            assert api.get("/v1/hosts").status_code == 200
    finally:
        db.dispose()


def _clients_say_so(app: FastAPI, token: str, transport: Callable[[Any], Any]) -> None:
    """What an agent logs and what the CLI prints for the 503."""
    agent = ControllerClient("http://vfkeeper", token, "h1", transport(app))
    with pytest.raises(ControllerStoreUnavailableError,
                       match="database is unavailable, retrying"):
        agent.heartbeat()
    agent.close()
    result = CliRunner().invoke(build_app(), ["host", "list", "--controller", "http://vfkeeper",
                                              "--token", token],
                                obj={"transport": transport(app)})
    assert result.exit_code == 1
    assert "Error: the controller's database does not answer" in result.output
    assert "Traceback" not in result.output
