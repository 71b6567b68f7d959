"""Snapshot before change, restore on release, and the required/best-effort policy."""

from __future__ import annotations

import errno
import json

import pytest

from vfkeeper.agent.linkops import (
    DEFAULT_POLICY,
    STRICT_POLICY,
    LinkState,
    RestoreIncompleteError,
    VfAttr,
    VfBusyError,
    VfConfig,
    VfSnapshot,
    VfValueRejectedError,
    Vlan,
    apply,
    restore,
)
from vfkeeper.agent.linkops.errors import VfPermissionError, refusal
from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
from vfkeeper.agent.linkops.snapshot import originals
from vfkeeper.domain.errors import InvalidGuidError, InvalidMacError, InvalidValueError
from vfkeeper.domain.guid import GUID_CLEAR


def igb() -> FakeLinkOps:
    return FakeLinkOps([FakePf("eth0", "igb", num_vfs=4)])


def test_only_changed_attributes_are_recorded_and_restored() -> None:
    ops = igb()
    ops.set_vf("eth0", 0, VfConfig(mac="02:00:00:00:00:01", trust=True))  # operator's tuning
    ops.writes.clear()
    result = apply(ops, "eth0", 0, VfConfig(mac="02:00:00:00:00:99", trust=True, vlan=Vlan(7)))
    assert result.changed == (VfAttr.MAC, VfAttr.VLAN)
    assert result.unchanged == (VfAttr.TRUST,)
    assert result.snapshot.original == VfConfig(mac="02:00:00:00:00:01", vlan=Vlan())
    ops.writes.clear()
    restore(ops, result.snapshot)
    assert [(a, v) for _, _, a, v in ops.writes] == [
        (VfAttr.MAC, "02:00:00:00:00:01"),
        (VfAttr.VLAN, Vlan()),
    ]
    assert ops.get_vf("eth0", 0).trust is True  # never touched, never "restored"


def test_best_effort_refusals_are_reported_not_fatal() -> None:
    ops = igb()
    result = apply(
        ops, "eth0", 1, VfConfig(vlan=Vlan(10), min_tx_rate=50, link_state=LinkState.ENABLE)
    )
    assert result.changed == (VfAttr.VLAN,)
    assert [(r.attribute, r.errno) for r in result.skipped] == [
        ("min_tx_rate", errno.EINVAL),
        ("link_state", errno.EOPNOTSUPP),
    ]
    assert ops.get_vf("eth0", 1).vlan == Vlan(10)


def test_strict_policy_makes_every_refusal_fatal_and_rolls_back() -> None:
    ops = igb()
    with pytest.raises(VfValueRejectedError) as failed:
        apply(ops, "eth0", 1, VfConfig(vlan=Vlan(10), min_tx_rate=50), policy=STRICT_POLICY)
    assert (failed.value.pf, failed.value.vf_index, failed.value.value) == ("eth0", 1, "50")
    assert ops.get_vf("eth0", 1).vlan == Vlan()


def test_busy_is_never_skipped_even_for_best_effort_attributes() -> None:
    ops = FakeLinkOps([FakePf("eth0", "i40e", num_vfs=2, busy={1})])
    assert DEFAULT_POLICY[VfAttr.LINK_STATE] == "best-effort"
    with pytest.raises(VfBusyError):
        apply(ops, "eth0", 1, VfConfig(link_state=LinkState.ENABLE))


def test_reapply_keeps_the_first_recorded_originals() -> None:
    ops = igb()
    first = apply(ops, "eth0", 2, VfConfig(mac="02:00:00:00:00:01"))
    # the agent restarts and applies a new MAC plus a VLAN, passing the stored snapshot
    second = apply(
        ops, "eth0", 2, VfConfig(mac="02:00:00:00:00:02", vlan=Vlan(5)), previous=first.snapshot
    )
    assert second.snapshot.original == VfConfig(mac="00:00:00:00:00:00", vlan=Vlan())
    restore(ops, second.snapshot)
    state = ops.get_vf("eth0", 2)
    assert (state.mac, state.vlan) == ("00:00:00:00:00:00", Vlan())


def test_the_originals_journaled_first_are_what_apply_records() -> None:
    """The agent journals ``originals`` before it programs; apply's snapshot is the same
    computation, less what the driver refused (igb: a forced link state, a minimum rate)."""
    ops = igb()
    wanted = VfConfig(mac="02:00:00:00:00:07", vlan=Vlan(3), min_tx_rate=10,
                      link_state=LinkState.ENABLE)
    journaled = originals(ops.get_vf("eth0", 1), wanted)
    assert journaled.original == VfConfig(mac="00:00:00:00:00:00", vlan=Vlan(), min_tx_rate=0,
                                          link_state=LinkState.AUTO)
    result = apply(ops, "eth0", 1, wanted, previous=journaled)
    assert {r.attribute for r in result.skipped} == {"min_tx_rate", "link_state"}
    assert result.snapshot.original == VfConfig(mac="00:00:00:00:00:00", vlan=Vlan())
    ops.writes.clear()
    restore(ops, result.snapshot)  # igb would refuse a link state: none is asked for
    assert [a for _, _, a, _ in ops.writes] == [VfAttr.MAC, VfAttr.VLAN]


