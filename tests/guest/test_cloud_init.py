"""Debian's real cloud-init renders what vfkeeper publishes.

``cloud-init devel net-convert`` converts network_data.json (the config-2 path) and the NoCloud
network-config into each renderer's files; ``-m NAME,MAC`` stands for the guest's interfaces.
InfiniBand cannot be detected by net-convert offline (it reads the converting host's /sys), so
the InfiniBand test runs stock cloud-init's own converter in Debian's python3 against a fake
``/sys/class/net`` holding the guest's IPoIB interface (``cloudinit_probe.py``).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from guest_scenarios import (
    IB_GUID,
    IB_HWADDR,
    MAC_A,
    MAC_B,
    dual_stack,
    guest_vlan,
    infiniband,
    slaac,
)

from vfkeeper.guest import openstack
from vfkeeper.guest.documents import render

PROBE = Path(__file__).parent / "cloudinit_probe.py"
GUEST_NICS = ("eth0," + MAC_A, "eth1," + MAC_B)

pytestmark = pytest.mark.guest_tools


def net_convert(cloud_init: str, tmp: Path, text: str, kind: str, output: str) -> dict[str, str]:
    """Run net-convert; the files it wrote, by path under its output directory."""
    src = tmp / f"input-{output}"
    src.write_text(text)
    out = tmp / f"out-{output}"
    distro = "rhel" if output == "sysconfig" else "debian"
    args = [cloud_init, "devel", "net-convert", "-p", str(src), "-k", kind, "-d", str(out),
            "-D", distro, "-O", output]
    for nic in GUEST_NICS:
        args += ["-m", nic]
    run = subprocess.run(args, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    return {str(p.relative_to(out)): p.read_text() for p in out.rglob("*") if p.is_file()}


def test_dual_stack_netplan(cloud_init: str, tmp_path: Path) -> None:
    files = net_convert(cloud_init, tmp_path, render(dual_stack()).network_data_json,
                        "network_data.json", "netplan")
    eth0 = yaml.safe_load(files["etc/netplan/50-cloud-init.yaml"])["network"]["ethernets"]["eth0"]
    assert eth0["match"] == {"macaddress": MAC_A}
    assert eth0["mtu"] == 9000
    assert eth0["addresses"] == ["192.0.2.10/24", "2001:db8:10::10/64"]
    assert {"to": "0.0.0.0/0", "via": "192.0.2.1"} in eth0["routes"]
    assert {"to": "198.51.100.0/24", "via": "192.0.2.254"} in eth0["routes"]
    assert {"to": "::/0", "via": "2001:db8:10::1"} in eth0["routes"]
    assert eth0["nameservers"]["addresses"] == ["192.0.2.53", "2001:db8:10::53"]
    assert eth0["accept-ra"] is False


def test_dual_stack_eni(cloud_init: str, tmp_path: Path) -> None:
    files = net_convert(cloud_init, tmp_path, render(dual_stack()).network_data_json,
                        "network_data.json", "eni")
    eni = files["etc/network/interfaces.d/50-cloud-init"]
    assert "iface eth0 inet static\n    address 192.0.2.10/24\n    mtu 9000" in eni
    assert "iface eth0 inet6 static\n    address 2001:db8:10::10/64" in eni
    assert "route add default gw 192.0.2.1" in eni
    assert "route add -net 198.51.100.0/24 gw 192.0.2.254" in eni
    assert "route add -A inet6 default gw 2001:db8:10::1" in eni
    assert "dns-nameservers 192.0.2.53 2001:db8:10::53" in eni


def test_dual_stack_networkd(cloud_init: str, tmp_path: Path) -> None:
    files = net_convert(cloud_init, tmp_path, render(dual_stack()).network_data_json,
                        "network_data.json", "networkd")
    unit = files["etc/systemd/network/10-cloud-init-eth0.network"]
    for line in (f"MACAddress={MAC_A}", "MTUBytes=9000", "Address=192.0.2.10/24",
                 "Address=2001:db8:10::10/64", "Gateway=192.0.2.1", "Gateway=2001:db8:10::1",
                 "Destination=198.51.100.0/24", "DNS=192.0.2.53 2001:db8:10::53"):
        assert line in unit.splitlines()


def test_dual_stack_sysconfig(cloud_init: str, tmp_path: Path) -> None:
    files = net_convert(cloud_init, tmp_path, render(dual_stack()).network_data_json,
                        "network_data.json", "sysconfig")
    ifcfg = files["etc/sysconfig/network-scripts/ifcfg-eth0"].splitlines()
    for line in (f"HWADDR={MAC_A}", "TYPE=Ethernet", "IPADDR=192.0.2.10",
                 "NETMASK=255.255.255.0", "GATEWAY=192.0.2.1", "IPV6ADDR=2001:db8:10::10/64",
                 "IPV6_DEFAULTGW=2001:db8:10::1", "IPV6_AUTOCONF=no", "MTU=9000"):
        assert line in ifcfg
    route = files["etc/sysconfig/network-scripts/route-eth0"].splitlines()
    assert {"ADDRESS0=198.51.100.0", "GATEWAY0=192.0.2.254"} <= set(route)
    assert "nameserver 192.0.2.53" in files["etc/resolv.conf"]


def test_guest_vlan_netplan(cloud_init: str, tmp_path: Path) -> None:
    files = net_convert(cloud_init, tmp_path, render(guest_vlan()).network_data_json,
                        "network_data.json", "netplan")
    net = yaml.safe_load(files["etc/netplan/50-cloud-init.yaml"])["network"]
    assert "addresses" not in net["ethernets"]["eth0"]
    vlan = net["vlans"]["eth0.120"]
    assert (vlan["id"], vlan["link"], vlan["addresses"]) == (120, "eth0", ["192.0.2.20/24"])


def test_slaac_eni_and_sysconfig(cloud_init: str, tmp_path: Path) -> None:
    text = render(slaac()).network_data_json
    eni = net_convert(cloud_init, tmp_path, text, "network_data.json", "eni")
    assert "iface eth1 inet6 auto" in eni["etc/network/interfaces.d/50-cloud-init"]
    sysconfig = net_convert(cloud_init, tmp_path, text, "network_data.json", "sysconfig")
    eth1 = sysconfig["etc/sysconfig/network-scripts/ifcfg-eth1"].splitlines()
    assert {f"HWADDR={MAC_B}", "IPV6INIT=yes", "IPV6_AUTOCONF=yes"} <= set(eth1)
    assert not any(line.startswith("IPV6ADDR=") for line in eth1)


@pytest.mark.parametrize("output", ["eni", "sysconfig", "networkd"])
def test_nocloud_network_config_renders(cloud_init: str, tmp_path: Path, output: str) -> None:
    files = net_convert(cloud_init, tmp_path, render(dual_stack()).nocloud_network_config,
                        "yaml", output)
    text = "\n".join(files.values())
    for fragment in {"eni": ("192.0.2.10/24", "2001:db8:10::10/64", "mtu 9000",
                             "default gw 192.0.2.1", "192.0.2.53"),
                     "sysconfig": ("IPADDR=192.0.2.10", "IPV6ADDR=2001:db8:10::10/64",
                                   "MTU=9000", "GATEWAY=192.0.2.1", f"HWADDR={MAC_A}"),
                     "networkd": ("Address=192.0.2.10/24", "Address=2001:db8:10::10/64",
                                  "MTUBytes=9000", "Gateway=2001:db8:10::1")}[output]:
        assert fragment in text, (fragment, files)
    assert any("vf0" in path for path in files) or "vf0" in text


def _guest_sysfs(root: Path, nics: dict[str, tuple[int, str]]) -> Path:
    """A guest's /sys/class/net: name -> (ARPHRD type, hardware address)."""
    for name, (kind, address) in nics.items():
        (root / name).mkdir(parents=True)
        (root / name / "type").write_text(f"{kind}\n")
        (root / name / "address").write_text(f"{address}\n")
        (root / name / "addr_assign_type").write_text("0\n")
    return root


