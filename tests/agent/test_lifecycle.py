"""Live migration, suspend and resume end to end: an in-process controller and two simulated
hosts, each with the real agent on a fake kernel and a fake libvirt; the two fake libvirts
share one fabric, so a migration moves the domain from one to the other (refusing, as libvirt
does, a domain that still holds a PCI function)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from agent_sim import token
from fastapi import FastAPI
from sqlalchemy import update

from manual_clock import ManualClock
from vfkeeper.agent.discovery import discover
from vfkeeper.agent.errors import MigrationUriError
from vfkeeper.agent.executor import SimulatedCrash
from vfkeeper.agent.libvirt.fake import FakeDomainOps
from vfkeeper.agent.main import Agent, AgentConfig, build
from vfkeeper.agent.reconcile import Step
from vfkeeper.agent.simhost import SimulatedHypervisor, fake_linkops, locator
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.sim import simulate_host
from vfkeeper.store.invariants import violations
from vfkeeper.store.models import Host

SPECS = [{"vendor_id": "8086", "product_id": "1889", "physical_network": "physnet1"}]
HOSTS = ("sim-a", "sim-b")





class Cluster:
    """Two simulated hosts whose kernels and hypervisors outlive their agents (a test may
    "crash" an agent and build a new one on the same host)."""

    def __init__(self, app: FastAPI, transport: Callable[[Any], Any], tmp: Path) -> None:
        self.app, self.transport, self.tmp = app, transport, tmp
        self.fabric: dict[str, FakeDomainOps] = {}
        self.hv: dict[str, SimulatedHypervisor] = {}
        self.vf_of: dict[str, dict[str, tuple[str, int]]] = {}
        self.agents: dict[str, Agent] = {}
        for name in HOSTS:
            root = tmp / name
            simulate_host(root, "e810", 1, 4, hostname=name)
            inventory = discover(SysfsReader(root), hostname=name)
            kernel = fake_linkops(inventory)
            self.vf_of[name] = locator(inventory)
            self.hv[name] = SimulatedHypervisor(kernel, self.vf_of[name].get,
                                                uri=f"qemu+tcp://{name}/system",
                                                fabric=self.fabric)
            self.agents[name] = self.new_agent(name)

    def new_agent(self, name: str) -> Agent:
        hv = self.hv[name]
        config = AgentConfig(controller="http://vfk", token=token(self.app, f"agent:{name}"),
                             host=name, sysfs_root=str(self.tmp / name),
                             state_dir=str(self.tmp / f"state-{name}"), fake_linkops=True,
                             fake_libvirt=True)
        agent = build(config, transport=self.transport(self.app), domain_ops=hv,
                      linkops=hv._linkops)
        self.agents[name] = agent
        return agent

    def register(self) -> None:
        for agent in self.agents.values():
            agent.rescan()
            agent.heartbeat()

    def run(self, *names: str) -> None:
        for name in names:
            self.agents[name].heartbeat()
            self.agents[name].reconcile()

    def vf(self, host: str, address: str) -> tuple[str | None, int]:
        state = self.hv[host]._linkops.get_vf(*self.vf_of[host][address])  # type: ignore[union-attr]
        return state.mac, state.vlan.id if state.vlan else 0


@pytest.fixture
def cluster(app: FastAPI, asgi_transport: Callable[[Any], Any], admin: httpx.Client,
            tmp_path: Path) -> Cluster:
    c = Cluster(app, asgi_transport, tmp_path)
    c.register()
    assert admin.put("/v1/device-specs", json={"entries": SPECS}).status_code == 200
    assert admin.post("/v1/networks", json={
        "name": "n1", "physical_network": "physnet1",
        "segmentation": {"type": "vlan", "id": 42}}).status_code == 201
    return c


def _port(admin: httpx.Client, vnic_type: str) -> str:
    resp = admin.post("/v1/ports", json={"network": "n1", "vnic_type": vnic_type})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"])


def _boot(admin: httpx.Client, *vnic_types: str, host: str = "sim-a") -> tuple[str, list[str]]:
    ports = [_port(admin, v) for v in vnic_types]
    resp = admin.post("/v1/instances", json={"name": "vm1", "ports": ports, "host": host})
    assert resp.status_code == 201, resp.text
    return str(resp.json()["id"]), ports


def _instance(admin: httpx.Client, instance_id: str) -> dict[str, Any]:
    resp = admin.get(f"/v1/instances/{instance_id}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def _no_violations(app: FastAPI) -> None:
    with app.state.ctx.db.read() as s:
        assert violations(s) == []


def _devices(app: FastAPI, admin: httpx.Client, instance_id: str) -> dict[str, str]:
    return {a["port_id"]: a["device"] for a in _instance(admin, instance_id)["allocations"]}


def _live(cluster: Cluster, host: str, instance: str = "vm1") -> list[tuple[str, str | None]]:
    held = cluster.hv[host].devices(instance)
    return sorted((d.type, d.alias) for d in held.live)


# --- migration ---------------------------------------------------------------------------------


def test_migrate_moves_hostdev_and_macvtap_ports(app: FastAPI, admin: httpx.Client,
                                                 cluster: Cluster) -> None:
    instance_id, (direct, macvtap, normal) = _boot(admin, "direct", "macvtap", "normal")
    cluster.run("sim-a")
    before = _devices(app, admin, instance_id)
    assert _live(cluster, "sim-a") == [("direct", f"ua-vfk-{macvtap}"),
                                       ("hostdev", f"ua-vfk-{direct}")]

    resp = admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    assert resp.status_code == 202, resp.text
    view = resp.json()
    assert view["status"] == "MIGRATING" and view["host"] == "sim-a"
    assert view["task"]["kind"] == "migrate" and view["task"]["target_host"] == "sim-b"
    incoming = {i["port_id"]: i["device"] for i in view["task"]["incoming"]}
    assert set(incoming) == {direct, macvtap}
    _no_violations(app)
    # the reservation counts on the destination: its pool has two VFs fewer
    [pool_b] = admin.get("/v1/pools", params={"host": "sim-b"}).json()
    assert pool_b["used"] == 2

    # the source does nothing until the destination is ready
    cluster.run("sim-a")
    assert _live(cluster, "sim-a") == [("direct", f"ua-vfk-{macvtap}"),
                                       ("hostdev", f"ua-vfk-{direct}")]
    assert _instance(admin, instance_id)["task"]["source_waiting_for"] == (
        "host sim-b is preparing its VFs")

    cluster.run("sim-b")  # programs the reserved VFs, says ready
    mac = admin.get(f"/v1/ports/{direct}").json()["mac"]
    assert cluster.vf("sim-b", incoming[direct]) == (mac, 42)
    assert _instance(admin, instance_id)["task"]["target_ready"] is True

    cluster.run("sim-a")  # unplugs the hostdev port, migrates
    assert "vm1" not in cluster.hv["sim-a"].domains
    assert cluster.vf("sim-a", before[direct]) == ("00:00:00:00:00:00", 0)  # given back
    view = _instance(admin, instance_id)
    assert (view["status"], view["host"], view["task"]) == ("ACTIVE", "sim-b", None)
    assert _devices(app, admin, instance_id) == incoming
    # the macvtap interface moved as it was, onto the destination's VF
    moved = [d for d in cluster.hv["sim-b"].devices("vm1").live if d.type == "direct"]
    assert [d.source_dev for d in moved] == [
        cluster.hv["sim-b"].domains and _netdev(cluster, "sim-b", incoming[macvtap])]

    cluster.run("sim-b", "sim-a")  # the destination plugs the hostdev port in
    assert _live(cluster, "sim-b") == [("direct", f"ua-vfk-{macvtap}"),
                                       ("hostdev", f"ua-vfk-{direct}")]
    statuses = {p: admin.get(f"/v1/ports/{p}").json()["status"] for p in (direct, macvtap)}
    assert statuses == {direct: "ACTIVE", macvtap: "ACTIVE"}
    assert admin.get(f"/v1/ports/{normal}").json()["binding:host_id"] == "sim-b"
    profile = admin.get(f"/v1/ports/{direct}").json()["binding:profile"]
    assert profile["pci_slot"] == incoming[direct]
    [pool_a] = admin.get("/v1/pools", params={"host": "sim-a"}).json()
    assert pool_a["used"] == 0
    assert cluster.agents["sim-a"].reconciler.journal.load().records == {}
    _no_violations(app)


def _netdev(cluster: Cluster, host: str, address: str) -> str:
    agent = cluster.agents[host]
    assert agent.inventory is not None
    [netdev] = [d.netdevs[0].name for d in agent.inventory.devices if d.address == address]
    return netdev


def test_a_refused_migration_rolls_back_and_replugs(app: FastAPI, admin: httpx.Client,
                                                    cluster: Cluster) -> None:
    instance_id, (direct,) = _boot(admin, "direct")
    cluster.run("sim-a")
    # the destination's libvirt cannot be reached at the URI its agent gave (nothing listens on
    # that port of sim-b)
    cluster.agents["sim-b"].config = cluster.agents["sim-b"].config.__class__(
        **{**cluster.agents["sim-b"].config.__dict__,
           "migration_uri": "qemu+tcp://sim-b:16600/system"})
    cluster.run("sim-b")
    assert admin.post(f"/v1/instances/{instance_id}/migrate",
                      json={"host": "sim-b"}).status_code == 202
    cluster.run("sim-b", "sim-a")
    view = _instance(admin, instance_id)
    assert (view["status"], view["host"], view["task"]) == ("ACTIVE", "sim-a", None)
    assert "unable to connect to server at 'sim-b:16600'" in view["last_error"]
    [pool_b] = admin.get("/v1/pools", params={"host": "sim-b"}).json()
    assert pool_b["used"] == 0  # the reservation is freed
    cluster.run("sim-a")  # plugged back in where it was
    assert _live(cluster, "sim-a") == [("hostdev", f"ua-vfk-{direct}")]
    assert admin.get(f"/v1/ports/{direct}").json()["status"] == "ACTIVE"
    cluster.run("sim-b")  # the destination gives back the VF it had programmed
    assert cluster.agents["sim-b"].reconciler.journal.load().records == {}
    _no_violations(app)


@pytest.mark.parametrize("stored", [
    "qemu+ext:///system?command=/tmp/evil",
    "qemu+ssh://-oProxyCommand=touch${IFS}/tmp/pwned/system",
    "file:///etc/passwd",
    "qemu+tcp://sim-a/system",  # not the destination: another host's libvirt
])
def test_the_source_never_hands_libvirt_a_stored_uri_that_is_not_the_destinations(
        app: FastAPI, admin: httpx.Client, cluster: Cluster, stored: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A URI an older controller stored unchecked: the source's agent refuses it before libvirt
    sees it, the task fails with the reason, and the instance stays where it was."""
    asked: list[str] = []
    migrate = cluster.hv["sim-a"].migrate
    monkeypatch.setattr(cluster.hv["sim-a"], "migrate",
                        lambda domain, uri, **kw: (asked.append(uri), migrate(domain, uri, **kw)))
    instance_id, (direct,) = _boot(admin, "direct")
    cluster.run("sim-a")
    with app.state.ctx.db.write() as s:
        s.execute(update(Host).where(Host.name == "sim-b").values(migration_uri=stored))
    assert admin.post(f"/v1/instances/{instance_id}/migrate",
                      json={"host": "sim-b"}).status_code == 202
    for name in ("sim-b", "sim-a", "sim-b", "sim-a"):  # no heartbeat: it would fix the URI
        cluster.agents[name].reconcile()
    assert asked == []  # libvirt was never asked
    view = _instance(admin, instance_id)
    assert (view["status"], view["host"], view["task"]) == ("ACTIVE", "sim-a", None)
    assert f"migration URI {stored!r} is refused" in view["last_error"]
    assert "qemu+tcp://sim-b/system" in view["last_error"]  # what the destination should send
    assert _live(cluster, "sim-a") == [("hostdev", f"ua-vfk-{direct}")]
    assert cluster.hv["sim-b"].domains == {}
    _no_violations(app)


