"""``instance resume|migrate --wait`` return once the instance's ports are back on it as its
agent reports them, not merely when the task ended (the agent re-plugs them after)."""

from __future__ import annotations

import time
import types
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from test_lifecycle import Cluster, _boot, _cli, _instance, cluster  # noqa: F401 - fixture


def _ports(admin: httpx.Client, instance_id: str) -> list[tuple[str, str | None]]:
    return [(p["status"], (p["actual"] or {}).get("phase"))
            for p in admin.get("/v1/ports", params={"instance": instance_id}).json()]


def _each_poll_runs(monkeypatch: pytest.MonkeyPatch, hosts_of: Cluster, *hosts: str) -> None:
    """Every time the CLI waits between two polls, the agents make one pass (so the test
    sees exactly the states the agents go through, in order). Only the CLI's ``time`` is
    replaced: patching ``time.sleep`` itself made every thread that sleeps (the VM tier's QEMU
    watcher, ``Popen.wait``) run these agents too, after this test's files were gone."""
    cli_time = types.ModuleType("time")
    cli_time.__dict__.update(time.__dict__)
    cli_time.sleep = lambda _s: hosts_of.run(*hosts)  # type: ignore[attr-defined]
    monkeypatch.setattr("vfkeeper.cli.instance.time", cli_time)


def test_resume_wait_returns_when_the_ports_are_plugged_back(
    app: FastAPI, admin: httpx.Client, cluster: Cluster,  # noqa: F811 - fixture
    asgi_transport: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id, _ = _boot(admin, "direct", "macvtap")
    cluster.run("sim-a")
    assert admin.post(f"/v1/instances/{instance_id}/suspend").status_code == 202
    cluster.run("sim-a")
    assert _instance(admin, instance_id)["status"] == "SUSPENDED"
    _each_poll_runs(monkeypatch, cluster, "sim-a")
    resumed = _cli(app, asgi_transport, "instance", "resume", instance_id, "--wait")
    assert resumed.exit_code == 0, resumed.output
    assert "ports: 1 of 2 back" in resumed.output  # the task ended before the VF was back
    assert _ports(admin, instance_id) == [("ACTIVE", "attached")] * 2


def test_migrate_wait_returns_when_the_destination_reports_the_ports(
    app: FastAPI, admin: httpx.Client, cluster: Cluster,  # noqa: F811 - fixture
    asgi_transport: Callable[[Any], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    instance_id, _ = _boot(admin, "direct")
    cluster.run("sim-a")
    _each_poll_runs(monkeypatch, cluster, "sim-b", "sim-a")
    moved = _cli(app, asgi_transport, "instance", "migrate", instance_id, "--to", "sim-b",
                 "--wait")
    assert moved.exit_code == 0, moved.output
    assert "host: sim-b" in moved.output
    assert _ports(admin, instance_id) == [("ACTIVE", "attached")]
    assert "NUMA" in moved.output  # the allocations table
