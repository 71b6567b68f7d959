"""Schema 2's fields: a PF's ``sriov_vf_device`` and its card serial number from PCI VPD (the
``SN`` keyword of VPD-R, what libvirt reports and Nova uses for ``remote_managed`` ports).
Malformed VPD is a null plus a warning naming the file, as libvirt then reports no VPD at all."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vfkeeper.agent import vpd
from vfkeeper.agent.discovery import discover
from vfkeeper.agent.sysfs import SysfsReader
from vfkeeper.sim import HostSpec, PfSpec, build_tree
from vfkeeper.sim import vpd as sim_vpd

GOOD = sim_vpd.build("ConnectX-5 EN", "MCX516A-CCAT", "MT2043X01234")


def test_serial_number_of_a_well_formed_vpd() -> None:
    assert vpd.serial_number(GOOD) == "MT2043X01234"


def test_padded_serial_is_stripped_and_unknown_resources_are_skipped() -> None:
    data = bytearray(sim_vpd.build("X", "P", " SN1 "))
    # an unknown large resource (0x84) before the end tag is skipped by its length
    data[-1:] = bytes((0x84, 2, 0, 0xAA, 0xBB, 0x78))
    assert vpd.serial_number(bytes(data)) == "SN1"


def test_vpd_without_a_serial_number_is_none() -> None:
    name = b"\x82\x01\x00X"
    body = b"PN\x01P" + b"RV\x01"
    head = name + bytes((0x90, len(body) + 1, 0)) + body
    data = head + bytes((-sum(head) & 0xFF,)) + b"\x78"
    assert vpd.serial_number(data) is None


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "empty"),
    (GOOD[:-1], "no end tag"),
    (GOOD[:40], "runs past the end"),
    (GOOD.replace(b"RV", b"ZZ"), "no checksum field"),
    (GOOD.replace(b"MT2043X01234", b"MT2043X0123\x01"), "not printable"),
    (b"\x78", "no read-only section"),
])
def test_malformed_vpd_says_what_is_wrong(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        vpd.serial_number(data)


def test_bad_checksum_is_malformed() -> None:
    data = bytearray(GOOD)
    data[GOOD.index(b"RV") + 3] ^= 1
    with pytest.raises(ValueError, match=r"checksum \(RV\) does not add up"):
        vpd.serial_number(bytes(data))


def _pf_dir(root: Path) -> Path:
    return Path(os.path.realpath(root / "sys/bus/pci/devices/0000:03:00.0"))


def test_discovery_reports_pf_serial_and_vf_device_id(tmp_path: Path) -> None:
    build_tree(HostSpec(hostname="t", pfs=(PfSpec("cx5-eth", vfs=1), PfSpec("vic", vfs=1)),
                        extra_devices=()), tmp_path)
    inv = discover(SysfsReader(tmp_path))
    pf, vf, vic, vic_vf = inv.devices
    assert (pf.sriov_vf_device, vf.sriov_vf_device) == ("1018", None)
    assert pf.vpd_serial is not None and pf.vpd_serial.startswith("MT")
    assert vf.vpd_serial is None  # VPD is read for PFs only
    assert (vic.sriov_vf_device, vic.vpd_serial) == ("0071", None)  # the kernel prints "71"
    assert vic_vf.sriov_vf_device is None and inv.warnings == ()


def test_malformed_vpd_is_null_and_named(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("cx6-ib", vfs=1),), extra_devices=()), tmp_path)
    (_pf_dir(tmp_path) / "vpd").write_bytes(GOOD[:-1])
    (_pf_dir(tmp_path) / "sriov_vf_device").write_text("xyz\n")
    inv = discover(SysfsReader(tmp_path))
    pf = inv.devices[0]
    assert pf.vpd_serial is None and pf.sriov_vf_device is None
    assert pf.product_id == "101b" and pf.sriov_numvfs == 1
    assert {w.path: w.message for w in inv.warnings} == {
        str(_pf_dir(tmp_path) / "vpd"): "malformed VPD (no end tag); vpd_serial is null",
        str(_pf_dir(tmp_path) / "sriov_vf_device"):
            "malformed value 'xyz' (expected up to 4 hex digits); sriov_vf_device is null",
    }


def test_unreadable_vpd_is_null_and_named(tmp_path: Path) -> None:
    build_tree(HostSpec(pfs=(PfSpec("e810", vfs=0),), extra_devices=()), tmp_path)
    path = _pf_dir(tmp_path) / "vpd"

    class Denied(SysfsReader):
        def _read_binary(self, p: str, limit: int) -> bytes:
            if p == str(path):
                raise PermissionError(13, "Permission denied", p)
            return super()._read_binary(p, limit)

    inv = discover(Denied(tmp_path))
    assert inv.devices[0].vpd_serial is None and inv.devices[0].sriov_vf_device == "1889"
    assert [(w.path, w.message) for w in inv.warnings] == [
        (str(path), "unreadable (Permission denied); vpd_serial is null")]
