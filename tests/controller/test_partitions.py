"""The partition reconciler with the in-memory subnet manager (``FakeSubnetManager``, which
passes the same contract suite as the OpenSM and UFM backends), through the API, on SQLite and
PostgreSQL: a booted InfiniBand port's GUID becomes a member of its network's PKey, the port is
``BUILD`` until then, its GUID leaves on delete before it can be reused, restarts find strays
and lost members, an SM that is down is backed off from."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI

from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.partition_reconciler import PartitionReconciler
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.sm.fake import FakeSubnetManager
from vfkeeper.sm.protocol import ApplyResult, ChangeSet, Partition

FULL, LIMITED, OPERATOR = 0x0A01, 0x0A02, 0x0B00
GUID_1, GUID_2 = "0x0002c90300a1b201", "0x0002c90300a1b202"
STRAY = "0x0002c90300ffff01"


def make_token(app: FastAPI, role: str) -> str:
    with app.state.ctx.db.write() as s:
        return create_token(s, role, f"test {role}")


def client_for(app: FastAPI, token: str, transport: Callable[[Any], Any]) -> httpx.Client:
    return httpx.Client(transport=transport(app), base_url="http://vfkeeper",
                        headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def sm() -> FakeSubnetManager:
    return FakeSubnetManager([Partition(OPERATOR, {"0x0002c90300000001": "full"})])


@pytest.fixture
def ib_app(migrated_db_url: str, sm: FakeSubnetManager) -> Iterator[FastAPI]:
    application = create_app(ControllerSettings(db_url=migrated_db_url), seed=1,
                             subnet_manager=sm)
    yield application
    application.state.ctx.db.dispose()


@pytest.fixture
def ib(ib_app: FastAPI, asgi_transport: Callable[[Any], Any],
       inventory: Callable[..., dict[str, Any]]) -> Iterator[httpx.Client]:
    """An admin client on a controller with hosts ib-1 and ib-2 (one InfiniBand ConnectX-5 PF
    of 2 VFs each) and networks ``full`` (0x0a01, full members) and ``limited`` (0x0a02)."""
    with client_for(ib_app, make_token(ib_app, "admin"), asgi_transport) as api:
        for name in ("ib-1", "ib-2"):
            doc = inventory(name, pfs=((3, 0, True),), vfs=2)
            assert api.put(f"/v1/hosts/{name}/inventory", json=doc).is_success
        assert api.put("/v1/device-specs", json={"entries": [
            {"vendor_id": "15b3", "physical_network": "fabric"}]}).is_success
        for net, pkey, full in (("full", FULL, True), ("limited", LIMITED, False)):
            made = api.post("/v1/networks", json={
                "name": net, "physical_network": "fabric",
                "segmentation": {"type": "pkey", "id": pkey, "full_membership": full}})
            assert made.status_code == 201, made.text
        yield api


def reconciler(app: FastAPI) -> PartitionReconciler:
    result: PartitionReconciler = app.state.ctx.partitions
    return result


def boot(api: httpx.Client, network: str, guid: str | None = None,
         name: str = "vm") -> tuple[dict[str, Any], dict[str, Any]]:
    """(instance, port) after a boot whose agent reported the port ACTIVE."""
    body: dict[str, Any] = {"network": network, **({"guid": guid} if guid else {})}
    port = api.post("/v1/ports", json=body)
    assert port.status_code == 201, port.text
    inst = api.post("/v1/instances", json={"name": name, "ports": [port.json()["id"]]})
    assert inst.status_code == 201, inst.text
    host = inst.json()["host"]
    assert api.post(f"/v1/hosts/{host}/heartbeat").status_code == 204
    desired = api.get(f"/v1/hosts/{host}/desired-state").json()
    report = {"host": host, "desired_generation": desired["generation"], "ports": [
        {"port_id": vf["port_id"], "address": vf["address"], "phase": "attached",
         "status": "ACTIVE"} for vf in desired["vfs"]]}
    assert api.put(f"/v1/hosts/{host}/actual-state", json=report).is_success
    return inst.json(), api.get(f"/v1/ports/{port.json()['id']}").json()


def test_a_booted_port_is_build_until_its_guid_is_a_member(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    _, port = boot(ib, "full", GUID_1)
    assert port["status"] == "BUILD"  # the agent says ACTIVE, the SM does not have it yet
    assert port["partition"] == {"pkey": "0x0a01", "membership": "full",
                                 "state": "pending_add", "error": None}
    assert sm.read().members_of(FULL) == {}

    report = reconciler(ib_app).run_pass()
    assert (report.ran, report.added, report.pending) == (True, 1, 0)
    assert sm.read().members_of(FULL) == {GUID_1: "full"}
    port = ib.get(f"/v1/ports/{port['id']}").json()
    assert port["status"] == "ACTIVE"
    assert port["partition"]["state"] == "member"


def test_many_boots_reach_the_sm_in_one_batch_with_the_networks_membership(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    boot(ib, "full", name="a")
    boot(ib, "limited", name="b")
    boot(ib, "limited", name="c")
    reconciler(ib_app).run_pass()
    assert len(sm.batches) == 1
    view = sm.read()
    assert list(view.members_of(FULL).values()) == ["full"]
    assert sorted(view.members_of(LIMITED).values()) == ["limited", "limited"]
    listed = {p["pkey"]: p for p in ib.get("/v1/partitions").json()["partitions"]}
    assert listed["0x0a02"]["members"]["member"] == 2
    assert listed["0x0a02"]["networks"] == ["limited"]


def test_on_delete_the_guid_leaves_before_it_can_be_reused(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    inst, port = boot(ib, "full", GUID_1)
    reconciler(ib_app).run_pass()
    assert ib.delete(f"/v1/instances/{inst['id']}").status_code == 204
    assert ib.delete(f"/v1/ports/{port['id']}").status_code == 204
    sm.make_unavailable()
    reconciler(ib_app).run_pass()  # cannot reach the SM: the GUID stays leaving
    refused = ib.post("/v1/ports", json={"network": "limited", "guid": GUID_1})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "guid_leaving_partition"
    assert "still leaving partition 0x0a01" in refused.json()["error"]["message"]
    shown = ib.get("/v1/partitions/0x0a01").json()
    assert [(m["guid"], m["state"]) for m in shown["wanted"]] == [(GUID_1, "pending_remove")]
    assert "connection refused" in shown["wanted"][0]["error"]

    sm.make_available()
    report = reconciler(ib_app).run_pass()
    assert report.removed == 1
    assert sm.read().members_of(FULL) == {}
    again = ib.post("/v1/ports", json={"network": "limited", "guid": GUID_1})
    assert again.status_code == 201, again.text


def test_an_unavailable_sm_is_backed_off_and_ports_stay_build(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    _, port = boot(ib, "full", GUID_1)
    rec = reconciler(ib_app)
    sm.make_unavailable("connection refused by fake SM")
    waits = []
    for _ in range(4):
        report = rec.run_pass()
        assert report.error is not None and "unavailable" in report.error
        waits.append(rec.backoff_s())
    assert waits == [1.0, 2.0, 4.0, 8.0]
    shown = ib.get(f"/v1/ports/{port['id']}").json()
    assert shown["status"] == "BUILD"
    assert "connection refused by fake SM" in shown["partition"]["error"]
    assert ib.get("/v1/partitions/0x0a01").json()["wanted"][0]["attempts"] == 4

    sm.make_available()
    assert rec.run_pass().added == 1
    assert rec.backoff_s() == rec.poll_interval_s
    assert ib.get(f"/v1/ports/{port['id']}").json()["status"] == "ACTIVE"


def test_a_full_sync_removes_strays_and_re_adds_what_the_sm_lost(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    boot(ib, "full", GUID_1, name="a")
    boot(ib, "limited", GUID_2, name="b")
    rec = reconciler(ib_app)
    rec.run_pass()
    # what a controller restarted on an older database finds: a GUID no allocation explains
    # in one of vfkeeper's partitions, and a member the SM forgot
    sm.apply(ChangeSet(add={FULL: {STRAY: "full"}}))
    sm.lose(LIMITED, GUID_2)

    synced = ib.post("/v1/partitions/sync")
    assert synced.status_code == 200, synced.text
    body = synced.json()
    assert body["full"] is True
    assert any(STRAY in d and "no allocation needs it" in d for d in body["differences"])
    assert any(GUID_2 in d and "not at all" in d for d in body["differences"])
    assert (body["added"], body["removed"]) == (1, 1)
    assert sm.read().members_of(FULL) == {GUID_1: "full"}
    assert sm.read().members_of(LIMITED) == {GUID_2: "limited"}
    assert sm.read().members_of(OPERATOR) == {"0x0002c90300000001": "full"}  # untouched


def test_partition_show_reports_the_difference_with_the_sm(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    boot(ib, "full", GUID_1)
    shown = ib.get("/v1/partitions/a01").json()
    assert shown["pkey"] == "0x0a01"
    assert shown["networks"] == ["full"]
    assert shown["subnet_manager"]["exists"] is False
    assert shown["differences"] == [f"{GUID_1}: wanted as a full member, the SM has it not "
                                    "at all"]
    reconciler(ib_app).run_pass()
    shown = ib.get("/v1/partitions/0x0a01").json()
    assert shown["subnet_manager"]["members"] == [{"guid": GUID_1, "membership": "full"}]
    assert shown["differences"] == []
    assert ib.get("/v1/partitions/0x8a01").status_code == 422


def test_an_operator_owned_pkey_is_refused_unless_the_network_is_shared(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    net = {"name": "op", "physical_network": "fabric",
           "segmentation": {"type": "pkey", "id": OPERATOR}}
    refused = ib.post("/v1/networks", json=net)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "operator_partition"
    assert "mark it shared" in refused.json()["error"]["message"]
    net["segmentation"] = {**net["segmentation"], "shared": True}  # type: ignore[dict-item]
    made = ib.post("/v1/networks", json=net)
    assert made.status_code == 201, made.text
    assert made.json()["segmentation"]["shared"] is True
    _, port = boot(ib, "op", GUID_1)
    reconciler(ib_app).run_pass()
    # managed outside vfkeeper: recorded and shown, never sent, not waited for
    assert port["partition"]["state"] == "external"
    assert port["status"] == "ACTIVE"
    assert sm.batches == []


def test_an_sm_that_cannot_be_asked_refuses_a_new_pkey_network_with_503(
        ib: httpx.Client, sm: FakeSubnetManager) -> None:
    sm.make_unavailable()
    made = ib.post("/v1/networks", json={"name": "x", "physical_network": "fabric",
                                         "segmentation": {"type": "pkey", "id": 0x0C00}})
    assert made.status_code == 503
    assert "not created" in made.json()["error"]["message"]
    assert ib.get("/v1/networks/x").status_code == 404


def test_with_the_none_backend_membership_is_shown_not_waited_for(
        app: FastAPI, api: httpx.Client, inventory: Callable[..., dict[str, Any]]) -> None:
    assert api.put("/v1/hosts/ib-1/inventory", json=inventory(
        "ib-1", pfs=((3, 0, True),), vfs=2)).is_success
    assert api.put("/v1/device-specs", json={"entries": [
        {"vendor_id": "15b3", "physical_network": "fabric"}]}).is_success
    assert api.post("/v1/networks", json={"name": "full", "physical_network": "fabric",
                                          "segmentation": {"type": "pkey", "id": FULL}}
                    ).status_code == 201
    _, port = boot(api, "full", GUID_1)
    report = reconciler(app).run_pass()
    assert report.ran and report.batches == 0
    port = api.get(f"/v1/ports/{port['id']}").json()
    assert port["partition"] == {"pkey": "0x0a01", "membership": "limited",
                                 "state": "external", "error": None}
    assert port["status"] == "ACTIVE"
    listed = api.get("/v1/partitions").json()
    assert listed["subnet_manager"]["backend"] == "none"


def test_sync_needs_an_admin(ib_app: FastAPI, ib: httpx.Client,
                             asgi_transport: Callable[[Any], Any]) -> None:
    with client_for(ib_app, make_token(ib_app, "viewer"), asgi_transport) as viewer:
        assert viewer.get("/v1/partitions").status_code == 200
        assert viewer.post("/v1/partitions/sync").status_code == 403


class BlockingSm(FakeSubnetManager):
    """Holds each batch until the test lets it go, so a second replica's pass can run while
    the first one is in the middle of driving the SM."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.go = threading.Event()

    def apply(self, changes: ChangeSet) -> ApplyResult:
        self.entered.set()
        assert self.go.wait(30)
        return super().apply(changes)