def test_a_refused_setting_changed_earlier_stays_recorded() -> None:
    """igb refuses any rate while its link is down: a rate set while it was up, then changed
    while it is down, was really changed once, so its original stays recorded."""
    ops = igb()
    first = apply(ops, "eth0", 0, VfConfig(max_tx_rate=100))
    ops.pfs["eth0"].link_up = False
    second = apply(ops, "eth0", 0, VfConfig(max_tx_rate=200), previous=first.snapshot)
    assert [r.attribute for r in second.skipped] == ["max_tx_rate"]
    assert second.snapshot.original == VfConfig(max_tx_rate=0)


def test_restore_writes_only_what_is_not_back_yet() -> None:
    """A record naming a setting the VF still has (written by an agent that journaled a refused
    link state as an original) is restored without asking the driver for it."""
    ops = igb()
    ops.set_vf("eth0", 2, VfConfig(mac="02:00:00:00:00:02"))
    ops.writes.clear()
    restore(ops, VfSnapshot("eth0", 2, VfConfig(mac="00:00:00:00:00:00",
                                                link_state=LinkState.AUTO)))
    assert [(a, v) for _, _, a, v in ops.writes] == [(VfAttr.MAC, "00:00:00:00:00:00")]
    restore(ops, VfSnapshot("eth0", 2, VfConfig(mac="00:00:00:00:00:00")))
    assert len(ops.writes) == 1, "restoring twice is restoring once"


def test_unset_guids_are_restored_by_writing_all_ones() -> None:
    ops = FakeLinkOps([FakePf("ib0", "mlx5_ib", num_vfs=2)])
    result = apply(ops, "ib0", 0, VfConfig(node_guid="0x0002c90300000001", port_guid="0x2"))
    assert result.snapshot.original.node_guid == GUID_CLEAR.canonical
    assert ops.rebinds == [("ib0", 0)]  # one rebind for both GUIDs
    ops.writes.clear()
    restore(ops, result.snapshot)
    assert [(a, v) for _, _, a, v in ops.writes] == [
        (VfAttr.NODE_GUID, GUID_CLEAR.canonical),
        (VfAttr.PORT_GUID, GUID_CLEAR.canonical),
    ]


def test_guid_changes_do_not_rebind_vfio_bound_vfs() -> None:
    ops = FakeLinkOps([FakePf("ib0", "mlx5_ib", num_vfs=2, vf_drivers={1: "vfio-pci"})])
    apply(ops, "ib0", 1, VfConfig(node_guid="0x10"))
    assert ops.rebinds == []


class _FailingRestore(FakeLinkOps):
    def set_vf(self, pf: str, vf_index: int, config: VfConfig) -> None:
        if config.vlan is not None and config.vlan.id == 0:
            raise refusal(pf, vf_index, "vlan", "0", errno.EBUSY)
        super().set_vf(pf, vf_index, config)


def test_restore_tries_every_attribute_then_says_what_was_not_restored() -> None:
    ops = _FailingRestore([FakePf("eth0", "igb", num_vfs=1)])
    result = apply(ops, "eth0", 0, VfConfig(mac="02:00:00:00:00:01", vlan=Vlan(9), trust=True))
    with pytest.raises(RestoreIncompleteError) as incomplete:
        restore(ops, result.snapshot)
    assert incomplete.value.restored == ("mac", "trust")
    assert [f.attribute for f in incomplete.value.failures] == ["vlan"]  # type: ignore[attr-defined]
    assert "restored: mac, trust" in str(incomplete.value)
    assert ops.get_vf("eth0", 0).trust is False


def test_snapshot_survives_a_json_round_trip() -> None:
    snap = VfSnapshot(
        "eth0",
        3,
        VfConfig(
            mac="02:00:00:00:00:01",
            vlan=Vlan(5, 2, "802.1ad"),
            link_state=LinkState.DISABLE,
            node_guid=GUID_CLEAR.canonical,
            max_tx_rate=0,
        ),
    )
    assert VfSnapshot.from_dict(json.loads(json.dumps(snap.to_dict()))) == snap


def test_permission_errors_are_their_own_type() -> None:
    err = refusal("eth0", 0, "mac", "02:00:00:00:00:01", errno.EPERM)
    assert isinstance(err, VfPermissionError)
    assert "CAP_NET_ADMIN" in str(err)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"mac": "02:00:00:00:00"}, InvalidMacError),
        ({"node_guid": "not-a-guid"}, InvalidGuidError),
        ({"max_tx_rate": -1}, InvalidValueError),
    ],
)
def test_bad_values_never_reach_a_driver(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        VfConfig(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("vid", "qos"), [(4096, 0), (-1, 0), (10, 8)])
def test_vlan_outside_what_the_kernel_takes_is_refused(vid: int, qos: int) -> None:
    with pytest.raises(InvalidValueError):
        Vlan(vid, qos)