def test_an_agent_given_a_refused_migration_uri_does_not_start(tmp_path: Path) -> None:
    simulate_host(tmp_path / "h", "e810", 1, 2, hostname="sim-x")
    config = AgentConfig(controller="http://vfk", token=None, host="sim-x",
                         sysfs_root=str(tmp_path / "h"), state_dir=str(tmp_path / "state"),
                         fake_linkops=True, fake_libvirt=True,
                         migration_uri="qemu+ext:///system?command=/tmp/evil")
    with pytest.raises(MigrationUriError, match=r"--migration-uri: .* send qemu\+tcp://sim-x/"):
        build(config)
    assert build(dataclasses.replace(config, migration_uri="qemu+tls://sim-x.example/system"))


def test_no_room_on_the_destination_is_a_409_that_writes_nothing(
        app: FastAPI, admin: httpx.Client, cluster: Cluster) -> None:
    for _ in range(4):  # fill sim-b
        ports = [_port(admin, "direct")]
        assert admin.post("/v1/instances", json={"name": "filler", "ports": ports,
                                                 "host": "sim-b"}).status_code == 201
    instance_id, _ = _boot(admin, "direct")
    resp = admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "no_valid_host"
    assert "sim-b" in resp.json()["error"]["message"]
    view = _instance(admin, instance_id)
    assert (view["status"], view["task"]) == ("ACTIVE", None)
    _no_violations(app)


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"host": "sim-a"}, 422, "already on host sim-a"),
    ({"host": "nope"}, 404, "no host 'nope'"),
    ({}, 422, "host"),
])
def test_bad_migrate_requests(admin: httpx.Client, cluster: Cluster, body: dict[str, str],
                              status: int, words: str) -> None:
    instance_id, _ = _boot(admin, "direct")
    resp = admin.post(f"/v1/instances/{instance_id}/migrate", json=body)
    assert resp.status_code == status, resp.text
    assert words in resp.text
    assert _instance(admin, instance_id)["status"] == "ACTIVE"


