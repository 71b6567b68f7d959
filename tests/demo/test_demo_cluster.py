"""``vfkeeper demo`` end to end: one run through typer's runner (a real controller on a
loopback port in a thread, SQLite in ``--workdir``, a real agent per simulated host), then its
outcome checked through the REST API of a controller opened in-process on the database the
demo left behind, in every API answer the demo got, and in the fake kernels and libvirt models
the agents worked on.

What the scenario must come to is written out here, worked out by hand from
:mod:`vfkeeper.demo.scenario` (the hosts' NICs and the instances' requests), not read back from
the code under test."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from vfkeeper.agent.linkops.protocol import VfAttr, VfState
from vfkeeper.cli.main import build_app
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.demo import runner, scenario, views
from vfkeeper.demo.agents import Fleet
from vfkeeper.demo.session import Session, new_console
from vfkeeper.domain.guid import GUID_CLEAR
from vfkeeper.domain.vif import render_test_domain

pytest.importorskip("libvirt", reason="the demo's hosts need the libvirt binding (test driver)")

DOMAIN_RNG = Path("/usr/share/libvirt/schemas/domain.rng")
HOST_NAMES = ["host-a", "host-b", "host-c"]

HOST_OF = {
    # 3 InfiniBand VFs on one NUMA node: host-a has 4 on each node, host-c's one IB PF has 2
    # VFs, host-b has no InfiniBand.
    "hpc-1": "host-a",
    # one port on each fabric: host-c is the only host with both physnets.
    "mixed-1": "host-c",
    # 2 Ethernet VFs: host-b has 4 + 4; host-c's VIC has 2, and mixed-1 took one of them.
    "web-1": "host-b",
    # a whole Ethernet PF: only host-c hands one out (its I350).
    "db-1": "host-c",
}
VIF_TYPE = {
    "hpc-1-ib0": "ib_hostdev", "hpc-1-ib1": "ib_hostdev", "hpc-1-ib2": "ib_hostdev",
    "mixed-1-ib0": "ib_hostdev",
    "mixed-1-eth0": "802.1qbh",  # the Cisco VIC's VFs carry a port profile
    "web-1-eth0": "hw_veb", "web-1-eth1": "hw_veb",  # direct and macvtap
    "db-1-pf0": "hostdev_physical",
}
INSTANCE_OF = {port: port.rsplit("-", 1)[0] for port in VIF_TYPE}
DELETED_PORTS = {"hpc-1-ib0", "hpc-1-ib1", "hpc-1-ib2"}
BOUND_PORTS = set(VIF_TYPE) - DELETED_PORTS
UNPLACEABLE_FILTER = {
    # 5 IB VFs on one node: host-a has 1 + 4 free (hpc-1 holds 3 on one node): enough in
    # total, not on any one node.
    "host-a": "numa_affinity",
    "host-b": "capacity",  # no InfiniBand at all
    "host-c": "capacity",  # 1 IB VF free (mixed-1 holds the other)
}


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    status: int
    body: Any


class RecordingTransport(httpx.BaseTransport):
    """Real HTTP to the demo's controller, keeping every request the demo (and the CLI it
    runs) made with the controller's answer."""

    def __init__(self) -> None:
        self._inner = httpx.HTTPTransport()
        self.exchanges: list[Exchange] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        content = response.read()
        body = json.loads(content) if content else None
        self.exchanges.append(Exchange(request.method, request.url.path,
                                       response.status_code, body))
        return response

    def close(self) -> None:
        self._inner.close()