def test_of_two_controller_replicas_only_one_drives_the_sm(
        ib: httpx.Client, migrated_db_url: str,
        asgi_transport: Callable[[Any], Any]) -> None:
    boot(ib, "full", GUID_1)
    first_sm, second_sm = BlockingSm(), FakeSubnetManager()
    first = create_app(ControllerSettings(db_url=migrated_db_url), subnet_manager=first_sm)
    second = create_app(ControllerSettings(db_url=migrated_db_url), subnet_manager=second_sm)
    try:
        with ThreadPoolExecutor(1) as pool:
            running = pool.submit(reconciler(first).run_pass, full=True)
            assert first_sm.entered.wait(30)
            skipped = reconciler(second).run_pass(full=True)
            first_sm.go.set()
            done = running.result(30)
        assert skipped.ran is False
        assert second_sm.batches == []
        assert (done.ran, done.added) == (True, 1)
        with client_for(second, make_token(second, "admin"), asgi_transport) as other:
            first_sm.go.clear()
            first_sm.entered.clear()
            boot(ib, "limited", GUID_2, name="vm-2")  # something for the first to send
            with ThreadPoolExecutor(1) as pool:
                running = pool.submit(reconciler(first).run_pass, full=True)
                assert first_sm.entered.wait(30)
                refused = other.post("/v1/partitions/sync")
                first_sm.go.set()
                running.result(30)
            assert refused.status_code == 409
            assert refused.json()["error"]["code"] == "partition_sync_elsewhere"
        assert reconciler(second).run_pass().ran is True  # the lock is free again
    finally:
        first.state.ctx.db.dispose()
        second.state.ctx.db.dispose()


