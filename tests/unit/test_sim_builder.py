"""The fake sysfs builder: a real tree with real symlinks, laid out like the kernel's,
deterministic per host name, refusing what a kernel could not show."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.sim import (
    HostSpec,
    PfSpec,
    SimSpecError,
    UnknownModelError,
    build_tree,
    simulate_host,
)

BUS = "sys/bus/pci/devices"


def test_links_are_real_symlinks_the_kernel_way(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("cx5-ib", vfs=2, vfio_vfs=(1,)),), extra_devices=()),
               tmp_path)
    pf, vf = tmp_path / BUS / "0000:03:00.0", tmp_path / BUS / "0000:03:00.1"
    assert pf.is_symlink() and os.readlink(pf).startswith("../../../devices/pci0000:00/")
    assert (pf / "virtfn0").is_symlink() and os.readlink(pf / "virtfn0") == "../0000:03:00.1"
    assert os.readlink(vf / "physfn") == "../0000:03:00.0"
    assert (vf / "driver").resolve() == (tmp_path / "sys/bus/pci/drivers/mlx5_core").resolve()
    vfio = tmp_path / "sys/bus/pci/drivers/vfio-pci/0000:03:00.2"
    assert vfio.is_symlink() and vfio.resolve() == (tmp_path / BUS / "0000:03:00.2").resolve()
    group = (vf / "iommu_group").resolve()
    assert group.parent.name == "iommu_groups" and (group / "devices/0000:03:00.1").exists()
    ib0 = tmp_path / "sys/class/net/ib0"
    assert ib0.is_symlink() and (ib0 / "device").resolve() == pf.resolve()
    mlx = tmp_path / "sys/class/infiniband/mlx5_1"
    assert (mlx / "device").resolve() == vf.resolve()
    assert sorted(os.listdir(mlx / "ports/1/pkeys"), key=int) == [str(i) for i in range(128)]
    assert (tmp_path / "proc/sys/kernel/hostname").read_text() == "sim-host\n"
    assert "PCI_SLOT_NAME=0000:03:00.1" in (vf / "uevent").read_text()


def test_same_spec_same_tree_and_hosts_do_not_collide(tmp_path: Path) -> None:
    def ids(root: Path, name: str) -> set[str]:
        simulate_host(root, "cx6-ib", 2, 3, hostname=name, pkey_table=4)
        inv = discover(SysfsReader(root))
        found = {n.mac or "" for d in inv.devices for n in d.netdevs}
        found |= {d.infiniband.node_guid or "" for d in inv.devices if d.infiniband}
        assert len(found) == 2 * 8  # one IPoIB address + one node GUID per function
        return found

    a1, a2, b = ids(tmp_path / "a1", "a"), ids(tmp_path / "a2", "a"), ids(tmp_path / "b", "b")
    assert a1 == a2
    assert not a1 & b


def test_vfs_spill_onto_the_next_bus_and_pfs_do_not_overlap(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("e810", vfs=250, totalvfs=256), PfSpec("i350", vfs=1)),
                        extra_devices=()), tmp_path)
    inv = discover(SysfsReader(tmp_path))
    by = inv.by_address()
    assert by["0000:03:01.0"].vf_index == 0  # routing id 8
    assert by["0000:04:00.0"].vf_index == 248  # routing id 256
    assert by["0000:05:00.0"].product_id == "1521"  # next PF after all 256 possible VFs
    assert by["0000:05:10.0"].parent_addr == "0000:05:00.0"
    assert len(inv.devices) == 253 and inv.warnings == ()


def test_simulate_host_alternates_numa_nodes_and_sizes_pkey_tables(tmp_path: Path) -> None:
    spec = simulate_host(tmp_path, "cx3-ib", 3, 1, pkey_table=16, pkeys=(0xFFFF, 0x0005))
    assert [p.numa_node for p in spec.pfs] == [0, 1, 0]
    pkeys = tmp_path / BUS / "0000:03:00.0/infiniband/mlx4_0/ports/2/pkeys"
    assert len(os.listdir(pkeys)) == 16
    inv = discover(SysfsReader(tmp_path))
    assert [d.numa_node for d in inv.devices if d.dev_type == "type-PF"] == [0, 1, 0]
    ib = inv.devices[0].infiniband
    assert ib is not None and [p.pkeys for p in ib.ports] == [("0xffff", "0x0005")] * 2


@pytest.mark.parametrize(("spec", "error", "text"), [
    (PfSpec("cx7"), UnknownModelError, "unknown NIC model 'cx7'"),
    (PfSpec("i350", vfs=8), SimSpecError, "sriov_totalvfs is 7"),
    (PfSpec("i350", vfs=2, unbound_vfs=(2,)), SimSpecError, "VF index 2 does not exist"),
    (PfSpec("cx5-ib", pkeys=(0x10000,)), SimSpecError, "0x0001-0xffff"),
])
def test_refuses_what_a_kernel_could_not_show(
    tmp_path: Path, spec: PfSpec, error: type[Exception], text: str
) -> None:
    with pytest.raises(error, match=text):
        build_tree(HostSpec(pfs=(spec,)), tmp_path)
    assert not (tmp_path / "sys").exists()


def test_refuses_to_build_over_an_existing_tree(tmp_path: Path) -> None:
    build_tree(HostSpec(), tmp_path)
    with pytest.raises(SimSpecError, match="already holds a sys/ tree"):
        build_tree(HostSpec(), tmp_path)


def test_unbound_vf_has_no_driver(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("x710", vfs=2, unbound_vfs=(0,)),), extra_devices=()),
               tmp_path)
    by = discover(SysfsReader(tmp_path)).by_address()
    assert by["0000:03:02.0"].driver is None and by["0000:03:02.0"].netdevs == ()
    assert by["0000:03:02.0"].link_type == "ethernet"
    assert by["0000:03:02.1"].driver == "iavf"