def test_the_destination_reporting_arrival_finishes_a_migration_whose_source_died(
        app: FastAPI, admin: httpx.Client, cluster: Cluster) -> None:
    """The source migrates and dies before it can say so: the destination sees the domain
    arrive and that ends the migration."""
    instance_id, (direct,) = _boot(admin, "direct")
    cluster.run("sim-a")
    admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    cluster.run("sim-b")
    source = cluster.agents["sim-a"]

    def die(_state: object) -> None:
        raise SimulatedCrash("after migrating, before reporting")

    source.client.put_actual_state = die  # type: ignore[method-assign]
    with pytest.raises(SimulatedCrash):
        source.reconcile()
    assert "vm1" in cluster.hv["sim-b"].domains
    assert _instance(admin, instance_id)["status"] == "MIGRATING"
    cluster.run("sim-b")  # arrived
    view = _instance(admin, instance_id)
    assert (view["status"], view["host"]) == ("ACTIVE", "sim-b")
    cluster.run("sim-b")
    assert _live(cluster, "sim-b") == [("hostdev", f"ua-vfk-{direct}")]
    cluster.new_agent("sim-a")
    cluster.run("sim-a")
    assert cluster.agents["sim-a"].reconciler.journal.load().records == {}
    _no_violations(app)


def test_a_source_killed_after_any_step_converges(app: FastAPI, admin: httpx.Client,
                                                  cluster: Cluster) -> None:
    """Kill the source's agent after each step of its pass in turn (unplug live and from the
    config, restore the VF, forget it): each new agent goes on from what the host shows, and
    the last one migrates."""
    instance_id, (direct, _macvtap) = _boot(admin, "direct", "macvtap")
    cluster.run("sim-a")
    admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    cluster.run("sim-b")
    crashes = 0
    kinds: list[str] = []
    seen: set[str] = set()
    while _instance(admin, instance_id)["status"] == "MIGRATING":
        agent = cluster.new_agent("sim-a")
        done: list[Step] = []

        def crash_after(step: Step, done: list[Step] = done) -> None:
            if str(step) in seen:  # re-run by this agent: the last one died before it knew
                return
            seen.add(str(step))
            done.append(step)  # each agent dies right after the first step no agent died after
            raise SimulatedCrash(str(step))

        agent.reconciler.executor.after_step = crash_after
        try:
            cluster.run("sim-a")
        except SimulatedCrash:
            kinds.append(done[0].kind.value)
            crashes += 1
            assert crashes < 20
    assert kinds == ["detach", "detach", "restore", "forget"]  # live, config, the VF, journal
    cluster.new_agent("sim-a")
    cluster.run("sim-b", "sim-a")
    assert _instance(admin, instance_id)["host"] == "sim-b"
    assert ("hostdev", f"ua-vfk-{direct}") in _live(cluster, "sim-b")
    assert cluster.agents["sim-a"].reconciler.journal.load().records == {}
    _no_violations(app)


