"""An in-process controller per test, on SQLite and on PostgreSQL, and host inventories shaped
on real NICs (Mellanox ConnectX-5, Ethernet or InfiniBand)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.domain.inventory import Device, HostInventory, IbDevice, IbPort, Netdev


@pytest.fixture
def app(migrated_db_url: str) -> Iterator[FastAPI]:
    application = create_app(ControllerSettings(db_url=migrated_db_url), seed=1)
    yield application
    application.state.ctx.db.dispose()


MLX5_VENDOR, CX5_PF, CX5_VF = "15b3", "1017", "1018"


def _pf(bus: int, numa: int, vfs: int, ib: bool) -> Device:
    addr = f"0000:{bus:02x}:00.0"
    link = "infiniband" if ib else "ethernet"
    return Device(
        address=addr, vendor_id=MLX5_VENDOR, product_id=CX5_PF, dev_type="type-PF",
        sriov_totalvfs=vfs, sriov_numvfs=vfs, driver="mlx5_core", bus_info=addr,
        numa_node=numa, link_type=link,
        netdevs=(Netdev(name=f"{'ib' if ib else 'enp'}{bus}s0", mac=f"b8:ce:f6:00:{bus:02x}:00",
                        mtu=1500, operstate="up", speed_mbps=100000, link_type=link),),
        infiniband=IbDevice(name=f"mlx5_{bus}", node_guid=f"0x0002c90300{bus:02x}0000",
                            ports=(IbPort(number=1, pkeys=("0xffff",)),)) if ib else None,
    )


def _vf(bus: int, numa: int, index: int, ib: bool) -> Device:
    slot, func = divmod(index + 1, 8)
    addr = f"0000:{bus:02x}:{slot:02x}.{func}"
    link = "infiniband" if ib else "ethernet"
    return Device(
        address=addr, vendor_id=MLX5_VENDOR, product_id=CX5_VF, dev_type="type-VF",
        parent_addr=f"0000:{bus:02x}:00.0", vf_index=index, driver="mlx5_core", bus_info=addr,
        numa_node=numa, link_type=link,
        netdevs=(Netdev(name=f"enp{bus}s0v{index}", mac=f"b8:ce:f6:01:{bus:02x}:{index:02x}",
                        link_type=link),),
    )


def host_inventory(
    name: str, pfs: tuple[tuple[int, int, bool], ...] = ((3, 0, False), (0x81, 1, False)),
    vfs: int = 4,
) -> HostInventory:
    """A host with one ConnectX-5 PF per ``(bus, numa_node, infiniband)`` and ``vfs`` VFs each."""
    devices: list[Device] = []
    for bus, numa, ib in pfs:
        devices.append(_pf(bus, numa, vfs, ib))
        devices.extend(_vf(bus, numa, i, ib) for i in range(vfs))
    return HostInventory(hostname=name, devices=tuple(devices))


def inventory_json(name: str, **kw: Any) -> dict[str, Any]:
    return host_inventory(name, **kw).model_dump(mode="json")


@pytest.fixture
def inventory() -> Callable[..., dict[str, Any]]:
    """``inventory(name, pfs=((bus, numa, ib), ...), vfs=N)`` -> an inventory document."""
    return inventory_json


def make_token(app: FastAPI, role: str) -> str:
    with app.state.ctx.db.write() as s:
        return create_token(s, role, f"test {role}")


def client_for(app: FastAPI, token: str | None, transport: Callable[[Any], Any]) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(transport=transport(app), base_url="http://vfkeeper", headers=headers)


@pytest.fixture
def client(
    app: FastAPI, asgi_transport: Callable[[Any], Any]
) -> Callable[[str | None], httpx.Client]:
    """``client(role)`` -> a client with a fresh token of that role (``None``: no token)."""

    def make(role: str | None) -> httpx.Client:
        return client_for(app, make_token(app, role) if role else None, asgi_transport)

    return make


@pytest.fixture
def vlan_cluster(api: httpx.Client) -> httpx.Client:
    """``api`` on hosts host-a, host-b and host-c (two ConnectX-5 PFs of 2 VFs each, all on
    physnet1) with network ``n1`` (VLAN 7)."""
    for name in ("host-a", "host-b", "host-c"):
        assert api.put(f"/v1/hosts/{name}/inventory", json=inventory_json(name, vfs=2)
                       ).is_success
    assert api.put("/v1/device-specs", json={"entries": [
        {"vendor_id": "15b3", "physical_network": "physnet1"}]}).is_success
    assert api.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                          "segmentation": {"type": "vlan", "id": 7}}).is_success
    return api


@pytest.fixture
def api(client: Callable[[str | None], httpx.Client]) -> Iterator[httpx.Client]:
    """A client holding an admin token."""
    with client("admin") as c:
        yield c
