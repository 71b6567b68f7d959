"""``vfkeeper demo`` in pieces: the command's checks and failure reporting, and the pure
tables (the whole run, and the XML it shows: ``tests/demo``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vfkeeper.cli.main import build_app
from vfkeeper.demo import steps, views
from vfkeeper.demo.session import DemoStepError, Session


def run(*args: str) -> Any:
    return CliRunner().invoke(build_app(), ["demo", *args])


def test_a_non_empty_workdir_is_refused_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = run("--workdir", str(tmp_path))
    assert result.exit_code == 2
    assert f"--workdir {tmp_path} is not empty" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["something"]


def test_a_failing_step_is_named_and_exits_1(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(session: Session, hosts_dir: Path) -> dict[str, Path]:
        raise DemoStepError("the simulated hosts could not be built")

    monkeypatch.setattr(steps, "build_hosts", broken)
    result = run("--workdir", str(tmp_path / "w"))
    assert result.exit_code == 1
    assert ("Error: the demo stopped: step 1 (three simulated hosts and their agents: "
            "discovery, inventory, device specs) failed: the simulated hosts could not be "
            "built") in result.stderr


def test_an_api_error_in_a_step_shows_the_controllers_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def asks_for_a_missing_host(session: Session, hosts_dir: Path) -> dict[str, Path]:
        session.get("/v1/hosts/no-such-host")
        return {}

    monkeypatch.setattr(steps, "build_hosts", asks_for_a_missing_host)
    result = run("--workdir", str(tmp_path / "w"))
    assert result.exit_code == 1
    assert "no-such-host" in result.stderr
    assert "step 1 (" in result.stderr and "the API call above failed" in result.stderr


def test_pool_change_table_lists_free_before_and_after() -> None:
    pool = {"physical_network": "ib", "dev_type": "type-VF", "parent_pf": "0000:03:00.0",
            "numa_node": 0, "total": 4}
    table = views.pool_change_table("host-a", [{**pool, "free": 1}], [{**pool, "free": 4}])
    cells = [list(column.cells) for column in table.columns]
    assert [c[0] for c in cells][-2:] == ["1", "4"]