def test_abort_before_and_after_the_destination_is_ready(app: FastAPI, admin: httpx.Client,
                                                         cluster: Cluster) -> None:
    """Before the destination is ready an abort ends the migration at once; after, the source
    is asked to stop, says it had not migrated, and re-plugs the port where it was."""
    instance_id, (direct,) = _boot(admin, "direct")
    cluster.run("sim-a")
    admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    resp = admin.post(f"/v1/instances/{instance_id}/abort")
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "ACTIVE"
    assert resp.json()["last_error"] == "migration failed: aborted by an operator"

    admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    cluster.agents["sim-a"].reconciler.executor.after_step = None
    cluster.run("sim-b")  # ready
    guest = cluster.hv["sim-a"].domains["vm1"]
    guest.guest_answers_unplug = False  # the unplug hangs: the source cannot migrate
    cluster.run("sim-a")
    waiting = _instance(admin, instance_id)["task"]["source_waiting_for"]
    assert waiting.startswith(f"unplugging port {direct}")
    resp = admin.post(f"/v1/instances/{instance_id}/abort")
    assert resp.status_code == 202 and resp.json()["status"] == "MIGRATING"
    cluster.hv["sim-a"].guest_acks("vm1")
    guest.guest_answers_unplug = True
    cluster.run("sim-a")  # aborted: back ACTIVE here
    view = _instance(admin, instance_id)
    assert (view["status"], view["host"]) == ("ACTIVE", "sim-a")
    assert view["last_error"] == "migration failed: aborted by an operator"
    cluster.run("sim-a", "sim-b")
    assert _live(cluster, "sim-a") == [("hostdev", f"ua-vfk-{direct}")]
    assert cluster.agents["sim-b"].reconciler.journal.load().records == {}
    assert admin.post(f"/v1/instances/{instance_id}/abort").status_code == 409
    _no_violations(app)


