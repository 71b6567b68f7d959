"""A device another port's journal record still holds is not attached to anyone: that record
holds the VF's original settings, so the device is detached and restored first; only then does
the new port record its originals (the VF's own, not the previous port's MAC and VLAN). Such a
device is reported ``releasing`` until its record is gone. A migration's destination knows the
instance's domain by its UUID only, and says which it saw."""

from __future__ import annotations

from agent_sim import PF_NETDEV, SimHost, desired, port, vf_addr

from vfkeeper.agent.journal import Journal
from vfkeeper.agent.linkops.protocol import VfAttr, VfConfig, Vlan
from vfkeeper.agent.reconcile import StepKind, plan
from vfkeeper.agent.tasks import TaskRunner
from vfkeeper.domain.desired_state import DesiredState, DesiredTask

ORIGINAL_MAC = "02:11:22:33:44:55"
ORIGINAL_VLAN = 9


def _vf0(host: SimHost) -> tuple[str | None, int]:
    state = host.linkops.get_vf(PF_NETDEV, 0)
    return state.mac, state.vlan.id if state.vlan else 0


def _given_to_x(host: SimHost) -> tuple[str, object]:
    """VF 0 (originally ORIGINAL_MAC, VLAN 9) attached to domain vm-x for port X."""
    host.linkops.set_vf(PF_NETDEV, 0, VfConfig(mac=ORIGINAL_MAC, vlan=Vlan(ORIGINAL_VLAN)))
    original = _vf0(host)
    assert original == (ORIGINAL_MAC, ORIGINAL_VLAN)
    x_instance = host.domain("vm-x")
    x = port(x_instance, 0, instance_name="vm-x", mac="02:76:66:00:00:aa", vlan=100)
    outcome = host.agent().reconcile(desired(x, generation=1), host.index)
    assert outcome.errors == {} and _vf0(host) == ("02:76:66:00:00:aa", 100)
    return x.port_id, x


def test_the_planner_does_not_attach_a_device_another_record_holds(host: SimHost) -> None:
    x_port, _ = _given_to_x(host)
    y_instance = host.domain("vm-y")
    y = port(y_instance, 0, instance_name="vm-y", mac="02:76:66:00:00:bb", vlan=200)
    agent = host.agent()
    want = desired(y, generation=2)
    obs = agent._observe(want, host.index)
    todo = plan(want.plugged, obs)
    assert [s.kind for s in todo.steps if s.port_id == y.port_id] == []
    assert x_port in todo.waiting[y.port_id] and vf_addr(0) in todo.waiting[y.port_id]
    assert {s.kind for s in todo.steps if s.port_id == x_port} == {StepKind.DETACH}
    report = agent.report(want, agent.reconcile(want, host.index))
    assert report.releasing == () and [p.status for p in report.ports] == ["ACTIVE"]


def test_a_reused_vf_gets_its_original_settings_back(host: SimHost) -> None:
    _given_to_x(host)
    y_instance = host.domain("vm-y")
    y = port(y_instance, 0, instance_name="vm-y", mac="02:76:66:00:00:bb", vlan=200)
    agent = host.agent()
    outcome = agent.reconcile(desired(y, generation=2), host.index)
    assert outcome.errors == {} and _vf0(host) == ("02:76:66:00:00:bb", 200)
    record = Journal(host.state_dir).load().records[y.port_id]
    assert record.snapshot is not None
    assert record.snapshot.original.value(VfAttr.MAC) == ORIGINAL_MAC  # not X's MAC
    agent.reconcile(desired(generation=3), host.index)
    assert _vf0(host) == (ORIGINAL_MAC, ORIGINAL_VLAN)


def test_a_device_still_held_for_a_port_no_longer_desired_is_reported_releasing(
        host: SimHost) -> None:
    x_port, _ = _given_to_x(host)
    host.libvirt.domains["vm-x"].guest_answers_unplug = False  # the guest ignores the unplug
    agent = host.agent()
    want = desired(generation=2)
    report = agent.report(want, agent.reconcile(want, host.index))
    assert [(r.port_id, r.address) for r in report.releasing] == [(x_port, vf_addr(0))]


def test_a_migration_target_knows_the_domain_by_its_uuid_only(host: SimHost) -> None:
    instance_id = "0f6e2ac4-5a1b-4f43-9d3e-222222222222"
    task = DesiredTask(task_id="0f6e2ac4-5a1b-4f43-9d3e-333333333333", kind="migrate",
                       role="target", instance_id=instance_id, instance_name="vm1",
                       peer_host="host-b")
    want = DesiredState(host="host-a", generation=1, tasks=(task,))
    host.domain("vm1")  # same name, another UUID: not the instance
    agent = host.agent()
    [report] = TaskRunner(host.libvirt).run(want, agent.reconcile(want, host.index), {})
    assert report.status != "arrived"
    host.libvirt.destroy("vm1")
    host.libvirt.undefine("vm1")
    host.domain("vm1", instance_id=instance_id)
    [report] = TaskRunner(host.libvirt).run(want, agent.reconcile(want, host.index), {})
    assert (report.status, report.domain_uuid) == ("arrived", instance_id)
