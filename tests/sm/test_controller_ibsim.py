"""End to end on the real OpenSM and a simulated fabric (ibsim): the controller's partition
reconciler with the OpenSM backend. Ports booted through the API with requested GUIDs (each a
simulated HCA port) stay ``BUILD`` until the reconciler has put them in their network's PKey,
``smpquery pkeys`` then shows exactly the PKeys each port needs with the right membership bit,
and a delete takes them out again; a GUID left in vfkeeper's file that no allocation explains
is removed by the next full sync, as after a controller restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from ibsim_fabric import PORT_GUIDS, Fabric

from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.partition_reconciler import PartitionReconciler
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.domain.inventory import Device, HostInventory, IbDevice, IbPort
from vfkeeper.sm.opensm import OpenSmBackend, install_atomically
from vfkeeper.sm.opensm_tools import SignalReload, SmpqueryReadback
from vfkeeper.sm.partitions_file import render
from vfkeeper.sm.protocol import ChangeSet

pytestmark = pytest.mark.ibsim

P = PORT_GUIDS
FULL, LIMITED = 0x0A01, 0x0A02
INITIAL_PARTITIONS = render("", [])


def _inventory(name: str, vfs: int) -> dict[str, Any]:
    pf = Device(address="0000:03:00.0", vendor_id="15b3", product_id="1017", dev_type="type-PF",
                sriov_totalvfs=vfs, driver="mlx5_core", bus_info="0000:03:00.0", numa_node=0,
                link_type="infiniband",
                infiniband=IbDevice(name="mlx5_0", node_guid="0x0002c90300000000",
                                    ports=(IbPort(number=1, pkeys=("0xffff",)),)))
    devices = [pf, *(Device(address=f"0000:03:00.{i + 1}", vendor_id="15b3", product_id="1018",
                            dev_type="type-VF", parent_addr="0000:03:00.0", vf_index=i,
                            numa_node=0, link_type="infiniband") for i in range(vfs))]
    return HostInventory(hostname=name, devices=tuple(devices)).model_dump(mode="json")


def _backend(fabric: Fabric) -> OpenSmBackend:
    return OpenSmBackend(fabric.partitions_file, None, SignalReload(fabric.pidfile),
                         SmpqueryReadback(fabric.runner))


@pytest.fixture
def controller(fabric: Fabric, tmp_path: Path,
               asgi_transport: Any) -> Iterator[tuple[FastAPI, httpx.Client]]:
    """A controller on a fresh database, with the fabric back to no tenant partitions."""
    install_atomically(fabric.partitions_file, INITIAL_PARTITIONS)
    fabric.hup()
    assert fabric.wait_for_tables(_tables({})) == _tables({})
    app = create_app(ControllerSettings(db_url=f"sqlite:///{tmp_path / 'c.sqlite'}"), seed=2,
                     subnet_manager=_backend(fabric))
    with app.state.ctx.db.write() as s:
        token = create_token(s, "admin", "ibsim test")
    with httpx.Client(transport=asgi_transport(app), base_url="http://t",
                      headers={"Authorization": f"Bearer {token}"}) as api:
        api.put("/v1/hosts/h1/inventory", json=_inventory("h1", 4)).raise_for_status()
        api.put("/v1/device-specs", json={"entries": [
            {"vendor_id": "15b3", "physical_network": "fabric"}]}).raise_for_status()
        for net, pkey, full in (("full", FULL, True), ("limited", LIMITED, False)):
            api.post("/v1/networks", json={"name": net, "physical_network": "fabric",
                                           "segmentation": {"type": "pkey", "id": pkey,
                                                            "full_membership": full}}
                     ).raise_for_status()
        yield app, api
    app.state.ctx.db.dispose()


def _boot(api: httpx.Client, network: str, guid: str, name: str) -> tuple[str, str]:
    """(instance id, port id) of a boot whose agent reported its port ACTIVE."""
    port = api.post("/v1/ports", json={"network": network, "guid": guid}).json()["id"]
    inst = api.post("/v1/instances", json={"name": name, "ports": [port]})
    assert inst.status_code == 201, inst.text
    assert api.post("/v1/hosts/h1/heartbeat").status_code == 204
    desired = api.get("/v1/hosts/h1/desired-state").json()
    report = {"host": "h1", "desired_generation": desired["generation"], "ports": [
        {"port_id": vf["port_id"], "address": vf["address"], "phase": "attached",
         "status": "ACTIVE"} for vf in desired["vfs"]]}
    assert api.put("/v1/hosts/h1/actual-state", json=report).is_success
    return inst.json()["id"], port


def _tables(extra: dict[str, set[int]]) -> dict[str, frozenset[int]]:
    return {g: frozenset({0x7FFF} | extra.get(g, set())) for g in P}


def test_booted_ports_join_their_pkeys_on_the_fabric_and_leave_on_delete(
        fabric: Fabric, controller: tuple[FastAPI, httpx.Client]) -> None:
    app, api = controller
    rec: PartitionReconciler = app.state.ctx.partitions
    booted = [_boot(api, "full", P[0], "a"), _boot(api, "limited", P[1], "b"),
              _boot(api, "limited", P[2], "c")]
    ports = [api.get(f"/v1/ports/{port}").json() for _, port in booted]
    assert [p["status"] for p in ports] == ["BUILD"] * 3  # the agent said ACTIVE; the SM not yet
    assert fabric.wait_for_tables(_tables({})) == _tables({})

    report = rec.run_pass()
    assert (report.batches, report.added, report.verified, report.differences) == \
        (1, 3, True, [])
    want = _tables({P[0]: {0x8A01}, P[1]: {0x0A02}, P[2]: {0x0A02}})
    assert fabric.wait_for_tables(want) == want
    assert [api.get(f"/v1/ports/{port}").json()["status"] for _, port in booted] == \
        ["ACTIVE"] * 3

    for inst, _ in booted[:2]:
        assert api.delete(f"/v1/instances/{inst}").status_code == 204
    report = rec.run_pass()
    assert (report.removed, report.verified) == (2, True)
    want = _tables({P[2]: {0x0A02}})
    assert fabric.wait_for_tables(want) == want
    assert P[0] not in fabric.partitions_file.read_text()


def test_a_guid_no_allocation_explains_is_removed_by_the_next_full_sync(
        fabric: Fabric, controller: tuple[FastAPI, httpx.Client]) -> None:
    app, api = controller
    _boot(api, "full", P[4], "kept")
    # a GUID vfkeeper put in its file before the controller lost track of it
    _backend(fabric).apply(ChangeSet(add={LIMITED: {P[5]: "limited"}}))
    rec: PartitionReconciler = app.state.ctx.partitions
    report = rec.run_pass(full=True)
    assert any(P[5] in d and "no allocation needs it" in d for d in report.differences)
    assert (report.added, report.removed) == (1, 1)
    want = _tables({P[4]: {0x8A01}})
    assert fabric.wait_for_tables(want) == want