def test_abort_a_suspend_that_cannot_finish(admin: httpx.Client, cluster: Cluster) -> None:
    instance_id, _ = _boot(admin, "direct")
    cluster.run("sim-a")
    cluster.hv["sim-a"].domains["vm1"].guest_answers_unplug = False
    admin.post(f"/v1/instances/{instance_id}/suspend")
    cluster.run("sim-a")
    assert _instance(admin, instance_id)["status"] == "SUSPENDING"
    admin.post(f"/v1/instances/{instance_id}/abort")
    cluster.run("sim-a")
    view = _instance(admin, instance_id)
    assert (view["status"], view["last_error"]) == ("ACTIVE", "suspend aborted by an operator")
    assert cluster.hv["sim-a"].domains["vm1"].state.active


@pytest.mark.parametrize("trouble", ["disabled", "silent"])
def test_no_migration_to_a_host_that_cannot_take_it(admin: httpx.Client, cluster: Cluster,
                                                    clock: ManualClock, trouble: str) -> None:
    """Also for an instance without SR-IOV ports, which the scheduler never sees."""
    instance_id, _ = _boot(admin, "normal")
    if trouble == "disabled":
        resp = admin.patch("/v1/hosts/sim-b", json={"enabled": False,
                                                    "disabled_reason": "maintenance"})
        assert resp.status_code == 200, resp.text
    else:
        from datetime import timedelta

        clock.now += timedelta(seconds=120)
        cluster.agents["sim-a"].heartbeat()
    resp = admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    assert resp.status_code == 409, resp.text
    assert ("disabled (maintenance)" if trouble == "disabled" else "agent is silent") in resp.text


def test_a_shut_off_domain_fails_before_anything_is_unplugged(
        admin: httpx.Client, cluster: Cluster) -> None:
    instance_id, (direct,) = _boot(admin, "direct")
    cluster.run("sim-a")
    cluster.hv["sim-a"].destroy("vm1")
    admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    cluster.run("sim-a")
    view = _instance(admin, instance_id)
    assert (view["status"], view["host"]) == ("ACTIVE", "sim-a")
    assert "domain vm1 is not running: only a running domain is live-migrated" in (
        view["last_error"])
    assert [d.alias for d in cluster.hv["sim-a"].domains["vm1"].config] == [f"ua-vfk-{direct}"]


