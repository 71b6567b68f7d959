"""The agent says what it does: one INFO line per step (port, VF, domain), refusals in the
kernel's words, start-up settings without the token, discovery warnings once per change (and on
the controller's host view), HTTP request lines only at DEBUG."""

from __future__ import annotations

import errno
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_sim import PF_NETDEV, SimHost, boot, desired, physnet1, port, token, vf_addr
from fastapi import FastAPI
from typer.testing import CliRunner

from vfkeeper.agent.main import Agent
from vfkeeper.cli.main import build_app
from vfkeeper.sim import simulate_host

STEP = re.compile(r"^port (?P<port>\S+): (?P<step>record|program|attach|detach|restore|forget):")


@pytest.fixture(autouse=True)
def _logger_levels() -> Iterator[None]:
    """``configure_logging`` sets logger levels, which outlive a test: put them back."""
    names = ("vfkeeper", "httpx", "httpcore")
    levels = {n: logging.getLogger(n).level for n in names}
    yield
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def _steps(caplog: pytest.LogCaptureFixture, port_id: str) -> list[tuple[str, str]]:
    out = []
    for r in caplog.records:
        m = STEP.match(r.getMessage())
        if m and m["port"] == port_id and r.name.startswith("vfkeeper.agent"):
            out.append((m["step"], r.getMessage()))
    return out


def test_one_ports_attach_and_release_can_be_followed_at_info(
        admin: httpx.Client, agent: Agent, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    physnet1(admin, agent)
    port_id, instance_id = boot(admin)
    [attached] = agent.reconcile().ports
    assert admin.delete(f"/v1/instances/{instance_id}").status_code == 204
    agent.reconcile()

    steps = _steps(caplog, port_id)
    assert [s for s, _ in steps] == ["record", "program", "attach", "attach", "detach",
                                     "detach", "restore", "forget"]
    assert all(attached.address in line for _, line in steps), steps
    assert all("vm1" in line for s, line in steps if s in ("record", "attach", "detach"))
    program = dict(steps)["program"]
    assert "vlan=42" in program and "enp" in program, "the PF and the VF index are named"
    assert all(r.levelno == logging.INFO for r in caplog.records
               if STEP.match(r.getMessage()))


def test_a_refused_best_effort_setting_is_logged_in_the_kernels_words(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    host = SimHost(tmp_path / "state", driver="igb")
    vm = host.domain("vm1")
    p = port(vm, 0, link_state="enable")
    host.agent().reconcile(desired(p), host.index)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    text = warning.getMessage()
    assert text.startswith(f"port {p.port_id}: program: VF {vf_addr(0)} ({PF_NETDEV} vf 0)")
    assert "refused link_state=enable" in text and os.strerror(errno.EOPNOTSUPP) in text


def test_a_port_that_cannot_go_on_is_logged_once_not_every_pass(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    host = SimHost(tmp_path / "state")
    host.domain("pet")  # holds VF 0, unknown to vfkeeper
    host.libvirt.attach("pet", "<hostdev mode='subsystem' type='pci' managed='yes'><source>"
                        "<address domain='0x0000' bus='0x03' slot='0x00' function='0x1'/>"
                        "</source></hostdev>", live=True, config=True)
    vm = host.domain("vm1")
    state = desired(port(vm, 0))
    agent = host.agent()
    caplog.set_level(logging.INFO)
    for _ in range(3):
        agent.reconcile(state, host.index)
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "'pet'" in errors[0], errors


def _agent_cli(app: FastAPI, transport: Any, tmp_path: Path, *extra: str) -> str:
    root = tmp_path / "host"
    if not root.exists():
        simulate_host(root, "x710", 1, 2, hostname="sim-b")
    result = CliRunner().invoke(build_app(), [
        "agent", "--controller", "http://vfk", "--token", token(app, "agent:sim-b"),
        "--sysfs-root", str(root), "--state-dir", str(tmp_path / "state"), "--fake-linkops",
        "--fake-libvirt", "--once", *extra], obj={"transport": transport})
    assert result.exit_code == 0, result.output
    return result.output


def test_http_lines_only_at_debug_and_start_up_says_the_settings(
        app: FastAPI, asgi_transport: Callable[[Any], Any], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _agent_cli(app, asgi_transport(app), tmp_path, "--log-level", "info")
    http = [r for r in caplog.records if r.name.startswith(("httpx", "httpcore"))]
    assert http == [], [r.getMessage() for r in http]
    [start] = [r.getMessage() for r in caplog.records if "agent starting" in r.getMessage()]
    for said in ("host sim-b", "controller http://vfk", f"sysfs root {tmp_path / 'host'}",
                 "token given", "VF programming in memory", "libvirt simulated",
                 f"state dir {tmp_path / 'state'}", "reconcile every 5 s"):
        assert said in start, (said, start)
    assert "agent:" not in start and "Bearer" not in start

    caplog.clear()
    _agent_cli(app, asgi_transport(app), tmp_path, "--log-level", "debug")
    assert any(r.name == "httpx" and "HTTP Request" in r.getMessage() for r in caplog.records)


def test_discovery_warnings_are_logged_once_and_shown_on_the_host(
        admin: httpx.Client, agent: Agent, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    agent.tick()
    vf = next(d for d in agent.inventory.devices if d.dev_type == "type-VF")  # type: ignore[union-attr]
    numa = Path(os.path.realpath(tmp_path / "host/sys/bus/pci/devices" / vf.address)) / \
        "numa_node"
    numa.write_text("zz\n")
    assert agent.rescan()
    agent.rescan()
    said = [r for r in caplog.records if r.levelno == logging.WARNING and str(numa) in
            r.getMessage()]
    assert len(said) == 1 and said[0].getMessage().startswith("discovery: ")
    [shown] = [w for w in admin.get("/v1/hosts/sim-a").json()["warnings"]
               if w["path"] == str(numa)]
    assert shown["message"]
