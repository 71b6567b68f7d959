"""Debian's real netplan generates systemd-networkd units from the NoCloud network-config
(what cloud-init hands netplan unchanged on a netplan guest)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from guest_scenarios import MAC_A, MAC_B, dual_stack, guest_vlan, infiniband, slaac

from vfkeeper.guest.documents import render
from vfkeeper.guest.models import Instance

pytestmark = pytest.mark.guest_tools


def generate(netplan: str, root: Path, instance: Instance) -> dict[str, list[str]]:
    """``netplan generate`` in a temporary root; networkd's files (name -> lines)."""
    conf = root / "etc/netplan/50-cloud-init.yaml"
    conf.parent.mkdir(parents=True)
    network = yaml.safe_load(render(instance).nocloud_network_config)
    conf.write_text(yaml.safe_dump({"network": network}))
    conf.chmod(0o600)
    run = subprocess.run([netplan, "generate", "--root-dir", str(root)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    out = root / "run/systemd/network"
    return {p.name: p.read_text().splitlines() for p in out.iterdir()}


def test_dual_stack(netplan: str, tmp_path: Path) -> None:
    files = generate(netplan, tmp_path, dual_stack())
    assert {f"PermanentMACAddress={MAC_A}", "Name=vf0", "MTUBytes=9000"} <= set(
        files["10-netplan-vf0.link"])
    unit = files["10-netplan-vf0.network"]
    for line in ("Address=192.0.2.10/24", "Address=2001:db8:10::10/64", "IPv6AcceptRA=no",
                 "DNS=192.0.2.53", "DNS=2001:db8:10::53", "Gateway=192.0.2.1",
                 "Destination=198.51.100.0/24", "Gateway=192.0.2.254", "Gateway=2001:db8:10::1",
                 "MTUBytes=9000"):
        assert line in unit


def test_guest_vlan(netplan: str, tmp_path: Path) -> None:
    files = generate(netplan, tmp_path, guest_vlan())
    assert {"Kind=vlan", "Id=120", "Name=vf0.120"} <= set(files["10-netplan-vf0.120.netdev"])
    assert "VLAN=vf0.120" in files["10-netplan-vf0.network"]
    assert "Address=192.0.2.20/24" in files["10-netplan-vf0.120.network"]
    assert not any(line.startswith("Address=") for line in files["10-netplan-vf0.network"])


def test_slaac(netplan: str, tmp_path: Path) -> None:
    files = generate(netplan, tmp_path, slaac())
    assert f"PermanentMACAddress={MAC_B}" in files["10-netplan-vf1.network"]
    assert "IPv6AcceptRA=yes" in files["10-netplan-vf1.network"]
    assert not any(line.startswith("Address=") for line in files["10-netplan-vf1.network"])


@pytest.mark.parametrize("instance", [infiniband()], ids=["infiniband"])
def test_infiniband(netplan: str, tmp_path: Path, instance: Instance) -> None:
    files = generate(netplan, tmp_path, instance)
    unit = files["10-netplan-ib0.network"]
    for line in ("Name=ib0", "Address=10.20.0.5/16", "MTUBytes=2044", "[IPoIB]", "Mode=datagram"):
        assert line in unit