def test_no_hot_plug_and_delete_frees_both_sides_while_migrating(
        app: FastAPI, admin: httpx.Client, cluster: Cluster) -> None:
    instance_id, (direct,) = _boot(admin, "direct")
    admin.post(f"/v1/instances/{instance_id}/migrate", json={"host": "sim-b"})
    spare = _port(admin, "direct")
    resp = admin.post(f"/v1/instances/{instance_id}/ports", json={"port_id": spare})
    assert resp.status_code == 409 and "MIGRATING" in resp.text
    resp = admin.delete(f"/v1/instances/{instance_id}/ports/{direct}")
    assert resp.status_code == 409
    assert admin.delete(f"/v1/instances/{instance_id}").status_code == 204
    for host in HOSTS:
        [pool] = admin.get("/v1/pools", params={"host": host}).json()
        assert pool["used"] == 0, host
    _no_violations(app)


# --- suspend and resume ------------------------------------------------------------------------


def test_suspend_unplugs_saves_and_resume_replugs(app: FastAPI, admin: httpx.Client,
                                                  cluster: Cluster) -> None:
    instance_id, (direct, macvtap) = _boot(admin, "direct", "macvtap")
    cluster.run("sim-a")
    device = _devices(app, admin, instance_id)[direct]
    resp = admin.post(f"/v1/instances/{instance_id}/suspend")
    assert resp.status_code == 202 and resp.json()["status"] == "SUSPENDING"
    cluster.run("sim-a")
    dom = cluster.hv["sim-a"].domains["vm1"]
    assert dom.managed_save and not dom.state.active
    assert [d.alias for d in dom.saved_live] == [f"ua-vfk-{macvtap}"]  # macvtap saved as is
    assert cluster.vf("sim-a", device) == ("00:00:00:00:00:00", 0)
    view = _instance(admin, instance_id)
    assert view["status"] == "SUSPENDED"
    assert _devices(app, admin, instance_id)[direct] == device  # still claimed for it
    cluster.run("sim-a")
    port = admin.get(f"/v1/ports/{direct}").json()
    assert (port["status"], port["actual"]["phase"]) == ("DOWN", "unplugged")

    assert admin.post(f"/v1/instances/{instance_id}/suspend").status_code == 409
    resp = admin.post(f"/v1/instances/{instance_id}/resume")
    assert resp.status_code == 202 and resp.json()["status"] == "RESUMING"
    cluster.run("sim-a")  # restores the domain
    assert _instance(admin, instance_id)["status"] == "ACTIVE"
    cluster.run("sim-a")  # plugs the port back in
    assert _live(cluster, "sim-a") == [("direct", f"ua-vfk-{macvtap}"),
                                       ("hostdev", f"ua-vfk-{direct}")]
    assert admin.get(f"/v1/ports/{direct}").json()["status"] == "ACTIVE"
    _no_violations(app)


def test_suspend_without_detaching_names_the_ports(admin: httpx.Client,
                                                   cluster: Cluster) -> None:
    instance_id, (direct, _macvtap) = _boot(admin, "direct", "macvtap")
    resp = admin.post(f"/v1/instances/{instance_id}/suspend", json={"detach_devices": False})
    assert resp.status_code == 409
    error = resp.json()["error"]
    assert error["details"]["ports"] == [direct]
    assert f"{direct} (direct)" in error["message"]
    assert _instance(admin, instance_id)["status"] == "ACTIVE"


def test_a_refused_save_ends_the_task_with_libvirts_reason(admin: httpx.Client,
                                                           cluster: Cluster) -> None:
    """A PCI function vfkeeper does not manage blocks the save: the instance is ACTIVE again
    with the reason, and its ports are plugged back in."""
    instance_id, (direct,) = _boot(admin, "direct")
    cluster.run("sim-a")
    hv = cluster.hv["sim-a"]
    hv.attach("vm1", "<hostdev mode='subsystem' type='pci' managed='yes'><source><address "
              "domain='0x0000' bus='0x00' slot='0x1f' function='0x6'/></source></hostdev>",
              live=True, config=False)
    admin.post(f"/v1/instances/{instance_id}/suspend")
    cluster.run("sim-a")
    view = _instance(admin, instance_id)
    assert view["status"] == "ACTIVE"
    assert "cannot save domain 'vm1' while it holds PCI passthrough" in view["last_error"]
    cluster.run("sim-a")
    assert ("hostdev", f"ua-vfk-{direct}") in _live(cluster, "sim-a")