def _probe(python: str, tmp: Path, network_data: dict[str, object], renderer: str,
           distro: str) -> subprocess.CompletedProcess[str]:
    nd = tmp / f"network_data-{renderer}.json"
    nd.write_text(json.dumps(network_data))
    sysfs = tmp / "sys-class-net"
    if not sysfs.exists():
        _guest_sysfs(sysfs, {"eth0": (1, MAC_A), "ib0": (32, IB_HWADDR)})
    return subprocess.run([python, str(PROBE), str(nd), str(sysfs), distro, renderer,
                           str(tmp / f"out-{renderer}")],
                          capture_output=True, text=True, check=False)


def test_infiniband_vf_is_found_and_rendered_as_infiniband(cloudinit_python: str,
                                                           tmp_path: Path) -> None:
    run = _probe(cloudinit_python, tmp_path, openstack.network_data(infiniband()),
                 "sysconfig", "rhel")
    assert run.returncode == 0, run.stderr
    ib = next(c for c in json.loads(run.stdout)["config"] if c.get("name") == "ib0")
    assert (ib["type"], ib["mac_address"], ib["mtu"]) == ("infiniband", IB_HWADDR, 2044)
    ifcfg = (tmp_path / "out-sysconfig/etc/sysconfig/network-scripts/ifcfg-ib0").read_text()
    for line in ("TYPE=InfiniBand", f"HWADDR={IB_HWADDR}", "DEVICE=ib0", "IPADDR=10.20.0.5",
                 "NETMASK=255.255.0.0", "MTU=2044"):
        assert line in ifcfg.splitlines()
    eth0 = (tmp_path / "out-sysconfig/etc/sysconfig/network-scripts/ifcfg-eth0").read_text()
    assert "TYPE=Ethernet" in eth0.splitlines()


