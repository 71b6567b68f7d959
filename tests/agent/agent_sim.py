"""A simulated host for agent tests: an inventory, a FakeLinkOps kernel and FakeDomainOps
libvirt that survive an agent "crash" (a new agent is built on the same objects and journal).
``tests/agent/conftest.py`` gives it as the ``host`` fixture."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfkeeper.agent.desired import HostIndex
from vfkeeper.agent.discovery import discover
from vfkeeper.agent.executor import Reconciler, StepHook
from vfkeeper.agent.journal import Journal
from vfkeeper.agent.libvirt.fake import FakeDomainOps
from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
from vfkeeper.agent.main import Agent, AgentConfig, build
from vfkeeper.agent.simhost import SimulatedHypervisor, fake_linkops, locator
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.domain.desired_state import DesiredPort, DesiredState
from vfkeeper.domain.inventory import Device, HostInventory, Netdev
from vfkeeper.domain.vif import render_test_domain
from vfkeeper.sim import simulate_host

if TYPE_CHECKING:
    import httpx
    from fastapi import FastAPI

PF_ADDR = "0000:03:00.0"
PF_NETDEV = "enp3s0f0"
NUM_VFS = 4


def vf_addr(index: int) -> str:
    slot, fn = divmod(index + 1, 8)
    return f"0000:03:{slot:02x}.{fn}"


NICS = {
    # PF driver: (vendor, PF product, VF product, VF driver)
    "ice": ("8086", "1593", "1889", "iavf"),  # Intel E810
    "enic": ("1137", "0043", "0071", "enic"),  # Cisco UCS VIC (802.1Qbh VM-FEX)
    "igb": ("8086", "10c9", "10ca", "igbvf"),  # Intel 82576 (no link state, no minimum rate)
    "mlx5_ib": ("15b3", "1017", "1018", "mlx5_core"),  # ConnectX-5, InfiniBand port
}


def inventory(num_vfs: int = NUM_VFS, name: str = "host-a", driver: str = "ice"
              ) -> HostInventory:  # fmt: skip
    vendor, pf_product, vf_product, vf_driver = NICS[driver]
    devices = [Device(address=PF_ADDR, vendor_id=vendor, product_id=pf_product,
                      dev_type="type-PF", sriov_totalvfs=8, sriov_numvfs=num_vfs, driver=driver,
                      netdevs=(Netdev(name=PF_NETDEV),))]
    devices += [Device(address=vf_addr(i), vendor_id=vendor, product_id=vf_product,
                       dev_type="type-VF", parent_addr=PF_ADDR, vf_index=i, driver=vf_driver,
                       netdevs=(Netdev(name=f"{PF_NETDEV}v{i}"),)) for i in range(num_vfs)]
    return HostInventory(hostname=name, devices=tuple(devices))


@dataclass
class SimHost:
    """The host's kernel and libvirt: shared by every agent instance of a test."""

    state_dir: Path
    driver: str = "ice"
    """The PF's driver: ``ice`` (Intel E810), ``igb`` (Intel 82576), ``mlx5_ib`` (ConnectX,
    InfiniBand) or ``enic`` (Cisco VIC)."""
    inventory: HostInventory = field(init=False)
    linkops: FakeLinkOps = field(init=False)
    libvirt: FakeDomainOps = field(init=False)

    def __post_init__(self) -> None:
        self.inventory = inventory(driver=self.driver)
        self.linkops = FakeLinkOps([FakePf(PF_NETDEV, self.driver, NUM_VFS)])
        self.libvirt = FakeDomainOps(self.linkops, self.locate)

    def locate(self, address: str) -> tuple[str, int] | None:
        for d in self.inventory.devices:
            if d.address == address and d.vf_index is not None:
                return PF_NETDEV, d.vf_index
        return None

    @property
    def index(self) -> HostIndex:
        return HostIndex.of(self.inventory)

    def agent(self, after_step: StepHook | None = None, journal: Journal | None = None
              ) -> Reconciler:  # fmt: skip
        """A fresh agent process: nothing in memory, only the journal on disk."""
        return Reconciler(self.linkops, self.libvirt, journal or Journal(self.state_dir),
                          after_step)

    def domain(self, name: str, *, running: bool = True, instance_id: str | None = None) -> str:
        iid = instance_id or str(uuid.uuid4())
        xml = render_test_domain(name, [], domain_type="kvm").replace(
            "<name>", f"<uuid>{iid}</uuid><name>", 1)
        self.libvirt.define(xml)
        if running:
            self.libvirt.start(name)
        return iid


