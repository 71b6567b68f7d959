"""``vfkeeper demo`` end to end: one run through typer's runner (a real controller on a
loopback port in a thread, SQLite in ``--workdir``), then its outcome checked through the REST
API of a controller opened in-process on the database the demo left behind."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vfkeeper.cli.main import build_app
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.demo import runner, scenario, views
from vfkeeper.demo.session import Session
from vfkeeper.domain.vif import render_test_domain

DOMAIN_RNG = Path("/usr/share/libvirt/schemas/domain.rng")
HOST_NAMES = [h.name for h in scenario.HOSTS]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    workdir = tmp_path_factory.mktemp("demo") / "work"
    result = CliRunner().invoke(build_app(), ["demo", "--workdir", str(workdir)])
    return result, workdir


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
    explanation = out[start:out.index("\n{", start)]
    for host in HOST_NAMES:
        assert re.search(rf"^{host}: \S", explanation, re.MULTILINE), host
    assert "policy required" in explanation


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


def test_the_xml_the_demo_shows_is_what_the_ports_render(demo: tuple[Any, Path],
                                                          api: Session) -> None:
    xml = views.instance_xml(api, scenario.XML_INSTANCE)
    plan = next(p for p in scenario.INSTANCES if p.name == scenario.XML_INSTANCE)
    assert set(xml) == {p.name for p in plan.ports}
    for text in xml.values():
        assert text in demo[0].stdout


def test_every_ports_xml_is_valid_libvirt(api: Session) -> None:
    etree = pytest.importorskip("lxml.etree", reason="lxml is not installed")
    if not DOMAIN_RNG.is_file():
        pytest.skip(f"libvirt schema {DOMAIN_RNG} is missing (apt-get install libvirt-clients)")
    rng = etree.RelaxNG(file=str(DOMAIN_RNG))
    for inst in api.get("/v1/instances"):
        devices = views.instance_xml(api, inst["name"]).values()
        domain = render_test_domain(inst["name"], devices, domain_type="kvm")
        assert rng.validate(etree.fromstring(domain)), f"{rng.error_log}\n{domain}"
