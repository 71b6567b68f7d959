"""The LinkOps contract: one suite every implementation must pass.

``LinkOpsContract`` derives each expectation from a :class:`DriverModel` (what that NIC's driver
refuses). Here it runs on the fake for every modelled driver; ``tests/vm/
test_linkops_real_kernel.py`` runs the same class on the real kernel's igb with
``DRIVERS["igb"]`` — which is what makes the fake's igb row a checked fact, not a guess.

A subclass provides the ``target`` fixture: a :class:`ContractTarget` whose VFs start at the
driver's defaults and whose PF link is up.
"""

from __future__ import annotations

import errno
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vfkeeper.agent.desired import HostIndex
from vfkeeper.agent.executor import Reconciler
from vfkeeper.agent.journal import Journal
from vfkeeper.agent.libvirt.fake import FakeDomainOps
from vfkeeper.agent.linkops import (
    DEFAULT_POLICY,
    LinkOps,
    LinkState,
    PfNotFoundError,
    VfAttr,
    VfAttributeNotSupportedError,
    VfConfig,
    VfNotFoundError,
    VfRefusedError,
    VfState,
    VfValueRejectedError,
    Vlan,
    apply,
    restore,
)
from vfkeeper.agent.linkops.fake import DRIVERS, DriverModel, FakeLinkOps, FakePf
from vfkeeper.agent.linkops.protocol import format_value
from vfkeeper.agent.linkops.snapshot import Requirement
from vfkeeper.domain.agent_state import ActualState
from vfkeeper.domain.desired_state import DesiredPort, DesiredState
from vfkeeper.domain.guid import GUID_CLEAR, GUID_ZERO
from vfkeeper.domain.vif import render_test_domain

SAMPLES: dict[VfAttr, object] = {
    VfAttr.MAC: "02:11:22:33:44:55",
    VfAttr.VLAN: Vlan(100, 3),
    VfAttr.SPOOFCHK: False,
    VfAttr.TRUST: True,
    VfAttr.MIN_TX_RATE: 10,
    VfAttr.MAX_TX_RATE: 100,
    VfAttr.NODE_GUID: "0x0002c90300a1b2c3",
    VfAttr.PORT_GUID: "0x0002c90300a1b2c4",
    VfAttr.LINK_STATE: LinkState.DISABLE,
}


@dataclass(frozen=True)
class ContractTarget:
    ops: LinkOps
    pf: str
    num_vfs: int
    model: DriverModel


def expected_errno(model: DriverModel, attr: VfAttr, value: object) -> int:
    """What the driver answers to setting ``attr`` to ``value`` (0: accepted)."""
    if attr in model.refuses:
        return model.refuses[attr]
    if attr is VfAttr.MIN_TX_RATE and value and not model.min_rate:
        return errno.EINVAL
    return 0


def unset_guids_as_zero(vfs: tuple[VfState, ...]) -> tuple[VfState, ...]:
    """A cleared GUID reads back as all-ones (mlx5 keeps what was written); it means the same
    as the zero of a never-set one."""
    clear = GUID_CLEAR.canonical
    return tuple(
        vf.with_values(
            (a, GUID_ZERO.canonical)
            for a in (VfAttr.NODE_GUID, VfAttr.PORT_GUID)
            if vf.value(a) == clear
        )
        for vf in vfs
    )


