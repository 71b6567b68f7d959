"""``vfkeeper serve`` option handling (the server itself is exercised in-process by the API
tests)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from vfkeeper.cli.main import build_app
from vfkeeper.cli.serve import settings_from_options

_OK = {"db": "sqlite:///x.sqlite", "listen": "127.0.0.1:8470", "insecure_no_auth": False,
       "mac_prefix": "02:76:66", "guid_range": "0x1-0x2", "agent_timeout": 90.0,
       "weigher": "pack"}


def test_defaults_keep_authentication_on() -> None:
    assert settings_from_options(**_OK).auth is True  # type: ignore[arg-type]
    assert settings_from_options(**{**_OK, "insecure_no_auth": True}).auth is False  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("mac_prefix", "03:00:00", "multicast"),
        ("mac_prefix", "00:16:3e", "locally administered"),
        ("guid_range", "0x0-0x10", "includes 0 or all-ones"),
        ("guid_range", "0x10-0x1", "LOW <= HIGH"),
        ("listen", "8470", "HOST:PORT"),
        ("migration_domains", ["-oProxyCommand=x"], "DNS domain name"),
        ("max_body_bytes", 100, "greater than or equal to 1024"),
        ("migration_domains", ["exa mple.org"], "DNS domain name"),
    ],
)
def test_bad_settings_are_usage_errors_that_say_why(option: str, value: str, says: str) -> None:
    with pytest.raises(typer.BadParameter, match=says):
        settings_from_options(**{**_OK, option: value})  # type: ignore[arg-type]


def test_migration_domains_are_kept_in_one_spelling() -> None:
    settings = settings_from_options(**_OK, migration_domains=["Example.ORG.", "lab.test"])  # type: ignore[arg-type]
    assert settings.migration_domains == ("example.org", "lab.test")


def test_serve_is_documented_in_help() -> None:
    result = CliRunner().invoke(build_app(), ["serve", "--help"])
    assert result.exit_code == 0
    assert "--insecure-no-auth" in result.output and "--listen" in result.output


@pytest.mark.parametrize(("args", "docs"), [([], None), (["--api-docs"], "/docs")])
def test_the_api_docs_pages_are_served_only_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], docs: str | None
) -> None:
    served: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **_kw: served.append(app))
    result = CliRunner().invoke(build_app(), ["serve", "--db",
                                              f"sqlite:///{tmp_path / 'c.sqlite'}", *args])
    assert result.exit_code == 0, result.output
    assert served[0].docs_url == docs
    served[0].state.ctx.db.dispose()


@pytest.mark.parametrize("db", ["mysql://h/db", "http://[::1", ""])
def test_a_database_url_vfkeeper_cannot_use_is_a_usage_error(db: str) -> None:
    result = CliRunner().invoke(build_app(), ["serve", "--db", db])
    assert result.exit_code == 2
    assert "--db" in result.stderr and "sqlite:///PATH" in result.stderr


def test_a_database_that_cannot_be_opened_exits_1_naming_it(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'c.sqlite'}"
    result = CliRunner().invoke(build_app(), ["serve", "--db", url])
    assert result.exit_code == 1 and url in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--subnet-manager", "opensm"], "needs the partitions file"),
        (["--subnet-manager", "opensm", "--partitions-file", "{tmp}/p.conf"],
         "needs a way to tell OpenSM to reload"),
        (["--subnet-manager", "opensm", "--partitions-file", "{tmp}/p.conf",
          "--opensm-pidfile", "{tmp}/pid", "--opensm-reload-command", "true"], "not both"),
        (["--subnet-manager", "opensm", "--partitions-file", "{tmp}/bad.conf",
          "--opensm-pidfile", "{tmp}/pid"], "OpenSM would not parse this file"),
        (["--subnet-manager", "opensm", "--partitions-file", "{tmp}/p.conf",
          "--opensm-pidfile", "{tmp}/pid", "--partitions-base", "{tmp}/none.conf"],
         "does not exist"),
        (["--subnet-manager", "ufm"], "needs UFM's base address"),
        (["--subnet-manager", "ufm", "--ufm-url", "https://ufm.example.com"],
         "needs credentials"),
        (["--subnet-manager", "ufm", "--ufm-url", "https://ufm.example.com",
          "--ufm-token-file", "{tmp}/token", "--ufm-ca-file", "{tmp}/no-ca.pem"],
         "cannot read"),
        (["--subnet-manager", "ufm", "--ufm-url", "http://ufm.example.com",
          "--ufm-token-file", "{tmp}/token"], "https"),
        (["--partitions-file", "{tmp}/p.conf"], "applies to --subnet-manager opensm only"),
        (["--subnet-manager", "bogus"], "is not none, opensm or ufm"),
    ],
)
def test_subnet_manager_settings_that_cannot_work_exit_2_naming_the_option(
        tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "token").write_text("abc123\n")
    (tmp_path / "bad.conf").write_text("bad\n")
    argv = ["serve", "--db", f"sqlite:///{tmp_path / 'c.sqlite'}",
            *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    result = CliRunner().invoke(build_app(), argv)
    assert result.exit_code == 2, result.output
    assert says in " ".join(result.output.split())
    assert "Traceback" not in result.output
