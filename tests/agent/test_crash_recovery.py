"""Kill the agent between every pair of steps of attach and of detach; a restarted agent (new
process: only the journal survives, the kernel and libvirt are as the dead one left them)
converges with nothing lost or leaked."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from agent_sim import PF_NETDEV, SimHost, desired, port

from vfkeeper.agent.desired import wanted_config
from vfkeeper.agent.executor import SimulatedCrash
from vfkeeper.agent.journal import Journal, PortRecord
from vfkeeper.agent.linkops.protocol import VfAttr, VfState
from vfkeeper.agent.reconcile import Step
from vfkeeper.domain.desired_state import DesiredState


def _scenario(host: SimHost) -> DesiredState:
    """Two running domains, three ports: a VLAN VF, a flat trusted VF with a rate limit, and a
    macvtap on a third VF; plus a shut-off domain with one port (persistent attach only)."""
    vm1 = host.domain("vm1", instance_id="11111111-1111-4111-8111-111111111111")
    vm2 = host.domain("vm2", instance_id="22222222-2222-4222-8222-222222222222")
    off = host.domain("vm3", running=False, instance_id="33333333-3333-4333-8333-333333333333")
    return desired(
        port(vm1, 0, port_id="aaaaaaaa-0000-4000-8000-000000000000"),
        port(vm1, 1, port_id="bbbbbbbb-0000-4000-8000-000000000000", vlan=None, trusted=True,
             max_tx_rate_kbps=2500),
        port(vm2, 2, port_id="cccccccc-0000-4000-8000-000000000000", vnic_type="macvtap"),
        port(off, 3, port_id="dddddddd-0000-4000-8000-000000000000", vlan=7),
    )


def _originals(host: SimHost) -> tuple[VfState, ...]:
    return host.linkops.list_vfs(PF_NETDEV)


def _run(host: SimHost, state: DesiredState, crash_after: int | None = None) -> list[Step]:
    done: list[Step] = []

    def hook(step: Step) -> None:
        done.append(step)
        if crash_after is not None and len(done) == crash_after:
            raise SimulatedCrash(str(step))

    agent = host.agent(hook)
    agent.reconcile(state, host.index)
    return done


def _holders(host: SimHost) -> Counter[tuple[str, str, str]]:
    """(domain, live|config, alias) of every device of every domain."""
    count: Counter[tuple[str, str, str]] = Counter()
    for dom in host.libvirt.list_domains():
        for where, d in host.libvirt.devices(dom.name).all():
            count[(dom.name, where, d.alias or "")] += 1
    return count


def _assert_attached(host: SimHost, state: DesiredState) -> None:
    agent = host.agent()
    outcome = agent.reconcile(state, host.index)
    assert outcome.plan.steps == [], "a converged host needs no more steps"
    report = agent.report(state, outcome)
    expected = {"vm1": "ACTIVE", "vm2": "ACTIVE", "vm3": "DOWN"}
    for p, actual in zip(state.vfs, report.ports, strict=True):
        dom = actual.observed.domain
        assert dom is not None
        assert (actual.status, actual.phase, actual.last_error) == (expected[dom], "attached",
                                                                    None)
        holders = _holders(host)
        assert holders[(dom, "config", p.alias)] == 1
        assert holders[(dom, "live", p.alias)] == (1 if dom != "vm3" else 0)
        vf = host.linkops.get_vf(PF_NETDEV, p.vf_index or 0)
        for attr, value in wanted_config(p).items():
            assert vf.value(attr) == value, (p.port_id, attr)
    assert sum(_holders(host).values()) == 7  # 3 running ports x 2 + 1 config-only
    assert set(agent.journal.load().records) == {p.port_id for p in state.vfs}
    assert report.foreign == () and report.vanished == () and report.releasing == ()


def _assert_released(host: SimHost, originals: tuple[VfState, ...]) -> None:
    agent = host.agent()
    empty = desired(generation=9)
    outcome = agent.reconcile(empty, host.index)
    assert outcome.plan.steps == []
    assert sum(_holders(host).values()) == 0, "no device left in any domain"
    assert _originals(host) == originals, "every VF back to exactly its original settings"
    assert agent.journal.load().records == {}, "journal clean"
    assert list(Path(agent.journal.dir).iterdir()) == [], "no temp files left"
    assert host.libvirt.drivers == {}, "every VF given back to its host driver"




def test_attach_then_release_without_crash(host: SimHost) -> None:
    originals = _originals(host)
    state = _scenario(host)
    steps = _run(host, state)
    assert [s.kind.value for s in steps].count("attach") == 7
    _assert_attached(host, state)
    _run(host, desired(generation=2))
    _assert_released(host, originals)


def _igb_scenario(host: SimHost) -> DesiredState:
    vm = host.domain("vm1", instance_id="44444444-4444-4444-8444-444444444444")
    return desired(port(vm, 0, port_id="eeeeeeee-0000-4000-8000-000000000000",
                        link_state="enable", min_tx_rate_kbps=5000, max_tx_rate_kbps=20000))


def _assert_igb_attached(host: SimHost, state: DesiredState) -> None:
    agent = host.agent()
    outcome = agent.reconcile(state, host.index)
    report = agent.report(state, outcome)
    [actual] = report.ports
    assert (actual.status, actual.last_error) == ("ACTIVE", None)
    [record] = agent.journal.load().records.values()
    assert record.snapshot is not None
    assert set(record.snapshot.original.attrs()) == {VfAttr.MAC, VfAttr.VLAN,
                                                     VfAttr.MAX_TX_RATE}, \
        "the journal holds exactly what was changed"



@dataclass(frozen=True)
class Scenario:
    driver: str
    build: Callable[[SimHost], DesiredState]
    check: Callable[[SimHost, DesiredState], None]
    attach_steps: int
    detach_steps: int


SCENARIOS = {
    # record+program for 4 ports (8) + 7 attaches; 7 detaches + 4 restores + 4 forgets
    "ice": Scenario("ice", _scenario, _assert_attached, 15, 15),
    # a best-effort setting the NIC refuses (igb: forced link state, minimum rate): record,
    # program, attach live, attach config; detach live, detach config, restore, forget
    "igb": Scenario("igb", _igb_scenario, _assert_igb_attached, 4, 4),
}


def _boundaries(steps: Callable[[Scenario], int]) -> list[Any]:
    """(scenario, crash after step n) for every step boundary of every scenario."""
    return [pytest.param(name, n, id=f"{name}-{n}") for name, sc in SCENARIOS.items()
            for n in range(1, steps(sc) + 1)]  # fmt: skip


def _host(tmp_path: Path, name: str) -> tuple[SimHost, Scenario]:
    scenario = SCENARIOS[name]
    return SimHost(tmp_path / "state", driver=scenario.driver), scenario


@pytest.mark.parametrize("name", SCENARIOS)
def test_step_counts_cover_every_boundary(tmp_path: Path, name: str) -> None:
    host, scenario = _host(tmp_path, name)
    state = scenario.build(host)
    assert len(_run(host, state)) == scenario.attach_steps
    assert len(_run(host, desired(generation=2))) == scenario.detach_steps


@pytest.mark.parametrize(("name", "crash_after"), _boundaries(lambda sc: sc.attach_steps))
def test_crash_during_attach_converges(tmp_path: Path, name: str, crash_after: int) -> None:
    host, scenario = _host(tmp_path, name)
    originals = _originals(host)
    state = scenario.build(host)
    with pytest.raises(SimulatedCrash):
        _run(host, state, crash_after)
    _run(host, state)  # the restarted agent
    scenario.check(host, state)
    _run(host, desired(generation=2))
    _assert_released(host, originals)


@pytest.mark.parametrize(("name", "crash_after"), _boundaries(lambda sc: sc.detach_steps))
def test_crash_during_detach_converges(tmp_path: Path, name: str, crash_after: int) -> None:
    host, scenario = _host(tmp_path, name)
    originals = _originals(host)
    state = scenario.build(host)
    _run(host, state)
    with pytest.raises(SimulatedCrash):
        _run(host, desired(generation=2), crash_after)
    _run(host, desired(generation=3))
    _assert_released(host, originals)


@pytest.mark.parametrize("crash_after", [1, 2, 3])
def test_crash_twice_in_a_row(host: SimHost, crash_after: int) -> None:
    originals = _originals(host)
    state = _scenario(host)
    for _ in range(2):
        with pytest.raises(SimulatedCrash):
            _run(host, state, crash_after)
    _run(host, state)
    _assert_attached(host, state)
    _run(host, desired(generation=2))
    _assert_released(host, originals)


@pytest.fixture
def igb(tmp_path: Path) -> SimHost:
    return SimHost(tmp_path / "igb-state", driver="igb")


class _DiesOnRewrite(Journal):
    """The agent dies while it rewrites a record: after the VF was programmed, before the
    journal says which of the recorded settings the NIC refused."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir)
        self.recorded: set[str] = set()

    def put(self, record: PortRecord) -> None:
        if record.port_id in self.recorded:
            raise SimulatedCrash(f"rewrite {record.port_id}")
        self.recorded.add(record.port_id)
        super().put(record)


@pytest.mark.parametrize("then", ["reconcile again", "release at once"])
def test_a_crash_before_the_journal_drops_a_refused_setting(igb: SimHost, then: str) -> None:
    """The journal still names the refused link state and minimum rate as originals (as every
    record of an agent before this fix did): the restarted agent releases the VF all the same."""
    originals = _originals(igb)
    state = _igb_scenario(igb)
    with pytest.raises(SimulatedCrash):
        igb.agent(journal=_DiesOnRewrite(igb.state_dir)).reconcile(state, igb.index)
    [record] = Journal(igb.state_dir).load().records.values()
    assert record.snapshot is not None
    assert VfAttr.LINK_STATE in record.snapshot.original.attrs()
    if then == "reconcile again":
        _run(igb, state)
        _assert_igb_attached(igb, state)
    _run(igb, desired(generation=2))
    _assert_released(igb, originals)
