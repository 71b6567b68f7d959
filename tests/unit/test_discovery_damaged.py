"""Discovery on damaged trees: every problem becomes a null plus a warning naming the path;
nothing aborts the scan, nothing is silently dropped — and what it sends is an inventory the
controller accepts (every scan here is checked with the controller's own parser)."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.errors import SysfsRootError
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.controller.hosts import parse_inventory
from vfkeeper.domain.inventory import Device, HostInventory
from vfkeeper.sim import HostSpec, PfSpec, build_tree

PF = "0000:03:00.0"
VF0, VF1 = "0000:03:00.1", "0000:03:00.2"
ETH_PF = "0000:04:00.0"


@pytest.fixture
def host(tmp_path: Path) -> Path:
    build_tree(HostSpec(pfs=(PfSpec("cx5-ib", vfs=2), PfSpec("x710", vfs=1)),
                        extra_devices=()), tmp_path)
    return tmp_path


def dev_dir(root: Path, address: str) -> Path:
    return Path(os.path.realpath(root / "sys/bus/pci/devices" / address))


def scan(root: Path, reader: SysfsReader | None = None) -> HostInventory:
    inv = discover(reader or SysfsReader(root))
    parse_inventory(inv.hostname, inv.model_dump(mode="json"))  # the controller accepts it
    return inv


def device(inv: HostInventory, address: str) -> Device:
    return inv.by_address()[address]


def warned(inv: HostInventory, path: Path | str) -> list[str]:
    return [w.message for w in inv.warnings if w.path == str(path)]


def test_undamaged_tree_has_no_warnings(host: Path) -> None:
    assert scan(host).warnings == ()


def test_missing_attribute_is_null_and_named(host: Path) -> None:
    (dev_dir(host, PF) / "vendor").unlink()
    inv = scan(host)
    pf = device(inv, PF)
    assert pf.vendor_id is None and pf.product_id == "1017"
    assert warned(inv, dev_dir(host, PF) / "vendor") == ["missing; vendor_id is null"]


@pytest.mark.parametrize(("attr", "text", "field"), [
    ("device", "0xZZZZ", "product_id"),
    ("class", "ethernet", "class_code"),
    ("numa_node", "zero", "numa_node"),
    ("sriov_numvfs", "2.5", "sriov_numvfs"),
])
def test_malformed_attribute_is_null_and_named(
    host: Path, attr: str, text: str, field: str
) -> None:
    (dev_dir(host, PF) / attr).write_text(text + "\n")
    inv = scan(host)
    assert getattr(device(inv, PF), field) is None
    (message,) = warned(inv, dev_dir(host, PF) / attr)
    assert message.startswith(f"malformed value {text!r}") and field in message


def test_malformed_class_falls_back_to_what_the_function_shows(host: Path) -> None:
    (dev_dir(host, PF) / "class").write_text("junk\n")
    pf = device(scan(host), PF)
    assert pf.is_network and pf.link_type == "infiniband"  # from its IPoIB netdev


def test_malformed_ib_values(host: Path) -> None:
    ib = dev_dir(host, PF) / "infiniband/mlx5_0"
    (ib / "node_guid").write_text("0002:c903\n")
    (ib / "ports/1/pkeys/1").write_text("0x1ffff\n")
    (ib / "ports/1/gids/0").write_text("fe80::1\n")
    inv = scan(host)
    got = device(inv, PF).infiniband
    assert got is not None and got.node_guid is None and got.sys_image_guid is not None
    assert got.ports[0].pkeys == ("0xffff", "0x8002")  # the bad entry is left out, named
    assert got.ports[0].port_guid is None
    assert len(warned(inv, ib / "ports/1/pkeys/1")) == 1
    assert len(warned(inv, ib / "node_guid")) == 1 and len(warned(inv, ib / "ports/1/gids/0")) == 1


def test_malformed_vf_admin_guid(host: Path) -> None:
    (dev_dir(host, PF) / "sriov/1/node").write_text("00:02:c9\n")
    inv = scan(host)
    admin = device(inv, VF1).vf_admin_guids
    assert admin is not None and admin.node_guid is None and admin.port_guid is not None
    assert len(warned(inv, dev_dir(host, PF) / "sriov/1/node")) == 1


def test_dangling_device_link_leaves_the_device_out_and_says_so(host: Path) -> None:
    shutil.rmtree(dev_dir(host, VF1))
    inv = scan(host)
    assert VF1 not in inv.by_address() and VF0 in inv.by_address()
    (message,) = warned(inv, host / "sys/bus/pci/devices" / VF1)
    assert message.startswith("dangling symlink") and "device left out" in message


def test_dangling_driver_and_group_links_still_name_them(host: Path) -> None:
    d = dev_dir(host, VF0)
    for name, target in (("driver", "../../../../bus/pci/drivers/gone"),
                         ("iommu_group", "../../../../kernel/iommu_groups/77")):
        (d / name).unlink()
        (d / name).symlink_to(target)
    vf = device(scan(host), VF0)
    assert (vf.driver, vf.iommu_group) == ("gone", 77)


def test_virtfn_link_to_a_function_the_bus_does_not_list(host: Path) -> None:
    os.unlink(host / "sys/bus/pci/devices" / VF1)
    inv = scan(host)
    assert VF1 not in inv.by_address()
    (message,) = warned(inv, dev_dir(host, PF) / "virtfn1")
    assert VF1 in message and "missing from the inventory" in message


def test_vf_no_pf_link_points_at(host: Path) -> None:
    (dev_dir(host, PF) / "virtfn0").unlink()
    inv = scan(host)
    vf = device(inv, VF0)
    assert (vf.dev_type, vf.parent_addr, vf.vf_index) == ("type-VF", PF, None)
    assert vf.vf_admin_guids is None
    assert len(warned(inv, dev_dir(host, VF0) / "physfn")) == 1


def test_directory_where_a_file_is_expected(host: Path) -> None:
    numa = dev_dir(host, ETH_PF) / "numa_node"
    numa.unlink()
    numa.mkdir()
    inv = scan(host)
    assert device(inv, ETH_PF).numa_node is None
    (message,) = warned(inv, numa)
    assert message.startswith("unreadable (Is a directory)")


def test_non_text_attribute(host: Path) -> None:
    (dev_dir(host, ETH_PF) / "subsystem_device").write_bytes(b"\xff\xfe\n")
    inv = scan(host)
    assert device(inv, ETH_PF).subsystem_device_id is None
    assert warned(inv, dev_dir(host, ETH_PF) / "subsystem_device")[0].startswith("unreadable")


class FaultyReader(SysfsReader):
    """Raises ``OSError(code)`` for reads/listings of the given paths: what a root user cannot
    provoke with file modes (EACCES) or what only a live kernel answers (EINVAL)."""

    def __init__(self, root: Path, faults: dict[Path, int]) -> None:
        super().__init__(root)
        self.faults = {str(p): code for p, code in faults.items()}

    def _fault(self, path: str) -> None:
        if path in self.faults:
            code = self.faults[path]
            raise OSError(code, os.strerror(code), path)

    def _read_files(self, directory: str, names: Sequence[str]) -> list[bytes | OSError]:
        got = super()._read_files(directory, names)
        for i, name in enumerate(names):
            try:
                self._fault(f"{directory}/{name}")
            except OSError as exc:
                got[i] = exc
        return got

    def _listdir(self, path: str) -> list[str]:
        self._fault(path)
        return super()._listdir(path)


def test_permission_denied_is_a_warning_not_an_abort(host: Path) -> None:
    numvfs = dev_dir(host, PF) / "sriov_numvfs"
    ports = dev_dir(host, VF0) / "infiniband/mlx5_1/ports"
    inv = scan(host, FaultyReader(host, {numvfs: errno.EACCES, ports: errno.EACCES}))
    pf, vf = device(inv, PF), device(inv, VF0)
    assert pf.sriov_numvfs is None and pf.sriov_totalvfs == 127 and pf.dev_type == "type-PF"
    assert vf.infiniband is not None and vf.infiniband.ports == ()
    assert vf.infiniband.node_guid is not None
    assert warned(inv, numvfs) == ["unreadable (Permission denied); sriov_numvfs is null"]
    assert len(warned(inv, ports)) == 1


def test_unlistable_device_directory_is_left_out_and_named(host: Path) -> None:
    d = dev_dir(host, VF0)
    inv = scan(host, FaultyReader(host, {d: errno.EACCES}))
    assert VF0 not in inv.by_address()
    assert warned(inv, d) == ["cannot list the device (Permission denied); device left out"]


def test_speed_einval_means_interface_down_not_an_error(host: Path) -> None:
    speed = dev_dir(host, ETH_PF) / "net/enp4s0f0/speed"
    inv = scan(host, FaultyReader(host, {speed: errno.EINVAL}))
    assert device(inv, ETH_PF).netdevs[0].speed_mbps is None
    assert inv.warnings == ()


def test_link_down_and_no_numa_are_nulls_without_warnings(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("e810", vfs=1, link_up=False, numa_node=None),),
                        extra_devices=()), tmp_path)
    inv = scan(tmp_path)
    pf = device(inv, PF)
    assert pf.numa_node is None and pf.netdevs[0].speed_mbps is None
    assert pf.netdevs[0].operstate == "down" and inv.warnings == ()


class VanishingReader(SysfsReader):
    """Removes a VF (as ``echo 0 > sriov_numvfs`` would) the moment discovery reads ``when``."""

    def __init__(self, root: Path, victim: str, when: str) -> None:
        super().__init__(root)
        self.victim, self.when = victim, when

    def _unplug(self, path: str) -> None:
        if path.endswith(self.when) and self.victim in path:
            shutil.rmtree(os.path.realpath(f"{self.pci_devices_dir}/{self.victim}"))
            os.unlink(f"{self.pci_devices_dir}/{self.victim}")
            self.when = "\0"  # once

    def _read_files(self, directory: str, names: Sequence[str]) -> list[bytes | OSError]:
        for name in names:
            self._unplug(f"{directory}/{name}")
        return super()._read_files(directory, names)

    def _readlink(self, path: str) -> str:
        self._unplug(path)
        return super()._readlink(path)


@pytest.mark.parametrize("when", [
    f"devices/{VF1}",  # between the bus listing and the readlink of its link
    "/class",  # after its directory was listed
    "/infiniband/mlx5_2/node_guid",  # halfway through its RDMA device
])
def test_device_removed_mid_scan(host: Path, when: str) -> None:
    inv = scan(host, VanishingReader(host, VF1, when))
    assert VF1 not in inv.by_address()
    assert {VF0, PF, ETH_PF} <= set(inv.by_address())
    assert [w.message for w in inv.warnings] == [
        "the device vanished during the scan (hot-unplug, or VFs being removed); left out"
    ]
    assert VF1 in inv.warnings[0].path


def test_wrong_root_raises_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(SysfsRootError) as info:
        discover(SysfsReader(tmp_path / "nowhere"))
    assert info.value.root == str(tmp_path / "nowhere")


class RecordingReader(SysfsReader):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads: list[str] = []

    def _read_files(self, directory: str, names: Sequence[str]) -> list[bytes | OSError]:
        self.reads += [f"{directory}/{name}" for name in names]
        return super()._read_files(directory, names)


def test_every_attribute_read_degrades_to_a_named_warning(tmp_path: Path) -> None:
    """Corrupt, one at a time, each file discovery reads for an IB VF: the scan still
    completes and names exactly that file."""
    build_tree(HostSpec(pfs=(PfSpec("cx5-ib", vfs=1, pkey_table=4),), extra_devices=()),
               tmp_path)
    recorder = RecordingReader(tmp_path)
    discover(recorder)
    assert len(recorder.reads) == len(set(recorder.reads)), "a path was read twice"
    mine = [p for p in recorder.reads
            if p.startswith(str(dev_dir(tmp_path, VF0))) or "/sriov/0/" in p]
    assert len(mine) >= 20
    for path in mine:
        original = Path(path).read_bytes()
        Path(path).write_bytes(b"\xff\n")
        try:
            inv = scan(tmp_path)
        finally:
            Path(path).write_bytes(original)
        assert [w.path for w in inv.warnings] == [path]
        assert VF0 in inv.by_address()


def test_vfs_of_a_pf_that_cannot_be_listed_are_left_out_and_named(host: Path) -> None:
    """A VF whose PF is not in the inventory could never be handed out safely (it would make a
    pool of its own): it is left out, saying why."""
    d = dev_dir(host, PF)
    inv = scan(host, FaultyReader(host, {d: errno.EACCES}))
    assert {PF, VF0, VF1}.isdisjoint(inv.by_address()) and ETH_PF in inv.by_address()
    bus = host / "sys/bus/pci/devices"
    for vf in (VF0, VF1):
        (message,) = warned(inv, bus / vf)
        assert f"names PF {PF}, which is not in this inventory" in message
        assert message.endswith("the function is left out")


def test_an_interface_name_the_controller_refuses_is_left_out_and_named(host: Path) -> None:
    net = dev_dir(host, ETH_PF) / "net"
    (net / "enp4s0f0").rename(net / 'en"p4')
    inv = scan(host)
    assert device(inv, ETH_PF).netdevs == ()
    (message,) = warned(inv, host / "sys/bus/pci/devices" / ETH_PF)
    assert message.startswith("devices[") and "netdevs[0].name" in message
    assert "left out" in message


def test_an_interface_name_that_is_not_utf8_is_left_out_and_shown_escaped(host: Path) -> None:
    net = os.fsencode(dev_dir(host, ETH_PF) / "net")
    os.rename(net + b"/enp4s0f0", net + b"/enp\xff")
    inv = scan(host)
    assert device(inv, ETH_PF).netdevs == ()
    assert all("\udcff" not in w.path + w.message for w in inv.warnings)


@pytest.mark.parametrize(("attr", "text", "field"), [
    ("numa_node", "4096", "numa_node"),
    ("sriov_totalvfs", "99999999999999999999", "sriov_totalvfs"),
    ("vendor", "0x15b3\x00", None),
])
def test_values_beyond_the_rules_are_null_and_named(
    host: Path, attr: str, text: str, field: str | None
) -> None:
    (dev_dir(host, ETH_PF) / attr).write_text(text + "\n")
    inv = scan(host)
    assert inv.warnings, "the damage is named"
    if field is not None:
        assert getattr(device(inv, ETH_PF), field) is None


def test_control_characters_in_a_text_attribute_are_null_and_named(host: Path) -> None:
    (dev_dir(host, ETH_PF) / "net/enp4s0f0/operstate").write_bytes(b"up\x00\x1b\n")
    inv = scan(host)
    assert device(inv, ETH_PF).netdevs[0].operstate is None
    (message,) = warned(inv, host / "sys/bus/pci/devices" / ETH_PF)
    assert "operstate" in message and "\\x00" in message and "null" in message
