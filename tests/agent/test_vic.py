"""An 802.1Qbh (Cisco VIC / VM-FEX) port on a host whose PF is ``enic``.

libvirt associates the port profile and sets the VF's MAC when it attaches
``<interface type='hostdev'>`` with ``<virtualport type='802.1Qbh'>``; the profile defined on
the fabric carries the VLAN, and libvirt refuses a ``<vlan>`` next to it. So the agent programs
nothing over netlink (enic has no ``ndo_set_vf_vlan``), records nothing to restore, and the
port still reaches ACTIVE.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_sim import PF_NETDEV, SimHost, desired, port, vf_addr

from vfkeeper.agent.libvirt.errors import LibvirtCallError
from vfkeeper.agent.linkops.protocol import VfAttr
from vfkeeper.agent.reconcile import Step, StepKind
from vfkeeper.domain.vif import BoundVif, render_interface

PROFILE = "vm-fex-tenant"


@pytest.fixture
def vic(tmp_path: Path) -> SimHost:
    return SimHost(tmp_path / "state", driver="enic")


def _steps(host: SimHost, state: object) -> list[Step]:
    done: list[Step] = []
    agent = host.agent(done.append)
    agent.reconcile(state, host.index)  # type: ignore[arg-type]
    return done


def test_an_802_1qbh_port_comes_up_active_with_only_libvirts_mac_write(vic: SimHost) -> None:
    vm = vic.domain("vm1")
    # the controller's desired state carries the network's VLAN: it is not the VIF's
    p = port(vm, 1, vif_type="802.1qbh", profileid=PROFILE, vlan=100)
    state = desired(p)
    done = _steps(vic, state)
    assert {s.kind for s in done} == {StepKind.RECORD, StepKind.ATTACH}, "no program step"
    agent = vic.agent()
    [actual] = agent.report(state, agent.reconcile(state, vic.index)).ports
    assert (actual.status, actual.phase, actual.last_error) == ("ACTIVE", "attached", None)
    assert vic.linkops.writes == [(PF_NETDEV, 1, VfAttr.MAC, p.mac)], \
        "libvirt's association sets the MAC; nothing else is written (no VLAN)"
    assert vic.libvirt.port_profiles == {vf_addr(1): PROFILE}
    [device] = vic.libvirt.devices("vm1").live
    assert (device.virtualport, device.profileid, device.vlan) == ("802.1Qbh", PROFILE, None)
    assert "<vlan" not in device.xml
    assert agent.journal.load().records[p.port_id].snapshot is None, "nothing to restore"


def test_releasing_it_disassociates_and_restores_nothing(vic: SimHost) -> None:
    vm = vic.domain("vm1")
    p = port(vm, 0, vif_type="802.1qbh", profileid=PROFILE)
    _steps(vic, desired(p))
    writes = list(vic.linkops.writes)
    done = _steps(vic, desired(generation=2))
    assert [s.kind for s in done].count(StepKind.RESTORE) == 0
    assert StepKind.FORGET in {s.kind for s in done}
    assert vic.libvirt.port_profiles == {}
    assert vic.linkops.writes == writes, "no write on release: vfkeeper changed nothing"
    assert vic.agent().journal.load().records == {}
    assert vic.libvirt.devices("vm1").live == () and vic.libvirt.devices("vm1").config == ()


def test_a_shut_off_domain_gets_it_in_its_config_and_associates_at_start(vic: SimHost) -> None:
    vm = vic.domain("vm1", running=False)
    state = desired(port(vm, 2, vif_type="802.1qbh", profileid=PROFILE))
    agent = vic.agent()
    assert agent.report(state, agent.reconcile(state, vic.index)).ports[0].status == "DOWN"
    assert vic.libvirt.port_profiles == {}
    vic.libvirt.start("vm1")
    assert vic.libvirt.port_profiles == {vf_addr(2): PROFILE}
    assert agent.report(state, agent.reconcile(state, vic.index)).ports[0].status == "ACTIVE"


def test_the_fake_libvirt_refuses_a_vlan_next_to_an_802_1qbh_virtualport(vic: SimHost) -> None:
    vic.domain("vm1")
    xml = render_interface(BoundVif("802.1qbh", "direct", pci_address=vf_addr(3),
                                    mac="02:76:66:00:00:04", profileid=PROFILE))
    tagged = xml.replace("<virtualport", "<vlan><tag id='100' /></vlan><virtualport")
    with pytest.raises(LibvirtCallError) as refused:
        vic.libvirt.attach("vm1", tagged, live=True, config=True)
    assert refused.value.code == 67
    assert "direct setting of the vlan tag is not allowed for hostdev devices using " \
        "802.1Qbh mode" in str(refused.value)
    assert vic.libvirt.devices("vm1").live == () and vic.libvirt.port_profiles == {}
    assert vic.linkops.writes == []