def test_infiniband_vf_in_eni(cloudinit_python: str, tmp_path: Path) -> None:
    run = _probe(cloudinit_python, tmp_path, openstack.network_data(infiniband()),
                 "eni", "debian")
    assert run.returncode == 0, run.stderr
    eni = (tmp_path / "out-eni/etc/network/interfaces.d/50-cloud-init").read_text()
    assert f"iface ib0 inet static\n    address 10.20.0.5/16\n    hwaddress {IB_HWADDR}" in eni


def test_publishing_the_guids_first_six_bytes_would_not_match(cloudinit_python: str,
                                                               tmp_path: Path) -> None:
    """The control: the naive 6-byte prefix of the GUID finds no interface in the guest."""
    doc = openstack.network_data(infiniband())
    doc["links"][1]["ethernet_mac_address"] = ":".join(
        IB_GUID[2:][i:i + 2] for i in range(0, 12, 2))
    run = _probe(cloudinit_python, tmp_path, doc, "sysconfig", "rhel")
    assert run.returncode != 0
    assert "Unable to find a system nic" in run.stderr


def test_netplan_renderer_drops_infiniband(cloudinit_python: str, tmp_path: Path) -> None:
    """The caveat docs/guest-configuration.md states: cloud-init's netplan renderer has no case
    for ``type: infiniband``. Should a cloud-init release render it, this fails: update the docs."""
    run = _probe(cloudinit_python, tmp_path, openstack.network_data(infiniband()),
                 "netplan", "debian")
    assert run.returncode == 0, run.stderr
    assert next(c for c in json.loads(run.stdout)["config"]
                if c.get("name") == "ib0")["type"] == "infiniband"
    net = yaml.safe_load((tmp_path / "out-netplan/etc/netplan/50-cloud-init.yaml").read_text())
    assert set(net["network"]["ethernets"]) == {"eth0"}


def test_networkd_renderer_keeps_infiniband(cloudinit_python: str, tmp_path: Path) -> None:
    run = _probe(cloudinit_python, tmp_path, openstack.network_data(infiniband()),
                 "networkd", "debian")
    assert run.returncode == 0, run.stderr
    unit = (tmp_path / "out-networkd/etc/systemd/network/10-cloud-init-ib0.network").read_text()
    assert {"Name=ib0", f"MACAddress={IB_HWADDR}", "Address=10.20.0.5/16",
            "MTUBytes=2044"} <= set(unit.splitlines())


def test_nocloud_infiniband_on_a_sysconfig_guest_is_ethernet(cloud_init: str,
                                                             tmp_path: Path) -> None:
    """The caveat docs/guest-configuration.md states: version 2 has no InfiniBand, so cloud-init
    renders the NoCloud IPoIB entry for sysconfig as TYPE=Ethernet (netplan guests get
    ``infiniband-mode``, test_netplan.py); RHEL-family guests need the config-2 drive."""
    files = net_convert(cloud_init, tmp_path, render(infiniband()).nocloud_network_config,
                        "yaml", "sysconfig")
    ifcfg = files["etc/sysconfig/network-scripts/ifcfg-ib0"].splitlines()
    assert {"DEVICE=ib0", "IPADDR=10.20.0.5", "MTU=2044", "TYPE=Ethernet"} <= set(ifcfg)
