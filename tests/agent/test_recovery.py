"""Recovery: what the agent repairs and what it reports without touching."""

from __future__ import annotations

from agent_sim import PF_NETDEV, SimHost, desired, inventory, port, vf_addr

from vfkeeper.agent.linkops.protocol import Vlan
from vfkeeper.domain.vif import BoundVif, render_interface


def _foreign_xml(vf: int, alias: str = "ua-admin0") -> str:
    return render_interface(BoundVif("hw_veb", "direct", pci_address=vf_addr(vf),
                                     mac="52:54:00:00:00:99", alias=alias))


def test_a_vf_held_by_an_unknown_domain_is_reported_foreign_and_never_touched(
        host: SimHost) -> None:
    host.domain("pet-vm")
    host.libvirt.attach("pet-vm", _foreign_xml(2), live=True, config=True)
    before = host.linkops.get_vf(PF_NETDEV, 2)
    vm = host.domain("vm1")
    state = desired(port(vm, 2))  # the controller (wrongly) wants that VF
    agent = host.agent()
    outcome = agent.reconcile(state, host.index)
    report = agent.report(state, outcome)
    assert {(f.address, f.domain, f.where) for f in report.foreign} == {
        (vf_addr(2), "pet-vm", "live"), (vf_addr(2), "pet-vm", "config")}
    [p] = report.ports
    assert p.status == "ERROR" and "held by libvirt domain 'pet-vm'" in (p.last_error or "")
    assert host.linkops.get_vf(PF_NETDEV, 2) == before, "a foreign VF is never programmed"
    assert len(host.libvirt.devices("pet-vm").live) == 1


def test_a_vanished_vf_is_reported(host: SimHost) -> None:
    vm = host.domain("vm1")
    state = desired(port(vm, 3))
    host.inventory = inventory(num_vfs=3)  # sriov_numvfs lowered: VF 3 is gone
    agent = host.agent()
    report = agent.report(state, agent.reconcile(state, host.index))
    assert [(v.address) for v in report.vanished] == [vf_addr(3)]
    assert report.ports[0].status == "ERROR"


def test_nothing_is_restored_while_a_domain_still_holds_the_vf(host: SimHost) -> None:
    vm = host.domain("vm1")
    p = port(vm, 0)
    original = host.linkops.get_vf(PF_NETDEV, 0)
    host.agent().reconcile(desired(p), host.index)
    host.libvirt.domains["vm1"].guest_answers_unplug = False
    agent = host.agent()
    empty = desired(generation=2)
    report = agent.report(empty, agent.reconcile(empty, host.index))
    [releasing] = report.releasing
    assert releasing.port_id == p.port_id and "not restored while held" in (
        releasing.waiting_for or "")
    assert host.linkops.get_vf(PF_NETDEV, 0).vlan == Vlan(100), "still programmed"
    assert p.port_id in agent.journal.load().records
    host.libvirt.guest_acks("vm1")
    agent.reconcile(empty, host.index)
    assert host.linkops.get_vf(PF_NETDEV, 0) == original
    assert agent.journal.load().records == {}


def test_a_shut_off_domain_gets_a_persistent_attach_and_reads_down(host: SimHost) -> None:
    vm = host.domain("vm1", running=False)
    state = desired(port(vm, 1))
    agent = host.agent()
    report = agent.report(state, agent.reconcile(state, host.index))
    assert report.ports[0].status == "DOWN"
    assert report.ports[0].observed.attached_config and not report.ports[0].observed.attached_live
    host.libvirt.start("vm1")
    report = agent.report(state, agent.reconcile(state, host.index))
    assert report.ports[0].status == "ACTIVE"


def test_kernel_drift_is_repaired(host: SimHost) -> None:
    vm = host.domain("vm1")
    state = desired(port(vm, 0))
    host.agent().reconcile(state, host.index)
    from vfkeeper.agent.linkops.protocol import VfConfig

    host.linkops.set_vf(PF_NETDEV, 0, VfConfig(vlan=Vlan(666)))  # an operator's mistake
    host.agent().reconcile(state, host.index)
    assert host.linkops.get_vf(PF_NETDEV, 0).vlan == Vlan(100)


def test_a_domain_not_yet_defined_waits_in_build(host: SimHost) -> None:
    state = desired(port("44444444-4444-4444-8444-444444444444", 0, instance_name="later"))
    agent = host.agent()
    report = agent.report(state, agent.reconcile(state, host.index))
    assert report.ports[0].status == "BUILD"
    assert "not defined on this host yet" in (report.ports[0].waiting_for or "")


def test_own_orphan_devices_are_detached(host: SimHost) -> None:
    """The state dir was lost: a device with the agent's alias that no port wants goes."""
    host.domain("vm1")
    host.libvirt.attach("vm1", _foreign_xml(1, "ua-vfk-0000dead"), live=True, config=True)
    host.agent().reconcile(desired(), host.index)
    assert host.libvirt.devices("vm1").live == () and host.libvirt.devices("vm1").config == ()
