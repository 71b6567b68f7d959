"""``vfkeeper vf show|set`` through typer's runner, with the fake LinkOps injected."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from vfkeeper.agent.linkops import LinkState, Vlan
from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
from vfkeeper.cli import vf
from vfkeeper.cli.main import build_app


@pytest.fixture
def host() -> FakeLinkOps:
    return FakeLinkOps(
        [FakePf("eth0", "igb", num_vfs=3), FakePf("ib0", "mlx5_ib", num_vfs=2)]
    )


def run(host: FakeLinkOps, *args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    vf.register(app, linkops=lambda: host)
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, flat(result.stderr)


def flat(text: str) -> str:
    """stderr without rich's box drawing and line wrapping."""
    return " ".join(text.translate({ord(c): " " for c in "│╭╮╰╯─"}).split())


def test_vf_is_part_of_the_vfkeeper_command() -> None:
    result = CliRunner().invoke(build_app(), ["vf", "--help"])
    assert result.exit_code == 0
    assert "show" in result.output and "set" in result.output


def test_show_prints_each_vf_and_marks_what_the_driver_does_not_report(
    host: FakeLinkOps,
) -> None:
    host.set_vf("eth0", 1, vf.VfConfig(mac="02:00:00:00:00:01", vlan=Vlan(10, 2)))
    code, out, _ = run(host, "vf", "show", "eth0")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["vf", "mac", "vlan"]
    row = lines[2].split()
    assert row[0] == "1" and row[1] == "02:00:00:00:00:01"
    assert "10 qos 2 proto 802.1Q" in lines[2]
    assert lines[1].split()[-3:] == ["-", "-", "auto"]  # igb reports no GUIDs


def test_show_json_has_typed_values(host: FakeLinkOps) -> None:
    code, out, _ = run(host, "vf", "show", "ib0", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["pf"] == "ib0" and len(doc["vfs"]) == 2
    first = doc["vfs"][0]
    assert first["vlan"] == {"id": 0, "qos": 0, "proto": "802.1Q"}
    assert first["trust"] is None and first["link_state"] == "auto"
    assert first["node_guid"] == "0x0000000000000000"


def test_set_programs_the_vf_and_says_what_changed(host: FakeLinkOps) -> None:
    code, out, err = run(
        host, "vf", "set", "eth0", "2", "--mac", "02-AA-BB-CC-DD-EE", "--vlan", "100",
        "--qos", "3", "--trust", "on", "--spoofchk", "on", "--max-rate", "500",
    )  # fmt: skip
    assert (code, err) == (0, "")
    state = host.get_vf("eth0", 2)
    assert (state.mac, state.vlan, state.trust, state.max_tx_rate) == (
        "02:aa:bb:cc:dd:ee",
        Vlan(100, 3),
        True,
        500,
    )
    assert "eth0 VF 2: mac = 02:aa:bb:cc:dd:ee" in out
    assert "eth0 VF 2: spoofchk already on" in out


def test_set_guids_and_state_on_an_infiniband_pf(host: FakeLinkOps) -> None:
    code, _, _ = run(
        host, "vf", "set", "ib0", "1", "--node-guid", "00:02:c9:03:00:a1:b2:c3",
        "--port-guid", "0002:c903:00a1:b2c4", "--state", "enable",
    )  # fmt: skip
    assert code == 0
    state = host.get_vf("ib0", 1)
    assert (state.node_guid, state.port_guid, state.link_state) == (
        "0x0002c90300a1b2c3",
        "0x0002c90300a1b2c4",
        LinkState.ENABLE,
    )
    assert host.rebinds == [("ib0", 1)]


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--mac", "02:00:00:00:00"], "invalid MAC address"),
        (["--node-guid", "0xffffffffffffffff"], "all-ones"),
        (["--port-guid", "0x0"], "non-zero GUID"),
        (["--vlan", "5000"], "--vlan"),
        (["--state", "up"], "--state"),
        (["--trust", "yes"], "--trust"),
        ([], "at least one attribute"),
    ],
)
def test_bad_values_are_usage_errors_and_touch_nothing(
    host: FakeLinkOps, args: list[str], complaint: str
) -> None:
    code, _, err = run(host, "vf", "set", "eth0", "0", *args)
    assert code == 2
    assert complaint in err
    assert host.writes == []


def test_a_refusal_exits_1_naming_pf_vf_attribute_value_and_undoes_the_rest(
    host: FakeLinkOps,
) -> None:
    code, _, err = run(host, "vf", "set", "eth0", "0", "--mac", "02:00:00:00:00:05",
                       "--min-rate", "100")  # fmt: skip
    assert code == 1
    assert "eth0 VF 0: the driver refused min_tx_rate=100 (EINVAL" in err
    assert "put back" in err
    assert host.get_vf("eth0", 0).mac == "00:00:00:00:00:00"


def test_unsupported_attribute_and_unknown_pf_or_vf(host: FakeLinkOps) -> None:
    code, _, err = run(host, "vf", "set", "eth0", "0", "--state", "disable")
    assert code == 1 and "link_state=disable" in err and "ENOTSUP" in err
    code, _, err = run(host, "vf", "show", "eth9")
    assert code == 1 and "no network interface 'eth9'" in err
    code, _, err = run(host, "vf", "set", "eth0", "7", "--trust", "on")
    assert code == 1 and "eth0 has no VF 7: it has VFs 0-2" in err
