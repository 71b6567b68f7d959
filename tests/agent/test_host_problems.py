"""A host whose agent cannot reconcile says so, and the scheduler stops placing on it until it
can: a damaged journal record (its port alone fails, the other ports are reconciled), or a pass
that fails as a whole (the loop and the heartbeats go on)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_sim import boot, physnet1, sim_agent
from fastapi import FastAPI

from vfkeeper.agent.libvirt.protocol import Domain
from vfkeeper.agent.main import Agent
from vfkeeper.agent.simhost import SimulatedHypervisor


def _refused(admin: httpx.Client) -> str:
    port_id = admin.post("/v1/ports", json={"network": "n1"}).json()["id"]
    resp = admin.post("/v1/instances", json={"name": "vm2", "ports": [port_id]})
    assert resp.status_code == 409, resp.text
    message: str = resp.json()["error"]["message"]
    admin.delete(f"/v1/ports/{port_id}")
    return message


def test_a_damaged_record_is_shown_and_keeps_instances_off_the_host(
        admin: httpx.Client, agent: Agent) -> None:
    physnet1(admin, agent)
    first, _ = boot(admin)
    agent.reconcile()
    second, _ = boot(admin)
    record = agent.reconciler.journal.dir / f"{first}.json"
    record.write_text('{"format": 1, "port_id": "')  # cut short

    report = agent.reconcile()

    by_id = {p.port_id: p for p in report.ports}
    assert by_id[second].status == "ACTIVE", "the healthy port is reconciled"
    assert by_id[first].status == "ERROR"
    port = admin.get(f"/v1/ports/{first}").json()
    assert port["status"] == "ERROR" and str(record) in port["actual"]["last_error"]
    [problem] = admin.get("/v1/hosts/sim-a").json()["agent"]["problems"]
    assert (problem["kind"], problem["path"], problem["port_id"]) == ("journal", str(record),
                                                                      first)
    assert "vfkeeper vf set" in problem["message"]
    why = _refused(admin)
    assert "sim-a" in why and "cannot reconcile" in why and str(record) in why

    record.rename(record.with_suffix(".moved"))  # after restoring the VF by hand
    agent.reconcile()
    assert admin.get("/v1/hosts/sim-a").json()["agent"]["problems"] == []
    assert admin.post("/v1/ports", json={"network": "n1"}).status_code == 201
    boot(admin)


class _Broken(SimulatedHypervisor):
    """A hypervisor adapter with a bug while ``broken``: listing domains raises what no code
    expects."""

    broken = False

    def list_domains(self) -> tuple[Domain, ...]:
        if self.broken:
            raise AttributeError("'list' object has no attribute 'get'")
        return super().list_domains()


@pytest.fixture
def broken(app: FastAPI, asgi_transport: Callable[[Any], Any], tmp_path: Path) -> Agent:
    return sim_agent(app, asgi_transport(app), tmp_path, _Broken)


def _break(agent: Agent, broken: bool) -> None:
    hv = agent.domain_ops
    assert isinstance(hv, _Broken)
    hv.broken = broken
    agent._due.clear()  # every task due now


def test_a_pass_that_fails_unexpectedly_is_reported_and_the_loop_goes_on(
        admin: httpx.Client, broken: Agent, caplog: pytest.LogCaptureFixture) -> None:
    physnet1(admin, broken)
    port_id, _ = boot(admin)
    broken.reconcile()
    _break(broken, True)

    assert broken.tick() == ["rescan", "heartbeat", "reconcile"]  # nothing raised

    [problem] = admin.get("/v1/hosts/sim-a").json()["agent"]["problems"]
    assert problem["kind"] == "reconcile" and "AttributeError" in problem["message"]
    assert "bug in vfkeeper" in problem["message"]
    assert [r.levelname for r in caplog.records if "AttributeError" in r.getMessage()] == \
        ["ERROR"]
    assert not any(r.exc_info for r in caplog.records if r.levelname != "DEBUG")
    assert admin.get("/v1/hosts/sim-a").json()["agent"]["alive"]
    assert admin.get(f"/v1/ports/{port_id}").json()["actual"]["phase"] == "attached", \
        "a failed pass says nothing of the ports: the last report of them stays"
    assert "cannot reconcile" in _refused(admin)

    _break(broken, False)
    broken.tick()
    assert admin.get("/v1/hosts/sim-a").json()["agent"]["problems"] == []
    boot(admin)
