"""The demo's guest step: what an instance's guest reads (network_data.json, served by the
controller) and, where Debian's cloud-init is installed, the files cloud-init would write from
it inside the guest (``cloud-init devel net-convert``, run on this machine, changing nothing).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vfkeeper.demo import scenario, views
from vfkeeper.demo.session import DemoStepError, Session
from vfkeeper.domain.guid import guid_to_cloud_init_mac

RENDERERS = (("netplan", "debian"), ("sysconfig", "rhel"))


@dataclass
class GuestView:
    network_data: dict[str, Any]
    rendered: dict[str, dict[str, str]] = field(default_factory=dict)
    """Renderer → path → the file cloud-init wrote (empty without cloud-init)."""


def create_subnets(session: Session,
                   subnets: tuple[scenario.SubnetPlan, ...] = scenario.SUBNETS) -> None:
    for plan in subnets:
        session.cli("subnet", "create", plan.network, plan.cidr, *plan.options)
    for network in sorted({p.network for p in subnets}):
        session.cli("subnet", "list", network)


def show_guest(session: Session, name: str = scenario.GUEST_INSTANCE) -> GuestView:
    inst = views.instance_named(session, name)
    doc = session.get(f"/v1/instances/{inst['id']}/metadata/openstack/latest/network_data.json")
    session.say(f"{name}'s guest reads this network_data.json (GET /v1/instances/{inst['id']}"
                "/metadata/openstack/latest/network_data.json; the same files come as a config "
                f"drive with `vfkeeper instance config-drive {inst['id']} --out drive.iso`):")
    session.console.print(json.dumps(doc, indent=2), markup=False)
    view = GuestView(doc)
    tool = shutil.which("cloud-init")
    if tool is None:
        session.say("cloud-init is not installed on this machine (apt-get install cloud-init "
                    "for `cloud-init devel net-convert`), so the files it would write in the guest "
                    "are not shown.")
        return view
    ports = [session.get(f"/v1/ports/{pid}") for pid in inst["ports"]]
    nics = [f"{_guest_name(p, ports[:i])},{_guest_address(p)}" for i, p in enumerate(ports)]
    with tempfile.TemporaryDirectory(prefix="vfkeeper-demo-guest-") as tmp:
        source = Path(tmp) / "network_data.json"
        source.write_text(json.dumps(doc))
        for renderer, distro in RENDERERS:
            view.rendered[renderer] = files = _net_convert(
                tool, source, Path(tmp) / renderer, renderer, distro=distro, nics=nics)
            session.say(f"what cloud-init writes from it in a guest ({renderer}, "
                        f"`cloud-init devel net-convert -O {renderer}`; its interface files):")
            for path, text in sorted(files.items()):
                if path.endswith(".yaml") or "/ifcfg-" in path:
                    session.console.print(f"# /{path}\n{text.rstrip()}", markup=False)
    session.say("(Offline, net-convert cannot tell an IPoIB interface from an Ethernet one: it "
                "reads this machine's /sys. In the guest, cloud-init finds the InfiniBand VF by "
                "its GUID's 6-byte form, the link's ethernet_mac_address, and configures it as "
                "InfiniBand: docs/guest-configuration.md.)")
    return view


def _guest_name(port: dict[str, Any], before: list[dict[str, Any]]) -> str:
    """``eth0``, ``eth1`` … and ``ib0`` … in the order of the instance's ports."""
    kind = "ib" if port.get("guid") else "eth"
    return f"{kind}{sum(1 for p in before if bool(p.get('guid')) == (kind == 'ib'))}"


def _guest_address(port: dict[str, Any]) -> str:
    """What the guest's interface shows cloud-init: the MAC, or for IPoIB the GUID's 6-byte
    form (offline, net-convert cannot tell an IPoIB interface: it would read this host's
    /sys)."""
    return guid_to_cloud_init_mac(port["guid"]) if port.get("guid") else str(port["mac"])


def _net_convert(tool: str, source: Path, out: Path, renderer: str, *, distro: str,
                 nics: list[str]) -> dict[str, str]:
    args = [tool, "devel", "net-convert", "-p", str(source), "-k", "network_data.json",
            "-d", str(out), "-D", distro, "-O", renderer]
    for nic in nics:
        args += ["-m", nic]
    run = subprocess.run(args, capture_output=True, text=True, check=False, timeout=120)
    if run.returncode != 0:
        raise DemoStepError(f"cloud-init net-convert -O {renderer} refused vfkeeper's "
                            f"network_data.json: {run.stderr.strip()[-500:]}")
    return {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*"))
            if p.is_file()}