def test_the_reconciler_runs_in_the_background_while_the_app_serves(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    boot(ib, "full", GUID_1)
    rec = reconciler(ib_app)

    async def serve_until_member() -> None:
        async with ib_app.router.lifespan_context(ib_app):
            assert rec.status()["running"] is True
            with anyio.fail_after(30):
                while sm.read().members_of(FULL) != {GUID_1: "full"}:
                    rec.poke()
                    await anyio.sleep(0.05)

    anyio.run(serve_until_member)
    assert rec.status()["running"] is False  # stopped with the app
    assert ib.get("/v1/partitions").json()["subnet_manager"]["last_pass"]["ran"] is True


def test_a_released_vf_stays_releasing_until_its_old_guid_left_the_partition(
        ib: httpx.Client, ib_app: FastAPI, sm: FakeSubnetManager) -> None:
    inst, port = boot(ib, "full", GUID_1)
    reconciler(ib_app).run_pass()
    host = inst["host"]
    assert ib.delete(f"/v1/instances/{inst['id']}").status_code == 204
    sm.make_unavailable()
    reconciler(ib_app).run_pass()  # the SM cannot be told: the GUID is still a member

    def report() -> list[dict[str, Any]]:
        desired = ib.get(f"/v1/hosts/{host}/desired-state").json()
        assert ib.put(f"/v1/hosts/{host}/actual-state", json={
            "host": host, "desired_generation": desired["generation"], "ports": []}).is_success
        return list(ib.get(f"/v1/hosts/{host}").json()["releasing"])

    held = report()  # the agent has given the VF back, but its old GUID is still in 0x0a01
    assert [r["port_id"] for r in held] == [port["id"]]
    shown = ib.get("/v1/partitions/0x0a01").json()
    assert [(m["guid"], m["state"]) for m in shown["wanted"]] == [(GUID_1, "pending_remove")]
    sm.make_available()
    reconciler(ib_app).run_pass()
    assert sm.read().members_of(FULL) == {}
    assert report() == []  # out of the partition: the next report frees the VF
