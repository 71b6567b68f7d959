"""An InfiniBand VF (``ib_hostdev`` on a ConnectX PF, ``mlx5_ib``) is addressed by its GUIDs and
isolated by its PKey: trust, spoof check and a VLAN cannot be set on it. A port that asks for
them is attached all the same, and its actual state says they were not applied."""

from __future__ import annotations

from pathlib import Path

import pytest
from agent_sim import PF_NETDEV, SimHost, desired, port

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
