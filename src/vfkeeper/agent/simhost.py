"""Stand-ins for a simulated host (``vfkeeper agent --fake-linkops --fake-libvirt``): a fake
kernel modelled on the inventory's PFs and a fake libvirt whose instances' domains exist.

No hardware and no libvirtd: for demos and end-to-end tests of agent + controller + CLI on
trees built by ``vfkeeper simulate``. The code paths above them are the real agent's.
"""

from __future__ import annotations

from vfkeeper.agent.libvirt.fake import FakeDomainOps
from vfkeeper.agent.linkops.fake import DRIVERS, FakeLinkOps, FakePf
from vfkeeper.domain.desired_state import DesiredState
from vfkeeper.domain.inventory import HostInventory
from vfkeeper.domain.vif import render_test_domain


def fake_linkops(inventory: HostInventory) -> FakeLinkOps:
    """One fake PF per PF netdev of the inventory, with the PF driver's refusals (ConnectX
    InfiniBand PFs as ``mlx5_ib``; drivers the fake does not model as ``mlx5_core``)."""
    pfs = []
    for d in inventory.devices:
        if d.dev_type != "type-PF" or not d.netdevs:
            continue
        driver = d.driver if d.driver and d.driver in DRIVERS else "mlx5_core"
        if d.link_type == "infiniband":
            driver = "mlx5_ib"
        pfs.append(FakePf(d.netdevs[0].name, driver, d.sriov_numvfs or 0))
    return FakeLinkOps(pfs)


def locator(inventory: HostInventory) -> dict[str, tuple[str, int]]:
    """VF PCI address → (PF netdev, VF index)."""
    pf_netdev = {d.address: d.netdevs[0].name for d in inventory.devices
                 if d.dev_type == "type-PF" and d.netdevs}  # fmt: skip
    return {d.address: (pf_netdev[d.parent_addr], d.vf_index) for d in inventory.devices
            if d.parent_addr in pf_netdev and d.vf_index is not None}  # fmt: skip


class SimulatedHypervisor(FakeDomainOps):
    """A fake libvirt in which every instance the controller places here has a running domain
    (named after the instance, with its id as UUID), as if something booted it."""

    def ensure_domains(self, desired: DesiredState) -> None:
        """Boot the domains of the instances placed here, but not of those a task is moving or
        saving (a migration brings its own domain; a suspended one stays saved)."""
        busy = {t.instance_id for t in desired.tasks}
        for port in desired.vfs:
            name = port.instance_name or port.instance_id
            if name in self.domains or port.instance_id in busy or port.incoming:
                continue
            xml = render_test_domain(name, [], domain_type="kvm").replace(
                "<name>", f"<uuid>{port.instance_id}</uuid><name>", 1)
            self.define(xml)
            self.start(name)
