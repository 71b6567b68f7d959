"""Agent + controller + CLI end to end on a simulated host: the controller runs in-process
(httpx ASGI transport), the host is a ``vfkeeper simulate`` tree with the fake kernel and the
simulated hypervisor behind the real agent loop."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from agent_sim import E810_SPECS, boot, token
from fastapi import FastAPI
from typer.testing import CliRunner

from manual_clock import ManualClock
from vfkeeper.agent.main import Agent
from vfkeeper.cli.main import build_app
from vfkeeper.sim import simulate_host


def _cli(app: FastAPI, asgi_transport: Callable[[Any], Any], *args: str) -> str:
    result = CliRunner().invoke(build_app(), [*args, "--controller", "http://vfk", "--token",
                                              token(app, "admin")],
                                obj={"transport": asgi_transport(app)})
    assert result.exit_code == 0, result.output
    return result.output


def test_boot_attach_report_and_release(app: FastAPI, admin: httpx.Client, agent: Agent,
                                        asgi_transport: Callable[[Any], Any]) -> None:
    assert agent.tick() == ["rescan", "heartbeat", "reconcile"]
    admin.put("/v1/device-specs", json={"entries": E810_SPECS})
    admin.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                     "segmentation": {"type": "vlan", "id": 42}})
    port_id, instance_id = boot(admin)
    assert admin.get(f"/v1/ports/{port_id}").json()["status"] == "BUILD"

    report = agent.reconcile()
    [actual] = report.ports
    assert (actual.status, actual.phase) == ("ACTIVE", "attached")
    view = admin.get(f"/v1/ports/{port_id}").json()
    assert view["status"] == "ACTIVE"
    assert view["actual"]["phase"] == "attached" and view["actual"]["vlan"] == 42
    assert view["desired"]["vlan"] == view["actual"]["vlan"] == 42  # both integers
    assert view["actual"]["mac"] == view["mac"]
    [dom] = agent.domain_ops.list_domains()
    assert dom.uuid == instance_id
    shown = _cli(app, asgi_transport, "port", "show", port_id)
    assert "status: ACTIVE" in shown and '"phase": "attached"' in shown
    listed = _cli(app, asgi_transport, "port", "list")
    assert "ACTIVE" in listed and "attached" in listed

    pf, index = agent.domain_ops._locate(actual.address)  # type: ignore[attr-defined, misc]
    assert admin.delete(f"/v1/instances/{instance_id}").status_code == 204
    report = agent.reconcile()
    assert report.ports == () and report.releasing == ()
    vf = agent.linkops.get_vf(pf, index)
    assert (vf.mac, vf.vlan.id if vf.vlan else 0) == ("00:00:00:00:00:00", 0)
    assert agent.reconciler.journal.load().records == {}


def test_a_released_port_shows_no_stale_actual_state(
        app: FastAPI, admin: httpx.Client, agent: Agent,
        asgi_transport: Callable[[Any], Any]) -> None:
    """Boot → the agent reports ACTIVE → delete the instance: the unbound port is DOWN with no
    desired or actual state at once (before the agent reports again), and the agent's next
    report, which no longer lists it, drops the stored report."""
    from sqlalchemy import select

    from vfkeeper.store.agent_models import PortActual

    agent.tick()
    admin.put("/v1/device-specs", json={"entries": E810_SPECS})
    admin.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                     "segmentation": {"type": "vlan", "id": 42}})
    port_id, instance_id = boot(admin, name="p1")
    agent.reconcile()
    assert admin.get(f"/v1/ports/{port_id}").json()["actual"]["phase"] == "attached"

    assert admin.delete(f"/v1/instances/{instance_id}").status_code == 204
    [listed] = [p for p in admin.get("/v1/ports").json() if p["id"] == port_id]
    for view in (admin.get(f"/v1/ports/{port_id}").json(), listed):
        assert (view["status"], view["instance_id"], view["binding:host_id"]) == (
            "DOWN", None, None)
        assert view["desired"] is None and view["actual"] is None
    listed = _cli(app, asgi_transport, "port", "list")
    [row] = [line for line in listed.splitlines() if "p1" in line]
    assert "DOWN" in row and "attached" not in row

    agent.reconcile()
    with app.state.ctx.db.read() as s:
        assert list(s.scalars(select(PortActual))) == []
    assert admin.get(f"/v1/ports/{port_id}").json()["actual"] is None


def test_a_silent_agent_gets_no_new_instances(app: FastAPI, admin: httpx.Client, agent: Agent,
                                              clock: ManualClock) -> None:
    agent.tick()
    admin.put("/v1/device-specs", json={"entries": E810_SPECS})
    admin.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                     "segmentation": {"type": "flat"}})
    clock.now += timedelta(seconds=120)
    port_id = admin.post("/v1/ports", json={"network": "n1"}).json()["id"]
    resp = admin.post("/v1/instances", json={"name": "vm", "ports": [port_id]})
    assert resp.status_code == 409 and "agent" in resp.json()["error"]["message"]
    agent.heartbeat()
    assert admin.post("/v1/instances", json={"name": "vm", "ports": [port_id]}).status_code == 201


def test_a_foreign_vf_is_never_handed_out(app: FastAPI, admin: httpx.Client,
                                          agent: Agent) -> None:
    from vfkeeper.agent.simhost import SimulatedHypervisor
    from vfkeeper.domain.vif import BoundVif, render_interface, render_test_domain

    agent.tick()
    admin.put("/v1/device-specs", json={"entries": E810_SPECS})
    admin.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                     "segmentation": {"type": "flat"}})
    hv = agent.domain_ops
    assert isinstance(hv, SimulatedHypervisor)
    vfs = [d.address for d in agent.inventory.devices if d.dev_type == "type-VF"]  # type: ignore[union-attr]
    hv.define(render_test_domain("pet", [], domain_type="kvm"))
    hv.start("pet")
    hv.attach("pet", render_interface(BoundVif("hw_veb", "direct", pci_address=vfs[0])),
              live=True, config=True)
    report = agent.reconcile()
    assert {f.address for f in report.foreign} == {vfs[0]}
    host = admin.get("/v1/hosts/sim-a").json()
    [problem] = host["problems"]
    assert problem["address"] == vfs[0] and "foreign" in problem["problem"]
    assert host["agent_report"]["foreign"][0]["domain"] == "pet"
    taken = set()
    for _ in range(len(vfs) - 1):
        port_id, _iid = boot(admin)
        taken.add(admin.get(f"/v1/ports/{port_id}").json()["binding:profile"]["pci_slot"])
    assert vfs[0] not in taken and len(taken) == len(vfs) - 1
    port_id = admin.post("/v1/ports", json={"network": "n1"}).json()["id"]
    assert admin.post("/v1/instances", json={"name": "x", "ports": [port_id]}).status_code == 409
    agent.rescan()  # an inventory PUT rewrites device rows: the mark must survive it
    hv.detach("pet", hv.devices("pet").live[0], live=True, config=True)
    agent.reconcile()
    assert admin.get("/v1/hosts/sim-a").json()["problems"] == []


def test_the_cli_runs_one_pass(app: FastAPI, asgi_transport: Callable[[Any], Any],
                               tmp_path: Path) -> None:
    import json

    root = tmp_path / "host"
    simulate_host(root, "x710", 1, 2, hostname="sim-b")
    result = CliRunner().invoke(build_app(), [
        "agent", "--controller", "http://vfk", "--token", token(app, "agent:sim-b"),
        "--sysfs-root", str(root), "--state-dir", str(tmp_path / "state"), "--fake-linkops",
        "--fake-libvirt", "--once"], obj={"transport": asgi_transport(app)})
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["host"] == "sim-b" and report["ports"] == []
    shown = _cli(app, asgi_transport, "host", "show", "sim-b")
    assert "  alive: yes, last seen " in shown


def _free(admin: httpx.Client) -> int:
    return sum(p["free"] for p in admin.get("/v1/pools", params={"host": "sim-a"}).json()
               if p["dev_type"] == "type-VF")


def _live(agent: Agent) -> set[str | None]:
    [dom] = agent.domain_ops.list_domains()
    return {d.pci_address for d in agent.domain_ops.devices(dom.name).live}


def test_hot_plug_and_unplug_on_a_running_instance(admin: httpx.Client, agent: Agent) -> None:
    """attach-port: the new port goes BUILD -> ACTIVE and the running domain holds its VF, the
    first port untouched; detach-port: the VF leaves the domain, gets its original settings
    back and is free again; the port stays, unbound."""
    agent.tick()
    admin.put("/v1/device-specs", json={"entries": E810_SPECS})
    admin.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                     "segmentation": {"type": "vlan", "id": 42}})
    first, instance_id = boot(admin)
    [booted] = agent.reconcile().ports
    free = _free(admin)

    second = admin.post("/v1/ports", json={"network": "n1", "vnic_type": "direct"}).json()["id"]
    resp = admin.post(f"/v1/instances/{instance_id}/ports", json={"port_id": second})
    assert resp.status_code == 200, resp.text
    assert admin.get(f"/v1/ports/{second}").json()["status"] == "BUILD"
    assert _free(admin) == free - 1
    report = agent.reconcile()
    by_port = {p.port_id: p for p in report.ports}
    assert {pid: (p.status, p.phase) for pid, p in by_port.items()} == {
        first: ("ACTIVE", "attached"), second: ("ACTIVE", "attached")}
    added = by_port[second].address
    assert _live(agent) == {booted.address, added}
    view = admin.get(f"/v1/ports/{second}").json()
    assert view["status"] == "ACTIVE" and view["actual"]["vlan"] == 42
    pf, index = agent.domain_ops._locate(added)  # type: ignore[attr-defined, misc]
    assert agent.linkops.get_vf(pf, index).mac == view["mac"]

    assert admin.delete(f"/v1/instances/{instance_id}/ports/{second}").status_code == 204
    [kept] = agent.reconcile().ports
    assert (kept.port_id, kept.status) == (first, "ACTIVE")
    assert _live(agent) == {booted.address}
    vf = agent.linkops.get_vf(pf, index)
    assert (vf.mac, vf.vlan.id if vf.vlan else 0) == ("00:00:00:00:00:00", 0)
    assert set(agent.reconciler.journal.load().records) == {first}
    assert _free(admin) == free
    view = admin.get(f"/v1/ports/{second}").json()
    assert (view["status"], view["instance_id"], view["actual"]) == ("DOWN", None, None)
    assert admin.get(f"/v1/ports/{first}").json()["status"] == "ACTIVE"


def test_an_agent_whose_host_was_deleted_registers_it_again(admin: httpx.Client,
                                                            agent: Agent) -> None:
    agent.tick()
    assert admin.get("/v1/hosts/sim-a").status_code == 200
    assert admin.delete("/v1/hosts/sim-a").status_code == 204
    agent.heartbeat()  # 404: the agent sends its inventory again, then heartbeats
    shown = admin.get("/v1/hosts/sim-a")
    assert shown.status_code == 200
    assert shown.json()["devices_total"] == 5 and shown.json()["agent"]["alive"]
