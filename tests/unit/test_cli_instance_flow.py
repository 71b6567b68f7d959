"""The API client commands, driven through typer's runner against an in-process controller."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from vfkeeper.cli.main import build_app
from vfkeeper.controller.app import create_app
from vfkeeper.controller.auth import create_token
from vfkeeper.controller.settings import ControllerSettings
from vfkeeper.domain.inventory import Device, HostInventory

Run = Callable[..., Any]


def _inventory(name: str, vfs: int) -> dict[str, Any]:
    pf = Device(address="0000:03:00.0", vendor_id="15b3", product_id="1017", dev_type="type-PF",
                sriov_totalvfs=vfs, driver="mlx5_core", bus_info="0000:03:00.0", numa_node=0)
    devices = [pf] + [
        Device(address=f"0000:03:00.{i + 1}", vendor_id="15b3", product_id="1018",
               dev_type="type-VF", parent_addr="0000:03:00.0", vf_index=i, numa_node=0)
        for i in range(vfs)]
    return HostInventory(hostname=name, devices=tuple(devices)).model_dump(mode="json")


@pytest.fixture
def run(tmp_path: Path, asgi_transport: Callable[[Any], Any]) -> Iterator[Run]:
    """``run(*args)`` invokes the CLI against an in-process controller holding one host with
    four VFs on physnet1 (its inventory and specs sent through the API, as an agent and an
    admin would)."""
    app = create_app(ControllerSettings(db_url=f"sqlite:///{tmp_path / 'c.sqlite'}"), seed=3)
    with app.state.ctx.db.write() as s:
        token = create_token(s, "admin", "cli test")
    transport = asgi_transport(app)
    with httpx.Client(transport=transport, base_url="http://t",
                      headers={"Authorization": f"Bearer {token}"}) as api:
        api.put("/v1/hosts/h1/inventory", json=_inventory("h1", 4)).raise_for_status()
        api.put("/v1/device-specs", json={"entries": [
            {"vendor_id": "15b3", "physical_network": "physnet1"}]}).raise_for_status()

    def invoke(*args: str, ok: bool = True, answer: str | None = None) -> Any:
        result = CliRunner().invoke(build_app(), [*args, "--token", token],
                                    obj={"transport": transport}, input=answer)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    yield invoke
    app.state.ctx.db.dispose()


def _json(result: Any) -> Any:
    return json.loads(result.stdout)


def test_network_port_boot_and_delete_through_the_cli(run: Run) -> None:
    net = _json(run("network", "create", "n1", "--physical-network", "physnet1", "--type",
                    "vlan", "--id", "100", "--json"))
    assert net["segmentation"] == {"type": "vlan", "id": 100}
    port = _json(run("port", "create", "--network", "n1", "--json"))
    inst = _json(run("instance", "boot", "vm1", "--port", port["id"], "--json"))
    assert inst["host"] == "h1"
    allocs = _json(run("allocation", "list", "--json"))
    assert [(a["host"], a["port_id"]) for a in allocs] == [("h1", port["id"])]
    table = run("pool", "list").stdout
    assert table.splitlines()[0].split()[:3] == ["HOST", "PHYSICAL_NETWORK", "DEV_TYPE"]
    assert "h1" in run("host", "list").stdout
    shown = _json(run("port", "show", port["id"], "--json"))
    assert shown["binding:host_id"] == "h1"
    run("instance", "delete", inst["id"])
    assert _json(run("allocation", "list", "--json")) == []
    run("port", "delete", port["id"])
    run("network", "delete", "n1")
    assert _json(run("network", "list", "--json")) == []


def test_an_unplaceable_boot_prints_every_hosts_reason(run: Run) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1")
    run("host", "disable", "h1", "--reason", "maintenance")
    port = _json(run("port", "create", "--network", "n1", "--json"))
    result = run("instance", "boot", "vm1", "--port", port["id"], ok=False)
    assert result.exit_code == 1
    assert "no valid host" in result.stderr and "h1: " in result.stderr


def test_no_valid_host_is_explained_once_saying_what_can_never_fit(run: Run) -> None:
    """h1 has 4 VFs on physnet1 in all: 5 can never fit there, whatever is freed; and none of
    them is tagged trusted, so a trusted port lacks the tag, not free devices."""
    run("network", "create", "n1", "--physical-network", "physnet1")
    ports = [_json(run("port", "create", "--network", "n1", "--json"))["id"] for _ in range(5)]
    result = run("instance", "boot", "big", *(a for p in ports for a in ("--port", p)),
                 ok=False)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "Error: no valid host: 1 host rejected (capacity: 1)",
        "h1: physnet physnet1: 5 VFs asked, never fits: 4 VFs in total",
    ]
    trusted = _json(run("port", "create", "--network", "n1", "--trusted", "--json"))["id"]
    result = run("instance", "boot", "t", "--port", trusted, ok=False)
    assert result.stderr.splitlines()[1] == (
        "h1: physnet physnet1: 1 trusted VF asked, but no device spec tags any of its VFs "
        "trusted=true")


def test_interfaces_show_bus_info_and_driver(run: Run) -> None:
    rows = _json(run("host", "interfaces", "h1", "--json"))
    assert rows == []  # the test inventory has no netdevs
    assert "BUS_INFO" in run("host", "interfaces", "h1").stdout


def test_api_errors_print_the_message_and_exit_1_details_with_json(run: Run) -> None:
    result = run("network", "show", "nope", ok=False)
    assert result.exit_code == 1
    assert result.stderr == "Error: no network 'nope'; list networks with GET /v1/networks\n"
    with_json = run("network", "show", "nope", "--json", ok=False)
    assert with_json.exit_code == 1 and '"kind": "network"' in with_json.stderr


def test_a_value_the_controller_refuses_names_the_cli_option_and_exits_2(run: Run) -> None:
    result = run("network", "create", "n", "--physical-network", "p", "--type", "vlan",
                 "--id", "5000", ok=False)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: --type/--id: VLAN id 5000 is outside 1-4094")
    assert "segmentation" not in result.stderr and "body" not in result.stderr
    mtu = run("network", "create", "n", "--physical-network", "p", "--mtu", "5", ok=False)
    assert mtu.exit_code == 2 and mtu.stderr.startswith("Error: --mtu: ")
    qos = run("port", "create", "--network", "nope", "--max-kbps", "-1", ok=False)
    assert qos.exit_code == 2 and qos.stderr.startswith("Error: --max-kbps: ")


def test_connection_refused_names_the_url() -> None:
    result = CliRunner().invoke(build_app(), ["host", "list", "--controller",
                                              "http://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach the controller at http://127.0.0.1:9" in result.stderr


def test_spec_apply_replaces_the_cluster_specs_and_recomputes_pools(run: Run) -> None:
    out = run("spec", "apply", "--spec", '{"vendor_id": "15b3", "product_id": "1018", '
              '"physical_network": "fabric-b"}').stdout
    assert "cluster: 1 entries; pools recomputed on 1 host(s): h1" in out
    pools = _json(run("pool", "list", "--json"))
    assert {p["physical_network"] for p in pools} == {"fabric-b"}
    shown = _json(run("spec", "show", "--json"))
    assert shown["cluster"] == [{"vendor_id": "15b3", "product_id": "1018",
                                 "physical_network": "fabric-b"}]


def test_spec_apply_reads_a_toml_config_and_sets_a_host_override(run: Run, tmp_path: Path) -> None:
    config = tmp_path / "vfkeeper.toml"
    config.write_text('[[device_spec]]\naddress = "0000:03:00.0"\nproduct_id = "1018"\n'
                      'physical_network = "override-net"\n')
    run("spec", "apply", "--host", "h1", "--config", str(config))
    assert {p["physical_network"] for p in _json(run("pool", "list", "--json"))} == {
        "override-net"}
    assert "h1" in _json(run("spec", "show", "--json"))["overrides"]
    run("spec", "clear-host", "h1")
    assert {p["physical_network"] for p in _json(run("pool", "list", "--json"))} == {"physnet1"}


def test_spec_apply_refuses_a_bad_entry_locally_and_changes_nothing(run: Run) -> None:
    result = run("spec", "apply", "--spec", '{"vendor_id": "15b3x", "physical_network": "p"}',
                 ok=False)
    assert result.exit_code == 2
    assert "vendor_id" in result.output and "--spec #0" in result.output
    assert _json(run("spec", "show", "--json"))["cluster"] == [
        {"vendor_id": "15b3", "physical_network": "physnet1"}]


def test_spec_apply_keeps_in_use_devices_and_says_so(run: Run) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1")
    port = _json(run("port", "create", "--network", "n1", "--vnic-type", "direct",
                     "--json"))["id"]
    run("instance", "boot", "vm1", "--port", port)
    out = run("spec", "apply", "--spec", '{"vendor_id": "8086", "physical_network": "x"}').stdout
    assert "kept in use, no longer selected" in out
    assert _json(run("allocation", "list", "--json"))  # the allocation survived the change


def test_attach_and_detach_a_port_through_the_cli(run: Run) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1", "--type", "vlan", "--id",
        "100")
    first = _json(run("port", "create", "--network", "n1", "--json"))["id"]
    inst = _json(run("instance", "boot", "vm1", "--port", first, "--json"))
    second = _json(run("port", "create", "--network", "n1", "--json"))["id"]
    view = _json(run("instance", "attach-port", inst["id"], second, "--json"))
    assert sorted(view["ports"]) == sorted([first, second]) and len(view["allocations"]) == 2
    assert "allocations:" in run("instance", "show", inst["id"]).stdout
    out = run("instance", "detach-port", inst["id"], second).stdout
    assert out.strip() == f"detached port {second} from instance {inst['id']}"
    assert _json(run("port", "show", second, "--json"))["instance_id"] is None
    result = run("instance", "detach-port", inst["id"], second, ok=False)
    assert result.exit_code == 1 and "not attached to any instance" in result.stderr
    view = _json(run("instance", "attach-port", inst["id"], second, "--json"))
    assert second in view["ports"]
    assert _json(run("instance", "detach-port", inst["id"], second, "--json"))["ports"] == [first]


def test_an_attach_the_host_cannot_hold_prints_its_reason(run: Run) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1")
    ports = [_json(run("port", "create", "--network", "n1", "--json"))["id"] for _ in range(5)]
    inst = _json(run("instance", "boot", "vm1", "--port", ports[0], "--json"))
    for port in ports[1:4]:  # h1 has four VFs
        run("instance", "attach-port", inst["id"], port)
    result = run("instance", "attach-port", inst["id"], ports[4], ok=False)
    assert result.exit_code == 1
    assert "no valid host" in result.stderr and "h1: " in result.stderr
    assert '"host": "h1"' in run("instance", "attach-port", inst["id"], ports[4], "--json",
                                 ok=False).stderr
    assert _json(run("port", "show", ports[4], "--json"))["instance_id"] is None


def test_instance_show_lists_each_claim_with_its_numa_node(run: Run) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1")
    port = _json(run("port", "create", "--network", "n1", "--json"))["id"]
    inst = _json(run("instance", "boot", "vm1", "--port", port, "--json"))
    lines = run("instance", "show", inst["id"]).stdout.splitlines()
    at = lines.index("allocations:")
    assert lines[at + 1].split() == ["PORT", "DEVICE", "NUMA", "REQUEST"]
    assert lines[at + 2].split()[:3] == [port, "0000:03:00.1", "0"]


def test_pool_list_shows_each_pools_tags(run: Run) -> None:
    run("spec", "apply", "--spec", '{"vendor_id": "15b3", "product_id": "1018", '
        '"physical_network": "physnet1", "trusted": "true"}')
    lines = run("pool", "list").stdout.splitlines()
    header = lines[0].split()
    assert "TAGS" in header
    assert lines[1].split()[header.index("TAGS")] == "trusted=true"


def test_network_list_and_show_give_pkeys_in_hex(run: Run) -> None:
    run("network", "create", "ib", "--physical-network", "fabric", "--type", "pkey", "--id",
        "2561", "--full-membership")
    run("network", "create", "eth", "--physical-network", "physnet1", "--type", "vlan", "--id",
        "100")
    listed = run("network", "list").stdout
    assert "pkey 0x8a01 (full member)" in listed and "vlan 100" in listed
    assert "2561" not in listed
    assert "segmentation: pkey 0x8a01 (full member)" in run("network", "show", "ib").stdout
    assert _json(run("network", "show", "ib", "--json"))["segmentation"]["id"] == 2561


def test_host_show_reads_in_sections_and_json_is_unchanged(run: Run) -> None:
    out = run("host", "show", "h1").stdout
    lines = out.splitlines()
    assert lines[:2] == ["host h1", "  enabled: yes"]
    assert "agent" in lines and "devices" in lines and "problems: none" in lines
    assert ("  5 in total, 5 assignable, 0 in use, 0 releasing, 5 free (each device: --json)"
            in lines)
    assert "releasing: none" in lines
    pools = lines.index("pools")
    assert lines[pools + 1].split()[:3] == ["PHYSICAL_NETWORK", "TYPE", "PARENT_PF"]
    assert "{" not in out  # no JSON blob
    assert _json(run("host", "show", "h1", "--json"))["devices_total"] == 5


def test_host_delete_is_refused_while_an_instance_is_on_it(run: Run) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1")
    port = _json(run("port", "create", "--network", "n1", "--json"))["id"]
    inst = _json(run("instance", "boot", "vm1", "--port", port, "--json"))
    refused = run("host", "delete", "h1", ok=False)
    assert refused.exit_code == 1 and f"instance {inst['id']}" in refused.stderr
    [device] = [a["device"] for a in inst["allocations"]]
    run("instance", "delete", inst["id"])
    # its VF is releasing: no agent has given it back
    refused = run("host", "delete", "h1", ok=False)
    assert refused.exit_code == 1 and "1 releasing device" in refused.stderr
    shown = run("host", "show", "h1").stdout
    assert f"  {device}: instance deleted (port {port}, instance {inst['id']}" in shown
    listed = run("pool", "list").stdout.splitlines()
    assert "RELEASING" in listed[0]
    # force-release says what it risks and asks; "no" does nothing
    asked = run("host", "force-release", "h1", device, ok=False, answer="n\n")
    assert asked.exit_code == 1 and "old domain" in asked.stderr
    assert "nothing done" in asked.stderr
    assert run("host", "delete", "h1", ok=False).exit_code == 1
    forced = run("host", "force-release", "h1", device, "--yes").stdout
    assert f"released {device} on host h1" in forced
    again = run("host", "force-release", "h1", device, "--yes", ok=False)
    assert again.exit_code == 1 and "not releasing" in again.stderr
    assert run("host", "delete", "h1").stdout.strip() == "deleted host h1"
    assert _json(run("host", "list", "--json")) == []
    assert run("host", "delete", "h1", ok=False).exit_code == 1


def test_subnets_and_port_addresses_through_the_cli(run: Run) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1", "--type", "vlan",
        "--id", "100")
    made = _json(run("subnet", "create", "n1", "192.0.2.0/24", "--name", "v4", "--dns",
                     "192.0.2.53", "--route", "10.9.0.0/16=192.0.2.254", "--pool",
                     "192.0.2.10-192.0.2.20", "--json"))
    assert made["host_routes"] == [{"destination": "10.9.0.0/16", "nexthop": "192.0.2.254"}]
    assert made["allocation_pools"] == [{"start": "192.0.2.10", "end": "192.0.2.20"}]
    run("subnet", "create", "n1", "2001:db8:9::/64", "--ipv6-mode", "slaac", "--no-gateway")
    listed = run("subnet", "list", "n1").stdout
    assert "192.0.2.0/24" in listed and "2001:db8:9::/64" in listed and "slaac" in listed
    port = run("port", "create", "--network", "n1", "--ip", "192.0.2.15", "--mac",
               "52:54:00:12:34:56").stdout
    assert "fixed_ips: 192.0.2.15, 2001:db8:9:0:5054:ff:fe12:3456 (slaac)" in port
    taken = run("port", "create", "--network", "n1", "--ip", "192.0.2.15", ok=False)
    assert taken.exit_code == 1 and "192.0.2.15 is already used by port" in taken.stderr
    outside = run("port", "create", "--network", "n1", "--ip", "198.51.100.1", ok=False)
    assert outside.exit_code == 1 and "outside every subnet" in outside.stderr
    kept = run("subnet", "delete", "n1", "v4", ok=False)
    assert kept.exit_code == 1 and "in use by port" in kept.stderr


def test_bad_subnet_values_name_the_cli_option(run: Run) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1")
    gateway = run("subnet", "create", "n1", "192.0.2.0/24", "--gateway", "10.0.0.1", ok=False)
    assert gateway.exit_code == 2 and gateway.stderr.startswith("Error: --gateway: ")
    pool = run("subnet", "create", "n1", "192.0.2.0/24", "--pool", "192.0.2.1-192.0.2.9",
               ok=False)
    assert pool.exit_code == 2 and pool.stderr.startswith("Error: --pool: ")
    shape = run("subnet", "create", "n1", "192.0.2.0/24", "--route", "10.0.0.0/8", ok=False)
    assert shape.exit_code == 2 and "DEST=NEXTHOP" in shape.stderr
    both = run("subnet", "create", "n1", "192.0.2.0/24", "--gateway", "192.0.2.1",
               "--no-gateway", ok=False)
    assert both.exit_code == 2 and "not both" in both.stderr
    assert _json(run("subnet", "list", "n1", "--json")) == []


def test_boot_passes_the_guests_host_name_keys_and_user_data(run: Run, tmp_path: Path) -> None:
    run("network", "create", "n1", "--physical-network", "physnet1")
    port = _json(run("port", "create", "--network", "n1", "--json"))["id"]
    key = tmp_path / "alice.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHz3 alice@laptop\n")
    bad_key = tmp_path / "bob.pub"
    bad_key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\n")
    refused = run("instance", "boot", "vm", "--port", port, "--ssh-key", str(bad_key), ok=False)
    assert refused.exit_code == 2 and refused.stderr.startswith("Error: --ssh-key: ")
    missing = run("instance", "boot", "vm", "--port", port, "--user-data",
                  str(tmp_path / "nope"), ok=False)
    assert missing.exit_code == 2 and "--user-data" in missing.stderr
    assert "cannot read the file" in missing.stderr
    booted = _json(run("instance", "boot", "vm", "--port", port, "--hostname", "web1",
                       "--ssh-key", str(key), "--user-data", str(user_data), "--json"))
    assert booted["name"] == "vm"


def test_config_drive_writes_an_iso_with_the_instances_documents(run: Run,
                                                                  tmp_path: Path) -> None:
    import io

    import pycdlib

    run("network", "create", "n1", "--physical-network", "physnet1")
    run("subnet", "create", "n1", "192.0.2.0/24")
    port = _json(run("port", "create", "--network", "n1", "--json"))
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\nruncmd: [true]\n")
    instance = _json(run("instance", "boot", "vm", "--port", port["id"], "--hostname", "web1",
                         "--user-data", str(user_data), "--json"))
    out = tmp_path / "drive.iso"
    said = run("instance", "config-drive", instance["id"], "--out", str(out)).stdout
    assert said.startswith(f"wrote {out} (") and said.rstrip().endswith("config-2)")

    def read(iso_path: Path, path: str) -> tuple[str, bytes]:
        iso = pycdlib.PyCdlib()
        iso.open(str(iso_path))
        try:
            data = io.BytesIO()
            iso.get_file_from_iso_fp(data, rr_path=path)
            return iso.pvd.volume_identifier.decode().strip(), data.getvalue()
        finally:
            iso.close()

    label, meta = read(out, "/openstack/latest/meta_data.json")
    assert label == "config-2"
    assert json.loads(meta)["uuid"] == instance["id"] and json.loads(meta)["hostname"] == "web1"
    assert read(out, "/openstack/latest/user_data")[1] == user_data.read_bytes()
    network = json.loads(read(out, "/openstack/latest/network_data.json")[1])
    assert network["networks"][0]["ip_address"] == port["fixed_ips"][0]["ip_address"]
    run("instance", "config-drive", instance["id"], "--out", str(out), "--format", "nocloud")
    label, meta = read(out, "/meta-data")
    assert label == "cidata" and instance["id"] in meta.decode()
    bad = run("instance", "config-drive", instance["id"], "--out", str(out), "--format", "iso",
              ok=False)
    assert bad.exit_code == 2 and bad.stderr.startswith("Error: --format: ")
    gone = run("instance", "config-drive", "nope", "--out", str(tmp_path / "x.iso"), ok=False)
    assert gone.exit_code == 1 and not (tmp_path / "x.iso").exists()
