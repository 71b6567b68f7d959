"""``vfkeeper discover`` / ``simulate`` through the CLI runner, on simulated hosts of
every NIC model: the JSON must carry what the real hardware would show."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vfkeeper.cli.main import build_app
from vfkeeper.sim import NIC_MODELS, HostSpec, PfSpec, build_tree


def run(*args: str) -> Any:
    result = CliRunner().invoke(build_app(), list(args))
    assert result.exit_code == 0, result.output
    return result


def discover_json(root: Path, *extra: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(run("discover", "--sysfs-root", str(root), "--json",
                                         *extra).stdout)
    return doc


@dataclass(frozen=True)
class Expected:
    model: str
    pf: str  # vendor:product
    vf: str
    pf_driver: str
    vf_driver: str
    class_code: str
    link: str
    vf_addresses: tuple[str, str]
    pf_netdevs: tuple[str, ...]
    rdma: str | None  # PF's RDMA device
    admin_guids: bool


MODELS = [
    Expected("cx4-ib", "15b3:1013", "15b3:1014", "mlx5_core", "mlx5_core", "0x020700",
             "infiniband", ("0000:03:00.1", "0000:03:00.2"), ("ib0",), "mlx5_0", True),
    Expected("cx4-eth", "15b3:1013", "15b3:1014", "mlx5_core", "mlx5_core", "0x020000",
             "ethernet", ("0000:03:00.1", "0000:03:00.2"), ("enp3s0f0",), "mlx5_0", True),
    Expected("cx5-ib", "15b3:1017", "15b3:1018", "mlx5_core", "mlx5_core", "0x020700",
             "infiniband", ("0000:03:00.1", "0000:03:00.2"), ("ib0",), "mlx5_0", True),
    Expected("cx5-eth", "15b3:1017", "15b3:1018", "mlx5_core", "mlx5_core", "0x020000",
             "ethernet", ("0000:03:00.1", "0000:03:00.2"), ("enp3s0f0",), "mlx5_0", True),
    Expected("cx6-ib", "15b3:101b", "15b3:101c", "mlx5_core", "mlx5_core", "0x020700",
             "infiniband", ("0000:03:00.1", "0000:03:00.2"), ("ib0",), "mlx5_0", True),
    Expected("cx6-eth", "15b3:101b", "15b3:101c", "mlx5_core", "mlx5_core", "0x020000",
             "ethernet", ("0000:03:00.1", "0000:03:00.2"), ("enp3s0f0",), "mlx5_0", True),
    Expected("cx3-eth", "15b3:1003", "15b3:1004", "mlx4_core", "mlx4_core", "0x028000",
             "ethernet", ("0000:03:00.1", "0000:03:00.2"), ("enp3s0f0", "enp3s0f0d1"),
             "mlx4_0", False),
    Expected("cx3-ib", "15b3:1003", "15b3:1004", "mlx4_core", "mlx4_core", "0x028000",
             "infiniband", ("0000:03:00.1", "0000:03:00.2"), ("ib0", "ib1"), "mlx4_0", False),
    Expected("e810", "8086:159b", "8086:1889", "ice", "iavf", "0x020000", "ethernet",
             ("0000:03:01.0", "0000:03:01.1"), ("enp3s0f0",), None, False),
    Expected("x710", "8086:1572", "8086:154c", "i40e", "iavf", "0x020000", "ethernet",
             ("0000:03:02.0", "0000:03:02.1"), ("enp3s0f0",), None, False),
    Expected("i350", "8086:1521", "8086:1520", "igb", "igbvf", "0x020000", "ethernet",
             ("0000:03:10.0", "0000:03:10.4"), ("enp3s0f0",), None, False),
    Expected("igb-82576", "8086:10c9", "8086:10ca", "igb", "igbvf", "0x020000", "ethernet",
             ("0000:03:10.0", "0000:03:10.2"), ("enp3s0f0",), None, False),
    Expected("vic", "1137:0043", "1137:0071", "enic", "enic", "0x020000", "ethernet",
             ("0000:03:00.1", "0000:03:00.2"), ("enp3s0f0",), None, False),
]


def test_every_model_is_covered() -> None:
    assert {e.model for e in MODELS} | {"cx3"} == set(NIC_MODELS)


def _ids(dev: dict[str, Any]) -> str:
    return f"{dev['vendor_id']}:{dev['product_id']}"


@pytest.mark.parametrize("exp", MODELS, ids=lambda e: e.model)
def test_discover_json_per_model(tmp_path: Path, exp: Expected) -> None:
    build_tree(HostSpec(hostname="t", pfs=(PfSpec(exp.model, vfs=2),), extra_devices=()),
               tmp_path)
    doc = discover_json(tmp_path)
    assert doc["hostname"] == "t" and doc["warnings"] == []
    pf, vf0, vf1 = doc["devices"]
    nic = NIC_MODELS[exp.model]

    assert pf["address"] == "0000:03:00.0" and _ids(pf) == exp.pf
    assert (pf["dev_type"], pf["driver"], pf["class_code"]) == ("type-PF", exp.pf_driver,
                                                                exp.class_code)
    assert (pf["sriov_totalvfs"], pf["sriov_numvfs"]) == (nic.totalvfs, 2)
    assert (pf["parent_addr"], pf["vf_index"], pf["bus_info"]) == (None, None, pf["address"])
    assert (pf["numa_node"], pf["link_type"]) == (0, exp.link)
    assert [n["name"] for n in pf["netdevs"]] == list(exp.pf_netdevs)
    assert [n["dev_port"] for n in pf["netdevs"]] == list(range(len(exp.pf_netdevs)))
    assert {n["link_type"] for n in pf["netdevs"]} == {exp.link}
    assert {n["speed_mbps"] for n in pf["netdevs"]} == {nic.speed_mbps}

    for index, vf in enumerate((vf0, vf1)):
        assert vf["address"] == exp.vf_addresses[index] and _ids(vf) == exp.vf
        assert (vf["dev_type"], vf["parent_addr"], vf["vf_index"]) == ("type-VF", pf["address"],
                                                                     index)
        assert (vf["driver"], vf["class_code"], vf["link_type"]) == (exp.vf_driver,
                                                                    exp.class_code, exp.link)
        assert vf["sriov_totalvfs"] is None and vf["sriov_numvfs"] is None
        assert len(vf["netdevs"]) == nic.ports
        assert vf["iommu_group"] not in (None, pf["iommu_group"])
    assert len({n["mac"] for d in (pf, vf0, vf1) for n in d["netdevs"]}) == 3 * nic.ports

    if exp.rdma is None:
        assert pf["infiniband"] is None and vf0["infiniband"] is None
    else:
        _check_rdma(exp, pf, vf0)
    if exp.admin_guids:
        for vf in (vf0, vf1):
            admin = vf["vf_admin_guids"]
            assert admin["node_guid"] == vf["infiniband"]["node_guid"]
            if exp.link == "infiniband":
                assert admin["port_guid"] == vf["infiniband"]["ports"][0]["port_guid"]
                assert admin["policy"] == "Follow"
            else:  # mlx5 in Ethernet mode shows only the node GUID
                assert admin["port_guid"] is None and admin["policy"] is None
    else:
        assert vf0["vf_admin_guids"] is None


def _check_rdma(exp: Expected, pf: dict[str, Any], vf: dict[str, Any]) -> None:
    ib, vf_ib = pf["infiniband"], vf["infiniband"]
    nic = NIC_MODELS[exp.model]
    assert ib["name"] == exp.rdma
    assert ib["sys_image_guid"] == ib["node_guid"] == vf_ib["sys_image_guid"]
    assert vf_ib["node_guid"] != ib["node_guid"]
    assert [p["number"] for p in ib["ports"]] == list(range(1, nic.ports + 1))
    port = ib["ports"][0]
    assert (port["state"], port["phys_state"]) == ("4: ACTIVE", "5: LinkUp")
    assert port["rate"] == nic.ib_rate
    if exp.link == "infiniband":
        assert port["link_layer"] == "InfiniBand"
        assert port["pkeys"] == ["0xffff", "0x8001", "0x8002"]
        assert port["port_guid"] != ib["node_guid"]
        # the IPoIB hardware address ends with the port's GID, i.e. its port GUID
        tail = pf["netdevs"][0]["mac"].replace(":", "")[-16:]
        assert "0x" + tail == port["port_guid"]
        assert len(pf["netdevs"][0]["mac"].split(":")) == 20
    else:
        assert port["link_layer"] == "Ethernet" and port["pkeys"] == ["0xffff"]
        assert port["lid"] == 0


def test_known_guid_values_are_stable(tmp_path: Path) -> None:
    """GUIDs and MACs are seeded by host name and PF index: pinned so tests and demos that
    quote them keep working."""
    build_tree(HostSpec(hostname="t", pfs=(PfSpec("cx5-ib", vfs=1),), extra_devices=()),
               tmp_path)
    pf, vf = discover_json(tmp_path)["devices"]
    assert pf["infiniband"]["node_guid"] == "0x0002c9aef8000000"
    assert vf["vf_admin_guids"]["node_guid"] == "0x0002c9aef8000004"
    assert vf["vf_admin_guids"]["port_guid"] == "0x0002c9aef8000005"


def test_vfio_bound_vf_has_no_netdev_but_keeps_its_identity(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("cx6-ib", vfs=2, vfio_vfs=(1,)),), extra_devices=()),
               tmp_path)
    _, vf0, vf1 = discover_json(tmp_path)["devices"]
    assert vf1["driver"] == "vfio-pci"
    assert vf1["netdevs"] == [] and vf1["infiniband"] is None and vf1["bus_info"] is None
    assert vf1["link_type"] == "infiniband"  # from the PCI class 0x0207
    assert vf1["vf_admin_guids"]["node_guid"] is not None
    assert vf0["driver"] == "mlx5_core" and vf0["netdevs"]


def test_pf_with_sriov_off_is_still_a_pf(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("i350", vfs=0),), extra_devices=()), tmp_path)
    (pf,) = discover_json(tmp_path)["devices"]
    assert (pf["dev_type"], pf["sriov_numvfs"], pf["sriov_totalvfs"]) == ("type-PF", 0, 7)


def test_non_network_functions_only_with_all(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("x710", vfs=1),)), tmp_path)
    default = discover_json(tmp_path)["devices"]
    everything = discover_json(tmp_path, "--all")["devices"]
    assert [d["address"] for d in default] == ["0000:03:00.0", "0000:03:02.0"]
    others = [d for d in everything if not d["is_network"]]
    assert {(d["address"], d["class_code"], d["driver"]) for d in others} == {
        ("0000:00:00.0", "0x060000", None),
        ("0000:00:17.0", "0x010601", "ahci"),
        ("0000:00:1d.0", "0x010802", "nvme"),
    }
    assert all(d["dev_type"] == "type-PCI" for d in others)


def test_table_groups_vfs_under_their_pf(tmp_path: Path) -> None:
    build_tree(HostSpec(hostname="tbl", pfs=(PfSpec("cx5-ib", vfs=2), PfSpec("e810", vfs=1)),
                        extra_devices=()), tmp_path)
    out = run("discover", "--sysfs-root", str(tmp_path)).stdout
    rows = [line for line in out.splitlines() if "0000:" in line]
    firsts = [r.split("│")[1].strip() for r in rows]
    assert firsts == ["0000:03:00.0", "└ 0000:03:00.1", "└ 0000:03:00.2",
                      "0000:04:00.0", "└ 0000:04:01.0"]
    assert "15b3:1017" in rows[0] and "4: ACTIVE" not in out
    assert "2/127" in rows[0] and "vf 1" in rows[2]
    assert "0xffff,0x8001,0x8002" in out and "node 0x0002c9" in out


def test_table_lists_warnings_on_stderr(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("e810", vfs=0),), extra_devices=()), tmp_path)
    (tmp_path / "sys/devices/pci0000:00/0000:00:02.0/0000:03:00.0/vendor").write_text("bogus\n")
    result = run("discover", "--sysfs-root", str(tmp_path))
    assert "?:159b" in result.stdout
    assert "1 warning(s)" in result.stderr and "/0000:03:00.0/vendor" in result.stderr


def test_wrong_root_is_an_error_not_an_empty_host(tmp_path: Path) -> None:
    result = CliRunner().invoke(build_app(), ["discover", "--sysfs-root", str(tmp_path)])
    assert result.exit_code == 1
    assert "no PCI device listing" in result.stderr
    assert "pass the directory that contains sys/" in result.stderr


def test_simulate_host_then_discover(tmp_path: Path) -> None:
    out = tmp_path / "h"
    result = run("simulate", "host", "--out", str(out), "--model", "cx4-ib", "--pfs", "2",
                 "--vfs", "3", "--hostname", "node7", "--vfio-vfs", "0")
    assert "11 PCI functions" in result.stdout and "discover --sysfs-root" in result.stdout
    doc = discover_json(out)
    assert doc["hostname"] == "node7" and len(doc["devices"]) == 8
    assert [d["driver"] for d in doc["devices"] if d["vf_index"] == 0] == ["vfio-pci"] * 2


@pytest.mark.parametrize(("args", "message"), [
    (["--model", "cx9"], "unknown NIC model 'cx9'"),
    (["--model", "i350", "--vfs", "8"], "sriov_totalvfs is 7"),
    (["--model", "i350", "--vfs", "2", "--vfio-vfs", "5"], "VF index 5 does not exist"),
])
def test_simulate_host_refuses_what_a_kernel_could_not_show(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = CliRunner().invoke(build_app(), ["simulate", "host", "--out", str(tmp_path), *args])
    assert result.exit_code == 1 and message in result.stderr


def test_simulate_models_lists_every_model() -> None:
    out = run("simulate", "models").stdout
    assert all(name in out for name in NIC_MODELS)
    assert "8086:1889" in out
