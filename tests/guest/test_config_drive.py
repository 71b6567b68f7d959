"""Config drives read back with real readers: xorriso (label, files), blkid (the label as
cloud-init's ``find_devs_with("LABEL=config-2")`` sees it) and cloud-init's own config-drive
reader on the extracted tree."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from guest_scenarios import UUID, dual_stack

from vfkeeper.guest.config_drive import write_config_drive
from vfkeeper.guest.documents import DriveFormat, render

pytestmark = pytest.mark.guest_tools


def _xorriso(xorriso: str, *args: str) -> str:
    run = subprocess.run([xorriso, *args], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return run.stdout + run.stderr


@pytest.mark.parametrize(("fmt", "label", "paths"), [
    ("config-2", "config-2", {"openstack/latest/meta_data.json",
                              "openstack/latest/network_data.json", "openstack/latest/user_data"}),
    ("nocloud", "cidata", {"meta-data", "user-data", "network-config"}),
])
def test_drive_label_and_files(xorriso: str, tmp_path: Path, fmt: DriveFormat, label: str,
                               paths: set[str]) -> None:
    docs = render(dual_stack())
    iso = tmp_path / "drive.iso"
    write_config_drive(docs, fmt, iso)
    assert f"Volume Id    : {label}" in _xorriso(xorriso, "-indev", str(iso), "-pvd_info")
    out = tmp_path / "x"
    _xorriso(xorriso, "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out))
    found = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert found == paths
    for path, content in docs.files(fmt).items():
        assert (out / path).read_bytes() == content
    blkid = shutil.which("blkid") or shutil.which("blkid", path="/usr/sbin:/sbin")
    if blkid is not None:
        probe = subprocess.run([blkid, "-o", "export", str(iso)], capture_output=True,
                               text=True, check=False)
        assert f"LABEL={label}" in probe.stdout.splitlines()
        assert "TYPE=iso9660" in probe.stdout.splitlines()


READ_V2 = """
import json, sys
from cloudinit.sources.helpers import openstack
r = openstack.ConfigDriveReader(sys.argv[1]).read_v2()
print(json.dumps({"uuid": r["metadata"]["uuid"], "hostname": r["metadata"]["hostname"],
                  "keys": r["metadata"]["public_keys"], "userdata": r["userdata"].decode(),
                  "links": [l["ethernet_mac_address"] for l in r["networkdata"]["links"]]}))
"""


def test_cloud_init_reads_the_config_drive(xorriso: str, cloudinit_python: str,
                                           tmp_path: Path) -> None:
    iso = tmp_path / "drive.iso"
    write_config_drive(render(dual_stack()), "config-2", iso)
    out = tmp_path / "x"
    _xorriso(xorriso, "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out))
    run = subprocess.run([cloudinit_python, "-c", READ_V2, str(out)], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {
        "uuid": UUID, "hostname": "vm-1.example.org",
        "keys": {"ops": "ssh-ed25519 AAAAC3Nza ops@x"},
        "userdata": "#cloud-config\nhostname: vm-1\n", "links": ["fa:16:3e:10:00:0a"]}


def test_nocloud_seed_parses(xorriso: str, tmp_path: Path) -> None:
    iso = tmp_path / "seed.iso"
    write_config_drive(render(dual_stack()), "nocloud", iso)
    out = tmp_path / "x"
    _xorriso(xorriso, "-osirrox", "on", "-indev", str(iso), "-extract", "/", str(out))
    assert yaml.safe_load((out / "meta-data").read_text())["instance-id"] == UUID
    assert yaml.safe_load((out / "network-config").read_text())["version"] == 2