@dataclass(frozen=True)
class DemoRun:
    result: Any
    workdir: Path
    outcome: runner.Outcome
    exchanges: list[Exchange]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """The CLI's run, the demo's :class:`~vfkeeper.demo.runner.Outcome` (its agents' fake
    kernels and libvirt models stay readable after the demo closed their connections), and
    every API exchange of the demo's session."""
    workdir = tmp_path_factory.mktemp("demo") / "work"
    outcomes: list[runner.Outcome] = []
    real_run = runner.run
    recorder = RecordingTransport()

    def recording_session(url: str, token: str) -> Session:
        return Session(url, token, new_console(), transport=recorder)

    def keep_outcome(*args: Any, **kwargs: Any) -> runner.Outcome:
        outcomes.append(real_run(*args, session_factory=recording_session, **kwargs))
        return outcomes[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(runner, "run", keep_outcome)
        result = CliRunner().invoke(build_app(), ["demo", "--workdir", str(workdir)])
    assert outcomes, result.output
    yield DemoRun(result, workdir, outcomes[0], recorder.exchanges)
    recorder.close()


@pytest.fixture(scope="module")
def fleet(run: DemoRun) -> Fleet:
    assert run.outcome.fleet is not None
    return run.outcome.fleet


@pytest.fixture
def api(run: DemoRun, asgi_transport: Callable[[Any], Any]) -> Iterator[Session]:
    """A session against the controller state the demo left in its workdir."""
    app = create_app(runner.settings_for(run.workdir))
    with app.state.ctx.db.write() as s:
        token = create_token(s, "admin", "test")
    yield Session("http://demo", token, transport=asgi_transport(app))
    app.state.ctx.db.dispose()


def test_the_demo_runs_every_step_and_exits_0(run: DemoRun) -> None:
    assert run.result.exit_code == 0, run.result.output
    assert "the demo stopped" not in run.result.output
    for number in range(1, 9):
        assert re.search(rf"^{number}\. ", run.result.stdout, re.MULTILINE), number
    assert (run.workdir / "vfkeeper.sqlite").is_file()
    assert {p.name for p in (run.workdir / "hosts").iterdir()} == set(HOST_NAMES)
    assert [h.name for h in scenario.HOSTS] == HOST_NAMES


def test_the_only_refused_api_call_is_the_unplaceable_boot(run: DemoRun) -> None:
    """Every other call the demo and its CLI made succeeded: no step hid a failure."""
    refused = [(e.method, e.path, e.status) for e in run.exchanges if e.status >= 400]
    assert refused == [("POST", "/v1/instances", 409)]


def test_each_instance_lands_on_the_one_host_the_scenario_leaves_it(run: DemoRun,
                                                                    api: Session) -> None:
    boots = run.outcome.boots
    assert {name: boot.instance["host"] for name, boot in boots.items()} == HOST_OF
    assert {i["name"]: i["host"] for i in api.get("/v1/instances")} == {
        name: host for name, host in HOST_OF.items() if name != scenario.DELETED_INSTANCE}


def test_the_placement_table_has_every_port_on_its_host_and_physnet(run: DemoRun) -> None:
    rows = run.outcome.placements  # step 3, before any agent ran and before the delete
    assert sorted(r.port for r in rows) == sorted(VIF_TYPE)
    for row in rows:
        assert row.host == HOST_OF[row.instance] == HOST_OF[INSTANCE_OF[row.port]], row
        assert row.vif_type == VIF_TYPE[row.port], row
        assert row.physical_network == row.network_physnet, row
        assert row.status == "BUILD", row
    hpc = [r for r in rows if r.instance == "hpc-1"]
    assert len({r.device for r in hpc}) == 3  # three different VFs
    assert len({(r.parent_pf, r.numa_node) for r in hpc}) == 1  # one NUMA node (required)
    assert hpc[0].numa_node is not None


def test_every_instance_is_placed_on_its_networks_physnet(api: Session) -> None:
    rows = views.placements(api)
    pools = {(p["host"], p["physical_network"]) for p in api.get("/v1/pools")}
    assert sorted(r.port for r in rows) == sorted(BOUND_PORTS)
    for row in rows:
        assert row.physical_network == row.network_physnet
        assert (row.host, row.physical_network) in pools
        assert row.host == HOST_OF[row.instance]
    by_port = {r.port: r for r in rows}
    assert by_port["db-1-pf0"].vif_type == "hostdev_physical"
    assert by_port["mixed-1-eth0"].vif_type == "802.1qbh"
    assert by_port["mixed-1-ib0"].segment == "pkey 0x0a01"
    assert by_port["web-1-eth1"].segment == "vlan 100"


def _unplaceable_409(run: DemoRun) -> Exchange:
    [refused] = [e for e in run.exchanges if e.status == 409]
    return refused


def test_the_unplaceable_request_is_refused_with_a_reason_for_every_host(run: DemoRun) -> None:
    assert run.outcome.unplaceable_status == 1  # the CLI's exit status
    error = _unplaceable_409(run).body["error"]
    hosts = error["details"]["hosts"]
    assert [h["host"] for h in hosts] == HOST_NAMES
    assert {h["host"]: h["filter"] for h in hosts} == UNPLACEABLE_FILTER
    for h in hosts:
        assert scenario.IB_PHYSNET in h["reason"], h
    # the CLI printed the controller's explanation: each host's line once
    out = run.result.stdout
    start = out.index("Error: no valid host")
    explanation = out[start:out.index("\n\n", start)]
    for host in HOST_NAMES:
        assert len(re.findall(rf"^{host}: \S", explanation, re.MULTILINE)) == 1, host
    assert "policy required" in explanation
    assert "5 VFs asked, never fits: 4 VFs in total" in explanation  # host-a has 4 per node
    assert not out[start + len(explanation):].lstrip().startswith(("{", "[")), "shown twice"


def test_no_instance_took_the_unplaceable_requests_ports(api: Session) -> None:
    assert {i["name"] for i in api.get("/v1/instances")} == set(HOST_OF) - {"hpc-1"}
    assert sorted(p["name"] for p in api.get("/v1/ports")) == sorted(VIF_TYPE)


def test_the_deleted_instances_vfs_are_free_again(run: DemoRun, api: Session) -> None:
    assert scenario.DELETED_INSTANCE == "hpc-1"
    host_a = api.get("/v1/pools", host="host-a")
    assert sorted((p["parent_pf"], p["total"], p["used"], p["free"]) for p in host_a) == [
        ("0000:03:00.0", 4, 0, 4), ("0000:04:00.0", 4, 0, 4)]
    release = run.outcome.release
    assert release is not None
    held = sorted(r.device for r in run.outcome.placements if r.instance == "hpc-1")
    assert (release.host, sorted(release.devices)) == ("host-a", held)
    assert (release.free_before, release.free_after) == (8 - 3, 8)
    unbound = {p["name"]: p["instance_id"] for p in api.get("/v1/ports")
               if p["name"] in DELETED_PORTS}
    assert unbound == dict.fromkeys(DELETED_PORTS)  # the ports stay, unbound


def test_the_xml_the_demo_shows_is_what_the_ports_render(run: DemoRun, api: Session) -> None:
    xml = views.instance_xml(api, scenario.XML_INSTANCE)
    assert set(xml) == {"mixed-1-ib0", "mixed-1-eth0"}
    for text in xml.values():
        assert text in run.result.stdout
    in_domain = run.outcome.xml  # read from the domain the agent attached them to
    assert in_domain == xml
    assert in_domain["mixed-1-ib0"].startswith("<hostdev ")
    assert '<virtualport type="802.1Qbh">' in in_domain["mixed-1-eth0"]


def test_every_ports_xml_is_valid_libvirt(api: Session) -> None:
    etree = pytest.importorskip("lxml.etree", reason="lxml is not installed")
    if not DOMAIN_RNG.is_file():
        pytest.skip(f"libvirt schema {DOMAIN_RNG} is missing (apt-get install libvirt-clients)")
    rng = etree.RelaxNG(file=str(DOMAIN_RNG))
    instances = api.get("/v1/instances")
    assert {i["name"] for i in instances} == {"mixed-1", "web-1", "db-1"}
    for inst in instances:
        devices = views.instance_xml(api, inst["name"]).values()
        assert len(devices) == len(inst["ports"]) > 0, inst["name"]
        domain = render_test_domain(inst["name"], devices, domain_type="kvm")
        assert rng.validate(etree.fromstring(domain)), f"{rng.error_log}\n{domain}"


# --- the agents ---------------------------------------------------------------------------------


def _bound_ports(api: Session) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    found = [(inst, port) for inst in api.get("/v1/instances")
             for port in api.get("/v1/ports", instance=inst["id"])]
    assert sorted(port["name"] for _, port in found) == sorted(BOUND_PORTS)
    return found


def _kernel_shows(row: views.PortState) -> None:
    """The VF in the host's fake kernel, as the agent's pass left it, checked against what the
    port asks (not through the demo's own comparison)."""
    if row.vif_type == "hostdev_physical":
        assert row.kernel is None  # a whole PF: nothing is programmed
        return
    assert row.kernel is not None
    if row.vif_type == "ib_hostdev":
        assert row.kernel.node_guid == row.kernel.port_guid == row.desired_address
    elif row.vif_type == "802.1qbh":
        assert row.profile == scenario.VIC_PROFILE  # enic reads nothing back
    else:
        assert row.kernel.mac == row.desired_address
        assert row.kernel.vlan is not None and row.kernel.vlan.id == 100


def test_all_8_ports_came_up_active_when_the_agents_ran(run: DemoRun) -> None:
    rows = run.outcome.attached  # step 4: every port of the scenario, hpc-1's included
    assert sorted(r.port for r in rows) == sorted(VIF_TYPE)
    for row in rows:
        assert (row.status, row.actual.get("phase")) == ("ACTIVE", "attached"), row.port
        assert row.actual["attached_live"] and row.actual["attached_config"], row.port
        assert (row.host, row.vif_type) == (HOST_OF[row.instance], VIF_TYPE[row.port])
        _kernel_shows(row)


def test_every_bound_port_is_still_active_after_the_delete(api: Session) -> None:
    for _, port in _bound_ports(api):
        assert (port["status"], port["actual"]["phase"]) == ("ACTIVE", "attached"), port["name"]
        assert port["actual"]["attached_live"] and port["actual"]["attached_config"]


def test_each_agent_reported_with_its_own_token(api: Session) -> None:
    for host in HOST_NAMES:
        view = api.get(f"/v1/hosts/{host}")
        assert view["agent"]["last_seen"] is not None
        assert view["agent"]["alive"] is True, host
        assert view["agent_report"] is not None, host


def test_the_fake_kernels_show_each_ports_mac_vlan_or_guid(api: Session, fleet: Fleet) -> None:
    checked = []
    for inst, port in _bound_ports(api):
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
        checked.append(port["name"])
    assert sorted(checked) == ["mixed-1-eth0", "mixed-1-ib0", "web-1-eth0", "web-1-eth1"]


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
        assert (alias in held[0], alias in held[1]) == (True, True), port["name"]


def _restored(original: VfState, now: VfState) -> bool:
    """Every attribute back; a GUID the VF never had (zero) is now cleared (all ones)."""
    for attr in VfAttr:
        was, is_ = original.value(attr), now.value(attr)
        if attr in (VfAttr.NODE_GUID, VfAttr.PORT_GUID) and was == "0x0000000000000000":
            was = GUID_CLEAR.canonical
        if was != is_:
            return False
    return True


def test_the_delete_detached_restored_and_forgot_every_vf(run: DemoRun, fleet: Fleet) -> None:
    release = run.outcome.release
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
    assert not list((run.workdir / "agents" / release.host / "state" / "ports").glob("*.json"))


def test_the_guest_step_shows_the_ports_addresses_and_what_cloud_init_writes(
        run: DemoRun, api: Session) -> None:
    assert run.outcome.guest is not None
    inst = views.instance_named(api, scenario.GUEST_INSTANCE)
    ports = [api.get(f"/v1/ports/{pid}") for pid in inst["ports"]]
    addresses = {a["ip_address"] for p in ports for a in p["fixed_ips"]}
    assert len(addresses) == 3  # IPv4 + IPv6 on the VLAN port, IPv4 on the InfiniBand port
    shown = run.outcome.guest.network_data
    assert {n["ip_address"] for n in shown["networks"]} == addresses
    assert json.dumps(shown, indent=2) in run.result.stdout
    if shutil.which("cloud-init") is None:
        assert "cloud-init is not installed on this machine" in run.result.stdout
        return
    netplan = run.outcome.guest.rendered["netplan"]["etc/netplan/50-cloud-init.yaml"]
    ifcfg = "".join(run.outcome.guest.rendered["sysconfig"].values())
    for address in addresses:
        assert address in netplan and address in ifcfg and address in run.result.stdout