class LinkOpsContract:
    """Subclasses provide the ``target`` fixture."""

    def test_lists_every_vf_in_index_order(self, target: ContractTarget) -> None:
        vfs = target.ops.list_vfs(target.pf)
        assert [vf.index for vf in vfs] == list(range(target.num_vfs))
        assert {vf.pf for vf in vfs} == {target.pf}

    def test_unknown_pf_and_vf_are_typed_errors(self, target: ContractTarget) -> None:
        with pytest.raises(PfNotFoundError) as missing:
            target.ops.list_vfs("nosuchpf0")
        assert missing.value.pf == "nosuchpf0"
        with pytest.raises(VfNotFoundError) as no_vf:
            target.ops.get_vf(target.pf, target.num_vfs)
        assert (no_vf.value.vf_index, no_vf.value.num_vfs) == (target.num_vfs, target.num_vfs)
        with pytest.raises(VfNotFoundError):
            target.ops.set_vf(target.pf, target.num_vfs, VfConfig(trust=True))

    @pytest.mark.parametrize("attr", list(SAMPLES), ids=str)
    def test_each_attribute_is_set_or_refused_as_the_driver_does(
        self, target: ContractTarget, attr: VfAttr
    ) -> None:
        value = SAMPLES[attr]
        code = expected_errno(target.model, attr, value)
        config = VfConfig.of([(attr, value)])
        if code:
            with pytest.raises(VfRefusedError) as refused:
                target.ops.set_vf(target.pf, 1, config)
            err = refused.value
            assert (err.pf, err.vf_index, err.attribute, err.errno) == (
                target.pf,
                1,
                attr.value,
                code,
            )
            assert err.value == format_value(attr, value)
            assert target.pf in str(err) and attr.value in str(err)
        else:
            target.ops.set_vf(target.pf, 1, config)
            if attr in target.model.reports:
                assert target.ops.get_vf(target.pf, 1).value(attr) == value
            # the other VFs are untouched
            assert target.ops.get_vf(target.pf, 0).value(attr) != value

    def test_802_1ad_vlan_is_refused_unless_the_driver_supports_it(
        self, target: ContractTarget
    ) -> None:
        if VfAttr.VLAN in target.model.refuses:
            pytest.skip("this driver refuses every VLAN")
        qinq = VfConfig(vlan=Vlan(200, 0, "802.1ad"))
        if "802.1ad" in target.model.vlan_protos:
            target.ops.set_vf(target.pf, 0, qinq)
            assert target.ops.get_vf(target.pf, 0).vlan == Vlan(200, 0, "802.1ad")
        else:
            with pytest.raises(VfAttributeNotSupportedError) as refused:
                target.ops.set_vf(target.pf, 0, qinq)
            assert refused.value.errno == errno.EPROTONOSUPPORT

    def test_multicast_mac_is_rejected_as_a_value(self, target: ContractTarget) -> None:
        if VfAttr.MAC in target.model.refuses:
            pytest.skip("this driver refuses every MAC")
        with pytest.raises(VfValueRejectedError) as refused:
            target.ops.set_vf(target.pf, 0, VfConfig(mac="01:00:5e:00:00:01"))
        assert refused.value.attribute == "mac"

    def test_max_rate_above_the_link_speed_is_rejected(self, target: ContractTarget) -> None:
        if not target.model.max_rate_within_link:
            pytest.skip("this driver does not check the rate against the link speed")
        with pytest.raises(VfValueRejectedError) as refused:
            target.ops.set_vf(target.pf, 0, VfConfig(max_tx_rate=100_000))
        assert (refused.value.attribute, refused.value.value) == ("max_tx_rate", "100000")

    def test_apply_then_restore_puts_the_vf_back(self, target: ContractTarget) -> None:
        before = target.ops.list_vfs(target.pf)
        wanted = VfConfig.of((a, v) for a, v in SAMPLES.items() if not target.model.refuses.get(a))
        result = apply(target.ops, target.pf, 2, wanted)
        refused_best_effort = {VfAttr(r.attribute) for r in result.skipped}
        assert refused_best_effort == {
            a for a, v in wanted.items() if expected_errno(target.model, a, v)
        }
        assert set(result.changed) | refused_best_effort == set(wanted.attrs())
        restore(target.ops, result.snapshot)
        assert unset_guids_as_zero(target.ops.list_vfs(target.pf)) == unset_guids_as_zero(before)

    def test_required_refusal_undoes_what_the_apply_changed(self, target: ContractTarget) -> None:
        refused = [a for a in target.model.refuses if DEFAULT_POLICY[a] == "required"]
        if not refused or VfAttr.MAC in target.model.refuses:
            pytest.skip("needs a driver that sets MACs but refuses a required attribute")
        before = target.ops.get_vf(target.pf, 0)
        wanted = VfConfig.of([(VfAttr.MAC, "02:aa:bb:cc:dd:ee"), (refused[0], SAMPLES[refused[0]])])
        with pytest.raises(VfAttributeNotSupportedError) as failed:
            apply(target.ops, target.pf, 0, wanted)
        assert failed.value.attribute == refused[0].value
        assert target.ops.get_vf(target.pf, 0) == before


    def test_release_after_a_refused_best_effort_setting(
        self, target: ContractTarget, tmp_path: Path
    ) -> None:
        """The agent attaches a port asking for every best-effort setting (a forced link
        state, rate limits); what the NIC refuses is skipped, and releasing the port gives the
        VF back exactly as it was, with nothing left recorded or releasing."""
        refused = {a for a in BEST_EFFORT if expected_errno(target.model, a, SAMPLES[a])}
        if not refused:
            pytest.skip("this driver refuses no best-effort setting")
        kind = port_kind(target.model)
        if kind is None:
            pytest.skip("vfkeeper programs nothing on this driver's VFs (802.1Qbh profiles)")
        host = AgentHost(target, tmp_path)
        before = target.ops.list_vfs(target.pf)
        state = host.desired(kind)

        attached = host.pass_(state)
        [port] = attached.ports
        assert (port.status, port.last_error) == ("ACTIVE", None)
        assert set(port.skipped) == {a.value for a in refused}
        record = host.reconciler.journal.load().records[port.port_id]
        assert record.snapshot is not None
        assert not refused & set(record.snapshot.original.attrs()), \
            "the journal records only what was changed"

        released = host.pass_(host.empty(state))
        assert (released.ports, released.releasing) == ((), ())
        assert host.reconciler.journal.load().records == {}
        assert unset_guids_as_zero(target.ops.list_vfs(target.pf)) == unset_guids_as_zero(before)