def port(instance_id: str, vf: int, **kw: Any) -> DesiredPort:
    values: dict[str, Any] = {
        "port_id": str(uuid.uuid4()), "request_id": str(uuid.uuid4()),
        "instance_id": instance_id, "instance_name": instance_id,
        "address": vf_addr(vf), "parent_pf": PF_ADDR,
        "vf_index": vf, "vnic_type": "direct", "vif_type": "hw_veb",
        "mac": f"02:76:66:00:00:{vf + 1:02x}", "vlan": 100 + vf, "trusted": False,
        "spoofchk": True, "link_state": "auto",
    }
    values.update(kw)
    return DesiredPort.model_validate(values)


def desired(*ports: DesiredPort, generation: int = 1) -> DesiredState:
    return DesiredState(host="host-a", generation=generation, vfs=tuple(ports))



def token(app: FastAPI, role: str) -> str:
    """A new bearer token of ``role`` for the in-process controller ``app``."""
    from vfkeeper.controller.auth import create_token

    with app.state.ctx.db.write() as s:
        return create_token(s, role, role)


E810_SPECS = [{"vendor_id": "8086", "product_id": "1889", "physical_network": "physnet1"}]
"""The device spec that puts the VFs of a simulated E810 (``vfkeeper simulate host e810``) on
physnet1."""


def physnet1(admin: httpx.Client, agent: Agent, vlan: int = 42) -> None:
    """Register the agent's host (one tick), put its VFs on physnet1 and create network n1
    (VLAN ``vlan``) there."""
    agent.tick()
    admin.put("/v1/device-specs", json={"entries": E810_SPECS})
    admin.post("/v1/networks", json={"name": "n1", "physical_network": "physnet1",
                                     "segmentation": {"type": "vlan", "id": vlan}})


def boot(admin: httpx.Client, **port: Any) -> tuple[str, str]:
    """Create a port on network n1 and an instance vm1 with it: (port id, instance id)."""
    resp = admin.post("/v1/ports", json={"network": "n1", "vnic_type": "direct", **port})
    assert resp.status_code == 201, resp.text
    port_id = resp.json()["id"]
    resp = admin.post("/v1/instances", json={"name": "vm1", "ports": [port_id]})
    assert resp.status_code == 201, resp.text
    return port_id, resp.json()["id"]


def sim_agent(app: FastAPI, transport: Any, tmp_path: Path,
              hypervisor: type[SimulatedHypervisor] | None = None) -> Agent:
    """The real agent (fake kernel, simulated hypervisor) of a simulated E810 host ``sim-a``
    with 4 VFs, talking to the in-process controller ``app``; ``hypervisor``: another class of
    simulated hypervisor to build it with."""
    root = tmp_path / "host"
    simulate_host(root, "e810", 1, 4, hostname="sim-a")
    config = AgentConfig(controller="http://vfk", token=token(app, "agent:sim-a"),
                         host="sim-a", sysfs_root=str(root), state_dir=str(tmp_path / "state"),
                         fake_linkops=True, fake_libvirt=True)
    if hypervisor is None:
        return build(config, transport=transport)
    inventory = discover(SysfsReader(str(root)), hostname="sim-a")
    linkops = fake_linkops(inventory)
    return build(config, transport=transport, linkops=linkops,
                 domain_ops=hypervisor(linkops, locator(inventory).get))
