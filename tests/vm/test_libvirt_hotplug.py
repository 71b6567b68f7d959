"""Real libvirtd hot-plug of a VF, inside the QEMU guest, through vfkeeper's own adapter; and
the same sequence against the fake, which must show the same results.

The guest starts libvirtd (Debian's libvirt-daemon-driver-qemu, installed by
scripts/vm/setup.sh) and defines a nested domain (QEMU TCG inside TCG, machine ``pc``). A live
detach needs a guest OS to answer the ACPI eject; the nested domain boots ``l2stub.S``, a
174-byte multiboot kernel that answers it through the PIIX4 ACPI PCI hot-plug registers, as a
Linux guest's acpiphp does (a nested Linux kernel took 3-4 min to reach its init under TCG in
TCG; the stub is up within seconds). Covered, on the real daemon: live+persistent attach of an
``<interface type='hostdev' managed='yes'>`` with a MAC and a VLAN rendered by domain/vif.py;
libvirt rebinding the VF to vfio-pci and programming MAC/VLAN on the PF; the refusals the fake
models (duplicate alias, live change of a shut-off domain, a second domain starting with a VF a
running one holds, detaching an alias nobody has); live+persistent detach by alias with the VF
back on igbvf and its VLAN cleared.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import vm_guest

from vfkeeper.agent.libvirt import (
    DeviceInUseError,
    DeviceNotFoundError,
    DomainDevice,
    DomainNotRunningError,
    DomainOps,
    DuplicateAliasError,
)
from vfkeeper.domain.vif import BoundVif, render_interface

pytestmark = pytest.mark.vm(iommu=True)

MAC = "02:76:66:00:00:2a"
VLAN = 42
ALIAS = "ua-vfk-hotplug0"
L2_READY = "VFK-L2-READY"
L2_STUB = bytes.fromhex(
    "02b0ad1b00000100fe4f51e40000100000001000ae001000b60c100020001000fabcb60c1000b0fee621b0ff"
    "e6a1668ccbbfb6001000b900010000b88d00100066890766895f0266c74704008ec1e8106689470683c708e2"
    "e20f011da8001000be9400100066baf803ac84c07403eeebf8fbf466ba04aeed85c074f60fbcc8b801000000"
    "d3e066ba08aeefebe550b020e62058cf56464b2d4c322d52454144590a008db600000000ff07b6001000"
)
"""tests/vm/l2stub.S assembled (test_vm_harness.py checks it): the nested guest's kernel."""
_USERS = ("libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin\n",)
_GROUPS = ("kvm:x:64056:\n", "libvirt-qemu:x:64055:\n", "libvirt:x:64057:\n")
_QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
stdio_handler = "file"
namespaces = [ ]
cgroup_controllers = [ ]
seccomp_sandbox = 0
"""


def _append_missing(path: str, lines: tuple[str, ...]) -> None:
    text = Path(path).read_text()
    with open(path, "a") as f:
        for line in lines:
            if not any(t.startswith(line.split(":")[0] + ":") for t in text.splitlines()):
                f.write(line)


@pytest.fixture(scope="module")
def libvirtd() -> Iterator[None]:
    """libvirtd in the guest (a fresh machine: no users, no dbus, no polkit, no cgroups)."""
    if not shutil.which("libvirtd"):
        pytest.skip("libvirtd is not installed (scripts/vm/setup.sh installs libvirt-daemon)")
    _append_missing("/etc/passwd", _USERS)
    _append_missing("/etc/group", _GROUPS)
    Path("/etc/libvirt").mkdir(parents=True, exist_ok=True)
    Path("/etc/libvirt/qemu.conf").write_text(_QEMU_CONF)
    Path("/etc/libvirt/libvirtd.conf").write_text(
        'auth_unix_rw = "none"\nauth_unix_ro = "none"\nlog_outputs = "3:stderr"\n'
    )
    for d in (
        "/run/libvirt",
        "/var/lib/libvirt/qemu",
        "/var/log/libvirt/qemu",
        "/var/cache/libvirt",
    ):
        Path(d).mkdir(parents=True, exist_ok=True)
    log = open("/tmp/libvirtd.log", "w")  # noqa: SIM115 - lives as long as the daemon
    proc = subprocess.Popen(["libvirtd"], stdout=log, stderr=subprocess.STDOUT)
    vm_guest.wait_until(lambda: Path("/run/libvirt/libvirt-sock").exists(), "libvirtd's socket")
    yield
    import libvirt

    conn = libvirt.open("qemu:///system")  # the nested domains would outlive the daemon
    for dom in conn.listAllDomains():
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    conn.close()
    proc.terminate()
    proc.wait(30)
    log.close()


def _l2_kernel(tmp: Path) -> str:
    """The nested guest's kernel: the multiboot stub that answers hot-unplug requests."""
    kernel = tmp / "l2stub.bin"
    kernel.write_bytes(L2_STUB)
    return str(kernel)


