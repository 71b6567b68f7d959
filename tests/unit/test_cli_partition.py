"""``vfkeeper partition list|show|sync`` and ``network create --shared``, through typer's
runner against an in-process controller whose subnet manager is the in-memory fake."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from vfkeeper.cli.main import build_app
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.domain.inventory import Device, HostInventory, IbDevice, IbPort
from vfkeeper.sm.fake import FakeSubnetManager
from vfkeeper.sm.protocol import Partition

Run = Callable[..., Any]
GUID = "0x0002c90300a1b2c3"


def _ib_inventory(name: str) -> dict[str, Any]:
    pf = Device(address="0000:03:00.0", vendor_id="15b3", product_id="1017", dev_type="type-PF",
                sriov_totalvfs=2, driver="mlx5_core", bus_info="0000:03:00.0", numa_node=0,
                link_type="infiniband",
                infiniband=IbDevice(name="mlx5_0", node_guid="0x0002c90300000000",
                                    ports=(IbPort(number=1, pkeys=("0xffff",)),)))
    vfs = [Device(address=f"0000:03:00.{i + 1}", vendor_id="15b3", product_id="1018",
                  dev_type="type-VF", parent_addr="0000:03:00.0", vf_index=i, numa_node=0,
                  link_type="infiniband") for i in range(2)]
    return HostInventory(hostname=name, devices=(pf, *vfs)).model_dump(mode="json")


@pytest.fixture
def sm() -> FakeSubnetManager:
    return FakeSubnetManager([Partition(0x0B00, {"0x0002c90300000001": "full"})])


@pytest.fixture
def run(tmp_path: Path, asgi_transport: Callable[[Any], Any],
        sm: FakeSubnetManager) -> Iterator[Run]:
    """``run(*args)``: the CLI against a controller with one InfiniBand host, network ``ib``
    (PKey 0x0a01, full members) and one instance on it holding GUID :data:`GUID`."""
    app = create_app(ControllerSettings(db_url=f"sqlite:///{tmp_path / 'c.sqlite'}"), seed=3,
                     subnet_manager=sm)
    with app.state.ctx.db.write() as s:
        token = create_token(s, "admin", "cli test")
    transport = asgi_transport(app)
    with httpx.Client(transport=transport, base_url="http://t",
                      headers={"Authorization": f"Bearer {token}"}) as api:
        api.put("/v1/hosts/h1/inventory", json=_ib_inventory("h1")).raise_for_status()
        api.put("/v1/device-specs", json={"entries": [
            {"vendor_id": "15b3", "physical_network": "fabric"}]}).raise_for_status()
        api.post("/v1/networks", json={"name": "ib", "physical_network": "fabric", "segmentation": {
            "type": "pkey", "id": 0x0A01, "full_membership": True}}).raise_for_status()
        port = api.post("/v1/ports", json={"network": "ib", "guid": GUID}).json()
        api.post("/v1/instances", json={"name": "vm", "ports": [port["id"]]}).raise_for_status()

    def invoke(*args: str, code: int = 0) -> Any:
        result = CliRunner().invoke(build_app(), [*args, "--token", token],
                                    obj={"transport": transport})
        assert result.exit_code == code, result.output
        return result

    yield invoke
    app.state.ctx.db.dispose()


def test_list_show_and_sync_say_what_is_wanted_what_the_sm_has_and_the_difference(
        run: Run, sm: FakeSubnetManager) -> None:
    listed = run("partition", "list").stdout
    assert "subnet manager: fake" in listed
    assert "0x0a01" in listed and "ib" in listed

    before = run("partition", "show", "a01").stdout
    assert f"{GUID}: wanted as a full member, the SM has it not at all" in before
    assert "pending_add" in before

    synced = run("partition", "sync").stdout
    assert "added 1, removed 0, still pending 0, batches sent 1" in synced
    assert sm.read().members_of(0x0A01) == {GUID: "full"}

    after = run("partition", "show", "0x0a01").stdout
    assert "differences: none" in after
    assert "member" in after


def test_a_pkey_that_is_no_pkey_is_a_usage_error(run: Run) -> None:
    for bad in ("0x8a01", "zz", "12345"):
        result = run("partition", "show", bad, code=2)
        assert "is not a PKey" in result.output


def test_an_operator_pkey_needs_shared_at_network_create(run: Run) -> None:
    args = ("network", "create", "op", "--physical-network", "fabric", "--type", "pkey",
            "--id", "0x0b00")
    refused = run(*args, code=1)
    assert "defined outside vfkeeper" in refused.output and "mark it shared" in refused.output
    made = run(*args, "--shared").stdout
    assert "pkey 0x0b00 (limited member, shared)" in made
