"""How discovery reads: each path at most once, only what the listing shows, and a real /sys
(this machine's) scans without errors."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.sim import HostSpec, PfSpec, build_tree


class CountingReader(SysfsReader):
    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.calls: Counter[str] = Counter()

    def _read_files(self, directory: str, names: Sequence[str]) -> list[bytes | OSError]:
        for name in names:
            self.calls[f"{directory}/{name}"] += 1
        return super()._read_files(directory, names)

    def _read_binary(self, path: str, limit: int) -> bytes:
        self.calls[path] += 1
        return super()._read_binary(path, limit)

    def _listdir(self, path: str) -> list[str]:
        self.calls["ls " + path] += 1
        return super()._listdir(path)

    def _readlink(self, path: str) -> str:
        self.calls["link " + path] += 1
        return super()._readlink(path)


def test_no_path_is_read_twice_and_absent_attributes_are_not_tried(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("cx3-ib", vfs=2, pkey_table=8),
                             PfSpec("cx5-eth", vfs=2, vfio_vfs=(0,)),
                             PfSpec("igb-82576", vfs=0))), tmp_path)
    reader = CountingReader(tmp_path)
    inv = discover(reader)
    assert inv.warnings == ()
    assert max(reader.calls.values()) == 1, reader.calls.most_common(3)
    # a PF has no physfn, a VF no sriov_totalvfs: neither is opened just to fail
    assert not any(p.endswith(("/physfn", "/sriov_totalvfs")) and "link " not in p
                   for p in reader.calls if "0000:03:00.1" in p)
    assert not any(p.endswith("/physfn") for p in reader.calls if "03:00.0/" in p)


def test_cost_is_linear_in_functions(tmp_path: Path) -> None:
    """File-system calls grow by the same amount for each added PF with its VFs: a constant
    cost per function, nothing that grows with the host's size."""
    calls = []
    for pfs in (1, 2, 3):
        root = tmp_path / str(pfs)
        build_tree(HostSpec(pfs=tuple(PfSpec("cx5-ib", vfs=8, pkey_table=8) for _ in range(pfs)),
                            extra_devices=()), root)
        reader = CountingReader(root)
        assert len(discover(reader).devices) == 9 * pfs
        calls.append(sum(reader.calls.values()))
    assert calls[2] - calls[1] == calls[1] - calls[0] > 0


def test_this_machines_own_sys_scans_cleanly() -> None:
    inv = discover(SysfsReader("/"), include_all=True)
    assert inv.devices, "this machine lists PCI functions"
    assert all(d.address.count(":") == 2 for d in inv.devices)
    for dev in inv.devices:
        assert dev.vendor_id is not None and dev.class_code is not None, inv.warnings


class Syscalls:
    """Counts the file-system system calls discovery makes (``os.open`` of files and
    directories, ``os.read``, ``os.listdir``, ``os.readlink``), however the reader issues them."""

    NAMES = ("open", "read", "listdir", "readlink")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.counts: Counter[str] = Counter()
        for name in self.NAMES:
            monkeypatch.setattr(os, name, self._counted(name, getattr(os, name)))

    def _counted(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.counts[name] += 1
            return real(*args, **kwargs)
        return call


def _calls_per_vf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model: str,
                  table: int) -> dict[str, float]:
    counts = []
    for vfs in (4, 12):
        root = tmp_path / f"{model}-{vfs}"
        build_tree(HostSpec(pfs=(PfSpec(model, vfs=vfs, pkey_table=table),), extra_devices=()),
                   root)
        with monkeypatch.context() as patch:
            calls = Syscalls(patch)
            assert discover(SysfsReader(root)).warnings == ()
        counts.append(calls.counts)
    return {name: (counts[1][name] - counts[0][name]) / 8 for name in Syscalls.NAMES}


def test_file_system_calls_per_function_are_pinned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What one more VF costs. An InfiniBand VF of a ConnectX-5 with a PKey table of N entries:
    1 open (the table's directory) + 1 per entry, and 23 files with a read each: class,
    vendor, device, subsystem_vendor, subsystem_device, numa_node; its IPoIB netdev's type,
    address, mtu, operstate, dev_port, speed; its RDMA device's node_guid, sys_image_guid; its
    port's state, phys_state, link_layer, rate, lid, gids/0; its PF's sriov/N/node, port,
    policy. 5 listings (its directory, net/, infiniband/, ports/, pkeys/) and 5 readlinks
    (its bus link; physfn, driver, iommu_group; its PF's virtfnN). Lower these numbers when
    discovery gets cheaper; never raise them without saying why in the commit."""
    ib = _calls_per_vf(tmp_path, monkeypatch, "cx5-ib", 128)
    assert ib == {"open": 23 + 1 + 128, "read": 23 + 128, "listdir": 5, "readlink": 5}
    # Ethernet mode: one RoCE PKey entry (read by full path); sriov/N shows node only, so
    # opening port and policy fails (cheaper than listing the directory)
    eth = _calls_per_vf(tmp_path, monkeypatch, "cx5-eth", 128)
    assert eth == {"open": 21 + 1 + 2, "read": 21 + 1, "listdir": 5, "readlink": 5}