def _domain_xml(name: str, kernel: str, console: Path) -> str:
    # Nothing the test does not need: no USB controller, no balloon (libvirt adds -nodefaults,
    # and no video or input without <graphics>).
    return f"""<domain type='qemu'>
  <name>{name}</name><uuid>{uuid.uuid4()}</uuid>
  <memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type><kernel>{kernel}</kernel></os>
  <features><acpi/></features>
  <devices>
    <controller type='usb' model='none'/>
    <serial type='file'><source path='{console}'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>"""


def _sequence(
    ops: DomainOps,
    vf: str,
    *,
    read_vf: Callable[[], tuple[str | None, int]],
    driver: Callable[[], str | None],
    wait_guest: Callable[[], None],
    define: Callable[[str], str],
) -> list[tuple[str, Any]]:
    """The attach/detach sequence; returns what was observed at each step."""
    seen: list[tuple[str, Any]] = []
    xml = render_interface(
        BoundVif("hw_veb", "direct", pci_address=vf, mac=MAC, vlan=VLAN, alias=ALIAS)
    )
    vm, other = define("vm"), define("other")
    ops.start(vm)
    ops.attach(vm, xml, live=True, config=True)
    devices = ops.devices(vm)
    seen.append(
        (
            "attached",
            [(d.alias, d.pci_address, d.mac, d.vlan) for d in devices.live],
            [(d.alias, d.pci_address) for d in devices.config],
        )
    )
    seen.append(("vf after attach", driver(), read_vf()))
    for attempt in (
        lambda: ops.attach(vm, xml, live=True, config=True),
        lambda: ops.attach(other, xml.replace(ALIAS, "ua-vfk-other"), live=True, config=False),
        lambda: ops.detach(
            vm,
            DomainDevice("interface", "hostdev", "", alias="ua-vfk-nothere"),
            live=True,
            config=False,
        ),
    ):
        try:
            attempt()
            seen.append(("refused", None))
        except (DuplicateAliasError, DomainNotRunningError, DeviceNotFoundError) as exc:
            seen.append(("refused", type(exc).__name__))
    ops.attach(other, xml.replace(ALIAS, "ua-vfk-other"), live=False, config=True)
    try:
        ops.start(other)
        seen.append(("start other", None))
    except DeviceInUseError as exc:
        seen.append(("start other", (type(exc).__name__, exc.address, exc.holder == vm)))
    wait_guest()
    ops.detach(vm, devices.live[0], live=True, config=True)
    vm_guest.wait_until(lambda: not ops.devices(vm).live, "the guest to release the VF", 120)
    vm_guest.wait_until(lambda: driver() not in ("vfio-pci", None), "the VF back on its driver")
    mac, vlan = read_vf()
    seen.append(("vf after detach", driver(), vlan, mac not in (None, MAC, "00:00:00:00:00:00")))
    seen.append(("left", ops.devices(vm).live, ops.devices(vm).config))
    return seen


def test_real_libvirtd_and_the_fake_show_the_same(
    libvirtd: None, igb_vfs: Any, tmp_path: Path
) -> None:
    from vfkeeper.agent.libvirt.fake import FakeDomainOps
    from vfkeeper.agent.libvirt.libvirt_impl import LibvirtDomainOps
    from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
    from vfkeeper.agent.linkops.pyroute2_impl import Pyroute2LinkOps

    vfs = igb_vfs(2)
    pf_addr = vm_guest.sriov_pfs("igb")[0]
    pf = vm_guest.netdevs(pf_addr)[0]
    subprocess.run(["ip", "link", "set", pf, "up"], check=True)
    kernel = _l2_kernel(tmp_path)
    console = tmp_path / "l2-console.log"

    with LibvirtDomainOps("qemu:///system") as real, Pyroute2LinkOps() as netlink:

        def read_real() -> tuple[str | None, int]:
            state = netlink.get_vf(pf, 0)
            return state.mac, state.vlan.id if state.vlan else 0

        def define_real(name: str) -> str:
            return real.define(
                _domain_xml(name, kernel, console if name == "vm" else tmp_path / "other.log")
            ).name

        def wait_real() -> None:
            vm_guest.wait_until(
                lambda: console.exists() and L2_READY in console.read_text(errors="replace"),
                "the nested guest's stub",
                300,
            )

        real_seen = _sequence(
            real,
            vfs[0],
            read_vf=read_real,
            driver=lambda: vm_guest.driver_of(vfs[0]),
            wait_guest=wait_real,
            define=define_real,
        )

    linkops = FakeLinkOps([FakePf("pf0", "igb", 2)])
    fake = FakeDomainOps(linkops, lambda a: ("pf0", 0) if a == vfs[0] else None)

    def read_fake() -> tuple[str | None, int]:
        state = linkops.get_vf("pf0", 0)
        return state.mac, state.vlan.id if state.vlan else 0

    fake_seen = _sequence(
        fake,
        vfs[0],
        read_vf=read_fake,
        driver=lambda: fake.drivers.get(vfs[0], "igbvf"),
        wait_guest=lambda: None,
        define=lambda n: fake.define(_domain_xml(n, kernel, console)).name,
    )
    assert real_seen[1] == ("vf after attach", "vfio-pci", (MAC, VLAN))
    assert real_seen[-2] == ("vf after detach", "igbvf", 0, True)
    assert fake_seen == real_seen
