"""An InfiniBand VF (``ib_hostdev`` on a ConnectX PF, ``mlx5_ib``) is addressed by its GUIDs and
isolated by its PKey: trust, spoof check and a VLAN cannot be set on it. A port that asks for
them is attached all the same, and its actual state says they were not applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_sim import PF_NETDEV, SimHost, desired, port

from vfkeeper.agent.linkops.protocol import VfConfig

GUID = "0x0002c90300a1b2c4"


@pytest.fixture
def ib(tmp_path: Path) -> SimHost:
    return SimHost(tmp_path / "state", driver="mlx5_ib")


@pytest.mark.parametrize(("asked", "skipped"), [
    ({"trusted": True}, ("trust",)),
    ({"trusted": True, "spoofchk": False, "vlan": 7}, ("spoofchk", "trust", "vlan")),
    ({}, ()),
], ids=["trusted", "trusted-no-spoofchk-vlan", "nothing-else"])
def test_settings_an_infiniband_vf_cannot_have_are_reported_skipped(
        ib: SimHost, asked: dict[str, object], skipped: tuple[str, ...]) -> None:
    vm = ib.domain("vm1")
    values: dict[str, object] = {"vlan": None, "trusted": False, **asked}
    p = port(vm, 0, vif_type="ib_hostdev", mac=None, guid=GUID, **values)
    agent = ib.agent()
    state = desired(p)
    [actual] = agent.report(state, agent.reconcile(state, ib.index)).ports
    assert (actual.status, actual.last_error) == ("ACTIVE", None)
    assert actual.skipped == skipped
    assert ib.linkops.get_vf(PF_NETDEV, 0).port_guid == GUID


def test_an_ethernet_vf_that_sets_trust_skips_nothing(host: SimHost) -> None:
    vm = host.domain("vm1")
    p = port(vm, 0, trusted=True)
    agent = host.agent()
    state = desired(p)
    [actual] = agent.report(state, agent.reconcile(state, host.index)).ports
    assert (actual.status, actual.skipped) == ("ACTIVE", ())
    assert host.linkops.get_vf(PF_NETDEV, 0).trust is True


def test_an_infiniband_vf_gets_both_guids_before_it_is_attached_as_a_plain_hostdev(
        ib: SimHost) -> None:
    """Issue 11 item 4, as Nova's ``ib_hostdev``, ib-sriov-cni and KubeVirt do it: node and port
    GUID are both set to the port's GUID on the host, before the VF reaches the domain, which
    gets it as a plain PCI ``<hostdev>`` (no ``<interface>``: an InfiniBand VF has no MAC to
    give); on release both GUIDs go back to what they were — all-ones, as the VF had none."""
    events: list[str] = []
    set_vf, attach = ib.linkops.set_vf, ib.libvirt.attach

    def recording_set_vf(pf: str, vf_index: int, config: VfConfig) -> None:
        events.append("set_vf " + ",".join(sorted(a.value for a, _ in config.items())))
        set_vf(pf, vf_index, config)

    def recording_attach(domain: str, xml: str, **kw: bool) -> None:
        events.append("attach " + xml.split(">", 1)[0].split(maxsplit=1)[0].lstrip("<"))
        attach(domain, xml, **kw)

    ib.linkops.set_vf = recording_set_vf  # type: ignore[method-assign]
    ib.libvirt.attach = recording_attach  # type: ignore[method-assign]
    before = ib.linkops.get_vf(PF_NETDEV, 0)
    vm = ib.domain("vm1")
    p = port(vm, 0, vif_type="ib_hostdev", mac=None, vlan=None, guid=GUID)
    agent = ib.agent()
    [actual] = agent.report(desired(p), agent.reconcile(desired(p), ib.index)).ports
    assert actual.status == "ACTIVE"
    vf = ib.linkops.get_vf(PF_NETDEV, 0)
    assert (vf.node_guid, vf.port_guid) == (GUID, GUID)
    guid_writes = [i for i, e in enumerate(events) if "port_guid" in e and "node_guid" in e]
    attaches = [i for i, e in enumerate(events) if e.startswith("attach")]
    assert guid_writes and attaches and max(guid_writes) < min(attaches), events
    assert events[attaches[0]] == "attach hostdev", events
    xml = ib.libvirt.domain_xml("vm1")
    assert "<hostdev mode='subsystem' type='pci'" in xml.replace('"', "'")
    assert "<interface" not in xml

    empty = desired(generation=2)
    agent.reconcile(empty, ib.index)
    after = ib.linkops.get_vf(PF_NETDEV, 0)
    assert before.node_guid in (None, "0x0000000000000000", "0xffffffffffffffff")
    assert (after.node_guid, after.port_guid) == ("0xffffffffffffffff", "0xffffffffffffffff")
    assert "<hostdev" not in ib.libvirt.domain_xml("vm1")
