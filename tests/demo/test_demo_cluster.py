"""``vfkeeper demo`` end to end: one run through typer's runner (a real controller on a
loopback port in a thread, SQLite in ``--workdir``, a real agent per simulated host), then its
outcome checked through the REST API of a controller opened in-process on the database the
demo left behind, and in the fake kernels and libvirt models the agents worked on."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vfkeeper.agent.linkops.protocol import VfAttr, VfState
from vfkeeper.cli.main import build_app
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.demo import runner, scenario, views
from vfkeeper.demo.agents import Fleet
from vfkeeper.demo.session import Session
from vfkeeper.domain.guid import GUID_CLEAR
from vfkeeper.domain.vif import render_test_domain

pytest.importorskip("libvirt", reason="the demo's hosts need the libvirt binding (test driver)")

DOMAIN_RNG = Path("/usr/share/libvirt/schemas/domain.rng")
HOST_NAMES = [h.name for h in scenario.HOSTS]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path, runner.Outcome]:
    """The CLI's run, and the demo's :class:`~vfkeeper.demo.runner.Outcome` (its agents'
    fake kernels and libvirt models stay readable after the demo closed their connections)."""
    workdir = tmp_path_factory.mktemp("demo") / "work"
    outcomes: list[runner.Outcome] = []
    real_run = runner.run

    def keep_outcome(*args: Any, **kwargs: Any) -> runner.Outcome:
        outcomes.append(real_run(*args, **kwargs))
        return outcomes[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "run", keep_outcome)
        result = CliRunner().invoke(build_app(), ["demo", "--workdir", str(workdir)])
    assert outcomes, result.output
    return result, workdir, outcomes[0]


@pytest.fixture(scope="module")
def demo(run: tuple[Any, Path, runner.Outcome]) -> tuple[Any, Path]:
    return run[0], run[1]


@pytest.fixture(scope="module")
def fleet(run: tuple[Any, Path, runner.Outcome]) -> Fleet:
    assert run[2].fleet is not None
    return run[2].fleet


@pytest.fixture
def api(demo: tuple[Any, Path], asgi_transport: Callable[[Any], Any]) -> Iterator[Session]:
    """A session against the controller state the demo left in its workdir."""
    _, workdir = demo
    app = create_app(runner.settings_for(workdir))
    with app.state.ctx.db.write() as s:
        token = create_token(s, "admin", "test")
    yield Session("http://demo", token, transport=asgi_transport(app))
    app.state.ctx.db.dispose()


def test_the_demo_runs_every_step_and_exits_0(demo: tuple[Any, Path]) -> None:
    result, workdir = demo
    assert result.exit_code == 0, result.output
    assert "the demo stopped" not in result.output
    for number in range(1, 8):
        assert re.search(rf"^{number}\. ", result.stdout, re.MULTILINE), number
    assert (workdir / "vfkeeper.sqlite").is_file()
    assert {p.name for p in (workdir / "hosts").iterdir()} == set(HOST_NAMES)


def test_every_instance_is_placed_on_its_networks_physnet(api: Session) -> None:
    rows = views.placements(api)
    pools = {(p["host"], p["physical_network"]) for p in api.get("/v1/pools")}
    booted = {p.name for p in scenario.INSTANCES} - {scenario.DELETED_INSTANCE}
    assert {r.instance for r in rows} == booted
    for row in rows:
        assert row.physical_network == row.network_physnet
        assert (row.host, row.physical_network) in pools
    by_port = {r.port: r for r in rows}
    assert by_port["mixed-1-ib0"].host == "host-c"  # the only host on both fabrics
    assert by_port["db-1-pf0"].vif_type == "hostdev_physical"
    assert by_port["mixed-1-eth0"].vif_type == "802.1qbh"
    assert by_port["mixed-1-ib0"].segment == "pkey 0x0a01"
    assert by_port["web-1-eth1"].segment == "vlan 100"


def test_the_unplaceable_request_is_explained_for_every_host(demo: tuple[Any, Path]) -> None:
    out = demo[0].stdout
    start = out.index("Error: no valid host")
    explanation = out[start:out.index("\n\n", start)]
    for host in HOST_NAMES:
        assert re.search(rf"^{host}: \S", explanation, re.MULTILINE), host
    assert "policy required" in explanation
    assert "5 VFs asked, never fits: 4 VFs in total" in explanation  # host-a has 4 per node
    assert not out[start + len(explanation):].lstrip().startswith(("{", "[")), "shown twice"


def test_no_instance_took_the_unplaceable_requests_ports(api: Session) -> None:
    names = {i["name"] for i in api.get("/v1/instances")}
    assert scenario.UNPLACEABLE.name not in names
    assert not any(p["name"].startswith(scenario.UNPLACEABLE.name) for p in api.get("/v1/ports"))


def test_the_deleted_instances_vfs_are_free_again(demo: tuple[Any, Path], api: Session) -> None:
    assert scenario.DELETED_INSTANCE not in {i["name"] for i in api.get("/v1/instances")}
    host_a = api.get("/v1/pools", host="host-a")
    assert all(p["used"] == 0 and p["free"] == p["total"] for p in host_a)
    match = re.search(r"(\d+) devices returned to host-a's pools .*: free (\d+) → (\d+)",
                      demo[0].stdout)
    assert match is not None
    returned, before, after = map(int, match.groups())
    assert (returned, after - before) == (3, 3)


def test_the_xml_the_demo_shows_is_what_the_ports_render(run: tuple[Any, Path, runner.Outcome],
                                                          api: Session) -> None:
    xml = views.instance_xml(api, scenario.XML_INSTANCE)
    plan = next(p for p in scenario.INSTANCES if p.name == scenario.XML_INSTANCE)
    assert set(xml) == {p.name for p in plan.ports}
    for text in xml.values():
        assert text in run[0].stdout
    in_domain = run[2].xml  # read from the domain the agent attached them to
    assert set(in_domain) == {p.name for p in plan.ports} - set(scenario.KNOWN_GAPS)
    assert all(in_domain[name] == xml[name] for name in in_domain)


def test_every_ports_xml_is_valid_libvirt(api: Session) -> None:
    etree = pytest.importorskip("lxml.etree", reason="lxml is not installed")
    if not DOMAIN_RNG.is_file():
        pytest.skip(f"libvirt schema {DOMAIN_RNG} is missing (apt-get install libvirt-clients)")
    rng = etree.RelaxNG(file=str(DOMAIN_RNG))
    for inst in api.get("/v1/instances"):
        devices = views.instance_xml(api, inst["name"]).values()
        domain = render_test_domain(inst["name"], devices, domain_type="kvm")
        assert rng.validate(etree.fromstring(domain)), f"{rng.error_log}\n{domain}"


# --- the agents ---------------------------------------------------------------------------------


def _bound_ports(api: Session) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(inst, port) for inst in api.get("/v1/instances")
            for port in api.get("/v1/ports", instance=inst["id"])]


def test_every_port_is_active_after_the_agents_ran_but_the_known_gaps(api: Session) -> None:
    ports = _bound_ports(api)
    assert len(ports) == 5
    for _, port in ports:
        if port["name"] in scenario.KNOWN_GAPS:
            assert port["status"] == "ERROR"
            assert "refused" in port["actual"]["last_error"]
            continue
        assert (port["status"], port["actual"]["phase"]) == ("ACTIVE", "attached"), port["name"]
        assert port["actual"]["attached_live"] and port["actual"]["attached_config"]


def test_each_agent_reported_with_its_own_token(api: Session) -> None:
    for host in HOST_NAMES:
        view = api.get(f"/v1/hosts/{host}")
        assert view["agent"]["last_seen"] is not None
        assert view["agent_report"] is not None, host


def test_the_fake_kernels_show_each_ports_mac_vlan_or_guid(api: Session, fleet: Fleet) -> None:
    checked = 0
    for inst, port in _bound_ports(api):
        if port["name"] in scenario.KNOWN_GAPS:
            continue
        vf = fleet[inst["host"]].vf(port["binding:profile"]["pci_slot"])
        if port["binding:vif_type"] == "hostdev_physical":
            assert vf is None  # a whole PF: nothing programmed
            continue
        assert vf is not None
        if port["binding:vif_type"] == "802.1qbh":
            _check_vic_vf(fleet[inst["host"]], port)
        elif port["binding:vif_type"] == "ib_hostdev":
            assert vf.node_guid == vf.port_guid == port["guid"]
        else:
            assert vf.mac == port["mac"]
            assert vf.vlan is not None and vf.vlan.id == int(port["binding:vif_details"]["vlan"])
            assert port["actual"]["mac"] == port["mac"]
        checked += 1
    assert checked == 4  # mixed-1-ib0, mixed-1-eth0 (VIC), web-1-eth0, web-1-eth1


def _check_vic_vf(host: Any, port: dict[str, Any]) -> None:
    """enic reads nothing back (no ndo_get_vf_config): what the fake kernel was asked is the
    evidence. libvirt's 802.1Qbh association wrote the MAC, nothing wrote a VLAN, and the
    port profile is associated."""
    address = port["binding:profile"]["pci_slot"]
    pf, index = host.vf_of[address]
    writes = [(attr.value, value) for p, i, attr, value in host.kernel.writes
              if (p, i) == (pf, index)]
    assert writes == [("mac", port["mac"])]
    assert host.port_profile(address) == port["binding:vif_details"]["profileid"]


def test_each_domain_holds_its_ports_devices_live_and_persistent(api: Session,
                                                                 fleet: Fleet) -> None:
    for inst, port in _bound_ports(api):
        model = fleet[inst["host"]].hypervisor.model
        domain = model.domains[inst["name"]]
        assert domain.uuid == inst["id"]
        alias = f"ua-vfk-{port['id']}"
        held = ({d.alias for d in domain.live}, {d.alias for d in domain.config})
        expected = port["name"] not in scenario.KNOWN_GAPS
        assert (alias in held[0], alias in held[1]) == (expected, expected), port["name"]


def _restored(original: VfState, now: VfState) -> bool:
    """Every attribute back; a GUID the VF never had (zero) is now cleared (all ones)."""
    for attr in VfAttr:
        was, is_ = original.value(attr), now.value(attr)
        if attr in (VfAttr.NODE_GUID, VfAttr.PORT_GUID) and was == "0x0000000000000000":
            was = GUID_CLEAR.canonical
        if was != is_:
            return False
    return True


def test_the_delete_detached_restored_and_forgot_every_vf(run: tuple[Any, Path, runner.Outcome],
                                                          fleet: Fleet) -> None:
    release = run[2].release
    assert release is not None and len(release.devices) == 3
    host = fleet[release.host]
    domain = host.hypervisor.model.domains[scenario.DELETED_INSTANCE]  # libvirt is closed now
    assert (domain.live, domain.config) == ([], [])
    assert (release.held_before, release.held_after, release.left_in_journal) == (3, 0, 0)
    for device in release.devices:
        before, now = release.vfs_before[device], host.vf(device)
        assert before is not None and now is not None
        assert before.port_guid != now.port_guid  # it was programmed, and is no more
        assert _restored(host.originals[device], now), device
    assert not list((run[1] / "agents" / release.host / "state" / "ports").glob("*.json"))