BEST_EFFORT = tuple(a for a, r in DEFAULT_POLICY.items() if r is Requirement.BEST_EFFORT)
PF_ADDR, VF_INDEX = "0000:5e:00.0", 3
VF_ADDR = "0000:5e:00.4"


def port_kind(model: DriverModel) -> str | None:
    """How the agent programs VFs of this driver: ``ethernet`` (MAC, VLAN, spoof check,
    trust), ``infiniband`` (GUIDs), or ``None`` when it programs nothing."""
    if VfAttr.NODE_GUID not in model.refuses:
        return "infiniband"
    ethernet = (VfAttr.MAC, VfAttr.VLAN, VfAttr.SPOOFCHK, VfAttr.TRUST)
    return "ethernet" if not set(ethernet) & set(model.refuses) else None


class AgentHost:
    """The agent's reconciler on the target's PF, with libvirt faked (one running domain)."""

    def __init__(self, target: ContractTarget, tmp_path: Path) -> None:
        self.target = target
        where = {VF_ADDR: (target.pf, VF_INDEX)}
        self.libvirt = FakeDomainOps(target.ops, where.get)
        self.instance = str(uuid.uuid4())
        xml = render_test_domain("vm1", [], domain_type="kvm")
        self.libvirt.define(xml.replace("<name>", f"<uuid>{self.instance}</uuid><name>", 1))
        self.libvirt.start("vm1")
        self.index = HostIndex({PF_ADDR: target.pf}, frozenset({PF_ADDR, VF_ADDR}))
        self.reconciler = Reconciler(target.ops, self.libvirt, Journal(tmp_path / "state"))

    def desired(self, kind: str) -> DesiredState:
        port: dict[str, object] = {
            "port_id": str(uuid.uuid4()), "request_id": str(uuid.uuid4()),
            "instance_id": self.instance, "instance_name": self.instance,
            "address": VF_ADDR, "parent_pf": PF_ADDR,
            "vf_index": VF_INDEX, "vnic_type": "direct",
            "link_state": str(SAMPLES[VfAttr.LINK_STATE]),
            "min_tx_rate_kbps": 1000 * int(str(SAMPLES[VfAttr.MIN_TX_RATE])),
            "max_tx_rate_kbps": 1000 * int(str(SAMPLES[VfAttr.MAX_TX_RATE])),
        }  # fmt: skip
        if kind == "infiniband":
            port |= {"vif_type": "ib_hostdev", "guid": SAMPLES[VfAttr.PORT_GUID]}
        else:
            port |= {"vif_type": "hw_veb", "mac": SAMPLES[VfAttr.MAC], "vlan": 100}
        return DesiredState(host="h", generation=1, vfs=(DesiredPort.model_validate(port),))

    @staticmethod
    def empty(state: DesiredState) -> DesiredState:
        return DesiredState(host=state.host, generation=state.generation + 1)

    def pass_(self, state: DesiredState) -> ActualState:
        outcome = self.reconciler.reconcile(state, self.index)
        return self.reconciler.report(state, outcome)


class TestFakeContract(LinkOpsContract):
    @pytest.fixture(params=sorted(DRIVERS), ids=str)
    def target(self, request: pytest.FixtureRequest) -> Iterator[ContractTarget]:
        driver = str(request.param)
        ops = FakeLinkOps([FakePf("pf0", driver, num_vfs=4)])
        yield ContractTarget(ops, "pf0", 4, DRIVERS[driver])
