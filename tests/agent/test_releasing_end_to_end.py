"""Acceptance of issue 10 item 1, end to end (in-process controller on SQLite and PostgreSQL,
the real agent on a simulated E810 host): an instance deleted while its host's agent is down
leaves its VF ``releasing``; a boot that needs that VF is refused saying so; the agent's next
pass detaches and restores it; the boot then succeeds, and once that instance is deleted too
the VF has the MAC and VLAN it had before the first boot."""

from __future__ import annotations

import httpx
from agent_sim import physnet1
from fastapi import FastAPI

from vfkeeper.agent.linkops.protocol import VfConfig, Vlan
from vfkeeper.agent.main import Agent
from vfkeeper.agent.simhost import locator
from vfkeeper.store.invariants import violations


def _boot(admin: httpx.Client, name: str) -> httpx.Response:
    port = admin.post("/v1/ports", json={"network": "n1", "vnic_type": "direct"})
    assert port.status_code == 201, port.text
    return admin.post("/v1/instances", json={"name": name, "ports": [port.json()["id"]]})


def _vf(agent: Agent, address: str) -> tuple[str | None, int]:
    assert agent.inventory is not None
    state = agent.linkops.get_vf(*locator(agent.inventory)[address])
    return state.mac, state.vlan.id if state.vlan else 0


def test_a_vf_deleted_while_its_agent_is_down_is_given_back_before_it_is_reused(
        app: FastAPI, admin: httpx.Client, agent: Agent) -> None:
    physnet1(admin, agent, vlan=42)
    assert agent.inventory is not None
    vfs = locator(agent.inventory)
    originals = {}
    for i, (address, (pf, index)) in enumerate(sorted(vfs.items())):
        agent.linkops.set_vf(pf, index, VfConfig(mac=f"02:00:00:00:00:{i + 1:02x}",
                                                 vlan=Vlan(10 + i)))
        originals[address] = _vf(agent, address)

    booted = [_boot(admin, f"vm{i}").json() for i in range(len(vfs))]  # every VF taken
    agent.reconcile()
    first = booted[0]
    [device] = [a["device"] for a in first["allocations"]]
    assert _vf(agent, device)[1] == 42  # programmed for the instance

    # the agent is down (no pass) while the instance is deleted
    assert admin.delete(f"/v1/instances/{first['id']}").status_code == 204
    refused = _boot(admin, "vm-new")
    assert refused.status_code == 409, refused.text
    assert "1 releasing on host sim-a" in refused.json()["error"]["message"]
    [pool] = admin.get("/v1/pools", params={"host": "sim-a"}).json()
    assert (pool["releasing"], pool["free"]) == (1, 0)

    # the agent comes back: it detaches the VF and restores it, then says so
    agent.heartbeat()
    report = agent.reconcile()
    assert report.releasing == ()
    assert _vf(agent, device) == originals[device]
    assert admin.get("/v1/hosts/sim-a").json()["releasing"] == []

    again = _boot(admin, "vm-new")
    assert again.status_code == 201, again.text
    assert [a["device"] for a in again.json()["allocations"]] == [device]
    agent.reconcile()
    assert _vf(agent, device)[1] == 42
    assert admin.delete(f"/v1/instances/{again.json()['id']}").status_code == 204
    agent.reconcile()
    assert _vf(agent, device) == originals[device]  # the VF's own MAC and VLAN, not vm0's
    with app.state.ctx.db.read() as s:
        assert violations(s) == []
