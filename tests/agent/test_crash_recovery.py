"""Kill the agent between every pair of steps of attach and of detach; a restarted agent (new
process: only the journal survives, the kernel and libvirt are as the dead one left them)
converges with nothing lost or leaked."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from agent_sim import PF_NETDEV, SimHost, desired, port

from vfkeeper.agent.desired import wanted_config
from vfkeeper.agent.executor import SimulatedCrash
from vfkeeper.agent.linkops.protocol import VfState
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
    assert set(agent.journal.load()) == {p.port_id for p in state.vfs}
    assert report.foreign == () and report.vanished == () and report.releasing == ()


def _assert_released(host: SimHost, originals: tuple[VfState, ...]) -> None:
    agent = host.agent()
    empty = desired(generation=9)
    outcome = agent.reconcile(empty, host.index)
    assert outcome.plan.steps == []
    assert sum(_holders(host).values()) == 0, "no device left in any domain"
    assert _originals(host) == originals, "every VF back to exactly its original settings"
    assert agent.journal.load() == {}, "journal clean"
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


ATTACH_STEPS = 15  # record+program for 4 ports (8) + 7 attaches; checked below
DETACH_STEPS = 15  # 7 detaches + 4 restores + 4 forgets


def test_step_counts_cover_every_boundary(host: SimHost) -> None:
    state = _scenario(host)
    assert len(_run(host, state)) == ATTACH_STEPS
    assert len(_run(host, desired(generation=2))) == DETACH_STEPS


@pytest.mark.parametrize("crash_after", range(1, ATTACH_STEPS + 1))
def test_crash_during_attach_converges(host: SimHost, crash_after: int) -> None:
    originals = _originals(host)
    state = _scenario(host)
    with pytest.raises(SimulatedCrash):
        _run(host, state, crash_after)
    _run(host, state)  # the restarted agent
    _assert_attached(host, state)
    _run(host, desired(generation=2))
    _assert_released(host, originals)


@pytest.mark.parametrize("crash_after", range(1, DETACH_STEPS + 1))
def test_crash_during_detach_converges(host: SimHost, crash_after: int) -> None:
    originals = _originals(host)
    state = _scenario(host)
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
