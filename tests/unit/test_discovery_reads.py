"""How discovery reads: each path at most once, only what the listing shows, and a real /sys
(this machine's) scans without errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.sim import HostSpec, PfSpec, build_tree


class CountingReader(SysfsReader):
    def __init__(self, root: str | Path) -> None:
        super().__init__(root)
        self.calls: Counter[str] = Counter()

    def _read_bytes(self, path: str) -> bytes:
        self.calls[path] += 1
        return super()._read_bytes(path)

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
