"""``vfkeeper token``: tokens are printed once, stored hashed, and work against the API."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from sqlalchemy import select
from typer.testing import CliRunner

from vfkeeper.cli.main import build_app
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import hash_token
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.store.database import Database
from vfkeeper.store.models import Token


def test_token_create_prints_a_token_whose_hash_only_is_stored(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    result = CliRunner().invoke(build_app(), ["token", "create", "--role", "viewer", "--db", url])
    assert result.exit_code == 0, result.output
    token = result.output.strip()
    db = Database(url)
    with db.read() as s:
        rows = s.scalars(select(Token)).all()
    assert [(t.role, t.token_hash) for t in rows] == [("viewer", hash_token(token))]
    assert all(token not in (t.token_hash, t.name) for t in rows)


def test_a_created_token_authenticates_against_the_api(tmp_path: Path, asgi_transport) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    token = CliRunner().invoke(
        build_app(), ["token", "create", "--role", "viewer", "--db", url]).output.strip()
    app = create_app(ControllerSettings(db_url=url))
    with httpx.Client(transport=asgi_transport(app), base_url="http://t") as c:
        assert c.get("/v1/hosts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/v1/hosts", headers={"Authorization": "Bearer vfk_x"}).status_code == 401


def test_an_unknown_role_is_a_usage_error_naming_the_roles(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    result = CliRunner().invoke(build_app(), ["token", "create", "--role", "root", "--db", url])
    assert result.exit_code == 2
    assert "admin, viewer or agent:<host>" in result.output


def test_token_list_never_shows_tokens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    runner = CliRunner()
    token = runner.invoke(build_app(), ["token", "create", "--role", "agent:h1", "--name", "h1",
                                        "--db", url]).output.strip()
    listed = runner.invoke(build_app(), ["token", "list", "--json", "--db", url])
    rows = json.loads(listed.output)
    assert [(r["role"], r["name"]) for r in rows] == [("agent:h1", "h1")]
    assert token not in listed.output


def _create(url: str, *args: str) -> str:
    result = CliRunner().invoke(build_app(), ["token", "create", *args, "--db", url])
    assert result.exit_code == 0, result.output
    return result.output.strip()


def test_token_list_prints_a_header_and_utc_times(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    _create(url, "--role", "viewer", "--name", "grafana")
    lines = CliRunner().invoke(build_app(), ["token", "list", "--db", url]).output.splitlines()
    assert lines[0].split() == ["ID", "NAME", "ROLE", "CREATED"]
    assert lines[1].split()[:3] == ["1", "grafana", "viewer"]
    assert lines[1].endswith("Z")
    listed = json.loads(CliRunner().invoke(build_app(), ["token", "list", "--json", "--db",
                                                         url]).output)
    assert listed[0]["created_at"].endswith("Z")


def test_a_revoked_token_no_longer_authenticates(tmp_path: Path, asgi_transport) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    keep = _create(url, "--role", "viewer", "--name", "keep")
    gone = _create(url, "--role", "viewer", "--name", "ci")
    app = create_app(ControllerSettings(db_url=url, token_cache_ttl_s=0))
    result = CliRunner().invoke(build_app(), ["token", "revoke", "ci", "--db", url])
    assert result.exit_code == 0, result.output
    assert "revoked token 2 (ci, role viewer)" in result.output
    with httpx.Client(transport=asgi_transport(app), base_url="http://t") as c:
        assert c.get("/v1/hosts", headers={"Authorization": f"Bearer {gone}"}).status_code == 401
        assert c.get("/v1/hosts", headers={"Authorization": f"Bearer {keep}"}).status_code == 200
    by_id = CliRunner().invoke(build_app(), ["token", "revoke", "1", "--db", url])
    assert by_id.exit_code == 0 and "revoked token 1 (keep" in by_id.output


def test_revoking_an_unknown_or_ambiguous_token_exits_1_and_changes_nothing(
    tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    _create(url, "--role", "agent:h1")
    _create(url, "--role", "agent:h1")
    unknown = CliRunner().invoke(build_app(), ["token", "revoke", "nope", "--db", url])
    assert unknown.exit_code == 1 and "no token has the id or name 'nope'" in unknown.stderr
    twice = CliRunner().invoke(build_app(), ["token", "revoke", "agent:h1", "--db", url])
    assert twice.exit_code == 1 and "2 tokens are named 'agent:h1' (ids 1, 2)" in twice.stderr
    listed = CliRunner().invoke(build_app(), ["token", "list", "--json", "--db", url]).output
    assert len(json.loads(listed)) == 2
