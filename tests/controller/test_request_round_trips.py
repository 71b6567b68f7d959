"""What a request costs the database, and that the savings keep behaviour: a boot's answer
comes from its claim, a verified token is cached for a bounded time, pooled PostgreSQL
connections the server closed are replaced without a ping, drawn MACs are not looked up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import create_engine, delete, event, text
from sqlalchemy.pool import NullPool

from vfkeeper.controller.addresses import AddressPools
from vfkeeper.controller.auth import Auth, create_token, hash_token
from vfkeeper.store.models import Token


@pytest.fixture
def cluster(vlan_cluster: httpx.Client) -> httpx.Client:
    return vlan_cluster


def _port(api: httpx.Client, **extra: Any) -> str:
    return str(api.post("/v1/ports", json={"network": "n1", "vnic_type": "direct", **extra}
                        ).json()["id"])


@pytest.fixture
def begins(app: FastAPI) -> Iterator[list[object]]:
    """Every transaction begun on the app's engine while the test runs."""
    seen: list[object] = []
    listener = seen.append
    event.listen(app.state.ctx.db.engine, "begin", listener)
    yield seen
    event.remove(app.state.ctx.db.engine, "begin", listener)


def test_post_boot_is_one_transaction_and_answers_what_get_shows(
    cluster: httpx.Client, begins: list[object]
) -> None:
    assert cluster.post("/v1/instances", json={"name": "warm", "ports": [_port(cluster)]}
                        ).status_code == 201  # the cache has loaded every host
    port = _port(cluster)
    begins.clear()
    booted = cluster.post("/v1/instances", json={"name": "vm", "ports": [port]})
    assert booted.status_code == 201
    assert len(begins) == 1  # the claim; no token look-up, no read-back

    shown = cluster.get(f"/v1/instances/{booted.json()['id']}").json()
    answer = booted.json()
    assert {k: v for k, v in answer.items() if k != "created_at"} == {
        k: v for k, v in shown.items() if k != "created_at"}
    assert answer["created_at"][:19] == shown["created_at"][:19]  # SQLite keeps no zone
    assert shown["ports"] == [port] and len(shown["allocations"]) == 1


def make_token(app: FastAPI, role: str) -> str:
    with app.state.ctx.db.write() as s:
        return create_token(s, role, f"test {role}")


class Ticks:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_deleted_token_works_until_the_ttl_runs_out(app: FastAPI) -> None:
    db = app.state.ctx.db
    ticks = Ticks()
    auth = Auth(db, enabled=True, cache_ttl_s=10.0, monotonic=ticks)
    token = make_token(app, "viewer")
    assert auth.principal(f"Bearer {token}").role == "viewer"
    with db.write() as s:
        s.execute(delete(Token).where(Token.token_hash == hash_token(token)))

    ticks.now += 9.9
    assert auth.principal(f"Bearer {token}").role == "viewer"  # trusted from the cache
    ticks.now += 0.1
    with pytest.raises(Exception, match="not known"):
        auth.principal(f"Bearer {token}")


def test_unknown_tokens_are_not_cached_and_ttl_zero_looks_up_every_time(app: FastAPI) -> None:
    db = app.state.ctx.db
    with pytest.raises(Exception, match="not known"):
        Auth(db, enabled=True).principal("Bearer vfk_not_yet")
    with db.write() as s:  # the same token, created after it was refused once
        s.add(Token(name="late", role="admin", token_hash=hash_token("vfk_not_yet")))
    auth = Auth(db, enabled=True, cache_ttl_s=0)
    assert auth.principal("Bearer vfk_not_yet").role == "admin"
    with db.write() as s:
        s.execute(delete(Token))
    with pytest.raises(Exception, match="not known"):
        auth.principal("Bearer vfk_not_yet")


def test_a_served_token_is_looked_up_once(
    client: Callable[[str | None], httpx.Client], begins: list[object]
) -> None:
    with client("viewer") as viewer:
        begins.clear()
        assert viewer.get("/v1/hosts").status_code == 200
        first = len(begins)
        begins.clear()
        assert viewer.get("/v1/hosts").status_code == 200
        assert len(begins) == first - 1  # the same request without the token's transaction


@pytest.mark.postgres
def test_connections_the_server_closed_are_replaced_before_the_next_request(
    cluster: httpx.Client, app: FastAPI
) -> None:
    db = app.state.ctx.db
    if db.is_sqlite:
        pytest.skip("PostgreSQL only")
    # fill the pool with several idle connections, then end them all as a restart does
    sessions = [db.read().__enter__() for _ in range(3)]
    for s in sessions:
        s.execute(text("SELECT 1"))
    for s in sessions:
        s.close()
    assert db.engine.pool.checkedin() >= 3
    admin = create_engine(db.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        ended = conn.execute(text(
            "SELECT count(pg_terminate_backend(pid, 5000)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    admin.dispose()
    assert ended and ended >= 3

    for _ in range(4):  # every pooled connection is dead; every request still succeeds
        assert cluster.get("/v1/hosts").status_code == 200
    booted = cluster.post("/v1/instances", json={"name": "vm", "ports": [_port(cluster)]})
    assert booted.status_code == 201


def _candidates(monkeypatch: pytest.MonkeyPatch, values: list[str]) -> list[str]:
    drawn: list[str] = []

    def next_mac(_self: AddressPools) -> str:
        drawn.append(values[min(len(drawn), len(values) - 1)])
        return drawn[-1]

    monkeypatch.setattr(AddressPools, "_mac_candidate", next_mac)
    return drawn


def test_a_drawn_mac_that_is_taken_is_refused_by_the_database_and_redrawn(
    cluster: httpx.Client, monkeypatch: pytest.MonkeyPatch, begins: list[object]
) -> None:
    holder = _port(cluster, mac="02:76:66:00:00:01")
    port = _port(cluster)
    drawn = _candidates(monkeypatch, ["02:76:66:00:00:01", "02:76:66:00:00:02"])
    booted = cluster.post("/v1/instances", json={"name": "vm", "ports": [port]})
    assert booted.status_code == 201
    assert drawn == ["02:76:66:00:00:01", "02:76:66:00:00:02"]
    macs = {p["id"]: p["mac"] for p in cluster.get("/v1/ports").json()}
    assert macs == {holder: "02:76:66:00:00:01", port: "02:76:66:00:00:02"}


def test_a_full_mac_pool_is_still_409_address_pool_exhausted(
    cluster: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    _port(cluster, mac="02:76:66:00:00:01")
    port = _port(cluster)
    _candidates(monkeypatch, ["02:76:66:00:00:01"])
    refused = cluster.post("/v1/instances", json={"name": "vm", "ports": [port]})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "address_pool_exhausted"
    assert cluster.get(f"/v1/ports/{port}").json()["instance_id"] is None