# --- the CLI -----------------------------------------------------------------------------------


def _cli(app: FastAPI, transport: Callable[[Any], Any], *args: str) -> Any:
    from typer.testing import CliRunner

    from vfkeeper.cli.main import build_app

    return CliRunner().invoke(build_app(), [*args, "--controller", "http://vfk", "--token",
                                            token(app, "admin")],
                              obj={"transport": transport(app)})


def test_migrate_and_suspend_through_the_cli_waiting_for_the_end(
        app: FastAPI, admin: httpx.Client, cluster: Cluster,
        asgi_transport: Callable[[Any], Any]) -> None:
    """``--wait`` prints each change of the task while the agents work (here in a thread),
    then the instance; a usage error names both ways to call ``migrate``."""
    import threading

    instance_id, _ = _boot(admin, "direct")
    cluster.run("sim-a")
    bad = _cli(app, asgi_transport, "instance", "migrate", instance_id)
    assert bad.exit_code == 2 and "give --to HOST to migrate, or --abort" in bad.output

    stop = threading.Event()

    def agents() -> None:
        while not stop.wait(0.05):
            cluster.run("sim-b", "sim-a")

    worker = threading.Thread(target=agents)
    worker.start()
    try:
        moved = _cli(app, asgi_transport, "instance", "migrate", instance_id, "--to", "sim-b",
                     "--wait")
        saved = _cli(app, asgi_transport, "instance", "suspend", instance_id, "--wait")
    finally:
        stop.set()
        worker.join()
    assert moved.exit_code == 0, moved.output
    assert moved.output.startswith("MIGRATING")
    assert "host: sim-b" in moved.output and "status: ACTIVE" in moved.output
    assert saved.exit_code == 0, saved.output
    assert "status: SUSPENDED" in saved.output
    refused = _cli(app, asgi_transport, "instance", "migrate", instance_id, "--to", "sim-a")
    assert refused.exit_code == 1
    assert "it is SUSPENDED, and only an ACTIVE instance can be" in refused.output


def _operator(admin: httpx.Client, booted: list[str], errors: list[str], seed: int) -> None:
    """Twelve random task requests (or deletes) on the booted instances; server errors kept."""
    import random

    rng = random.Random(seed)
    for _ in range(12):
        instance_id = rng.choice(booted)
        view = admin.get(f"/v1/instances/{instance_id}")
        if view.status_code == 404:
            continue
        other = "sim-b" if view.json()["host"] == "sim-a" else "sim-a"
        method, path, body = rng.choice([
            ("POST", "migrate", {"host": other}), ("POST", "abort", None),
            ("POST", "suspend", None), ("POST", "resume", None), ("DELETE", "", None)])
        url = f"/v1/instances/{instance_id}" + (f"/{path}" if path else "")
        resp = admin.request(method, url, json=body)
        if resp.status_code >= 500:
            errors.append(f"{method} {url}: {resp.status_code} {resp.text[:300]}")


def test_tasks_deletes_and_reports_racing_keep_every_invariant(
        app: FastAPI, admin: httpx.Client, cluster: Cluster) -> None:
    """Migrations, aborts, suspends, resumes, deletes and both agents' passes from parallel
    threads: no request fails with a server error (a deadlock would), and the store keeps
    every invariant. On PostgreSQL the writes really interleave."""
    import threading

    booted = []
    for _ in range(3):
        for host in HOSTS:
            booted.append(_boot(admin, "direct", host=host)[0])
    errors: list[str] = []
    stop = threading.Event()

    def agents() -> None:
        while not stop.is_set():
            try:
                cluster.run("sim-a", "sim-b")
            except Exception as exc:
                errors.append(f"agent pass: {exc!r}")

    threads = [threading.Thread(target=_operator, args=(admin, booted, errors, seed))
               for seed in range(3)]
    worker = threading.Thread(target=agents)
    worker.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    worker.join()
    assert errors == []
    _no_violations(app)
