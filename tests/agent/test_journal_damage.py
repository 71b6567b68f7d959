"""A damaged journal record affects only its own port: the agent leaves that VF and its device
alone, reconciles every other port, and reports the host as unable to reconcile (the record
may hold the only copy of the VF's original settings, so nothing may guess them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from agent_sim import PF_NETDEV, SimHost, desired, port

from vfkeeper.agent.journal import DamagedRecord, Journal, PortRecord
from vfkeeper.agent.linkops.protocol import VfConfig
from vfkeeper.agent.linkops.snapshot import VfSnapshot
from vfkeeper.domain.desired_state import DesiredState

A = "aaaaaaaa-0000-4000-8000-00000000000a"
B = "bbbbbbbb-0000-4000-8000-00000000000b"
C = "cccccccc-0000-4000-8000-00000000000c"


def _good(port_id: str = A) -> dict[str, object]:
    record = PortRecord(port_id, "0000:03:00.1", "vm1", f"ua-vfk-{port_id}", "<hostdev/>",
                        VfSnapshot(PF_NETDEV, 0, VfConfig(mac="00:00:00:00:00:00")))
    return record.to_dict()


def _with(path: list[str], value: object) -> str:
    doc = _good()
    target = doc
    for key in path[:-1]:
        target = target[key]  # type: ignore[assignment]
    target[path[-1]] = value  # type: ignore[index]
    return json.dumps(doc)


DAMAGE = {
    "empty": "",
    "cut short": json.dumps(_good())[:40],
    "a list": "[1, 2]",
    "an empty object": "{}",
    "a number for the port id": _with(["port_id"], 5),
    "a string for the VF index": _with(["snapshot", "vf_index"], "0"),
    "a bad MAC": _with(["snapshot", "original", "mac"], "zz"),
    "a number for trust": _with(["snapshot", "original", "trust"], 1),
    "an unknown attribute": _with(["snapshot", "original", "mtu"], 1500),
    "another format": _with(["format"], 2),
    "another port's record": json.dumps(_good(B)),
    "not text": b"\xff\xfe\x00".decode("latin-1"),
}


@pytest.mark.parametrize("content", list(DAMAGE.values()), ids=list(DAMAGE))
def test_load_returns_damaged_records_instead_of_raising(tmp_path: Path, content: str) -> None:
    journal = Journal(tmp_path)
    good = PortRecord(C, "0000:03:00.3", "vm1", f"ua-vfk-{C}", "<hostdev/>", None)
    journal.put(good)
    bad = journal.dir / f"{A}.json"
    bad.write_bytes(content.encode("latin-1"))

    contents = journal.load()

    assert contents.records == {C: good}
    [damaged] = contents.damaged
    assert (damaged.path, damaged.port_id) == (str(bad), A)
    assert damaged.problem
    assert str(bad) in damaged.message and "vfkeeper vf set" in damaged.message


def test_a_damaged_record_still_names_its_device_when_it_can(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    (journal.dir / f"{A}.json").write_text(_with(["snapshot", "original", "trust"], "yes"))
    [damaged] = journal.load().damaged
    assert damaged == DamagedRecord(str(journal.dir / f"{A}.json"), A, damaged.problem,
                                    "0000:03:00.1")
    assert "snapshot.original.trust" in damaged.problem


def _state(host: SimHost, vm: str, *ports: str) -> DesiredState:
    by_id = {A: 0, B: 1, C: 2}
    return desired(*(port(vm, by_id[p], port_id=p) for p in ports))


@pytest.mark.parametrize("content", ["", "[1, 2]", json.dumps(_good())[:40]],
                         ids=["empty", "a list", "cut short"])
def test_one_damaged_record_stops_only_its_own_port(host: SimHost, content: str) -> None:
    vm = host.domain("vm1", instance_id="11111111-1111-4111-8111-111111111111")
    agent = host.agent()
    agent.reconcile(_state(host, vm, A, B), host.index)
    record = agent.journal.dir / f"{A}.json"
    record.write_text(content)
    vf0 = host.linkops.get_vf(PF_NETDEV, 0)
    held = list(host.libvirt.devices("vm1").all())

    # a new port comes, and B leaves: both are done; A is left exactly as it is
    agent = host.agent()
    state = _state(host, vm, A, C)
    report = agent.report(state, agent.reconcile(state, host.index))

    by_id = {p.port_id: p for p in report.ports}
    assert by_id[C].status == "ACTIVE"
    assert by_id[A].status == "ERROR"
    assert str(record) in (by_id[A].last_error or "")
    assert "vfkeeper vf set" in (by_id[A].last_error or "")
    [problem] = report.problems
    assert (problem.kind, problem.path, problem.port_id) == ("journal", str(record), A)
    assert set(agent.journal.load().records) == {C}, "B released, C recorded"
    assert host.linkops.get_vf(PF_NETDEV, 0) == vf0, "A's VF untouched"
    assert [d for d in host.libvirt.devices("vm1").all() if d[1].alias == f"ua-vfk-{A}"] == \
        [d for d in held if d[1].alias == f"ua-vfk-{A}"], "A's device left where it was"

    # released too, A's device stays (its originals are in the damaged file only)
    report = agent.report(desired(generation=2), agent.reconcile(desired(generation=2),
                                                                 host.index))
    assert [p.port_id for p in report.problems] == [A]
    assert any(d.alias == f"ua-vfk-{A}" for _, d in host.libvirt.devices("vm1").all())
    assert report.foreign == (), "the agent's own device is not called foreign"

    # the operator restores the VF by hand and moves the file away: the host is whole again
    record.rename(record.with_suffix(".damaged"))
    report = agent.report(desired(generation=3), agent.reconcile(desired(generation=3),
                                                                 host.index))
    assert report.problems == ()
    assert list(host.libvirt.devices("vm1").all()) == []


def test_a_desired_port_on_the_device_of_a_damaged_record_waits(host: SimHost) -> None:
    """Another port asking for the VF that a damaged record names is not given it either."""
    vm = host.domain("vm1")
    journal = Journal(host.state_dir)
    (journal.dir / f"{A}.json").write_text(_with(["snapshot", "vf_index"], "0"))
    other = port(vm, 0, port_id=B)
    agent = host.agent()
    state = desired(other)
    report = agent.report(state, agent.reconcile(state, host.index))
    [actual] = report.ports
    assert actual.status == "ERROR" and f"{A}.json" in (actual.last_error or "")
    assert list(host.libvirt.devices("vm1").all()) == []
