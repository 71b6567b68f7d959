"""Real libvirtd hot-plug, migration and managed save, inside the QEMU guest, through
vfkeeper's own adapter; and the same sequences against the fake, which must show the same.

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

The second test shares the daemon, the VFs and the running domain, and does what the agent's
suspend and migrate do: while the VF is plugged libvirt refuses both (QEMU's migration blocker,
``HostdevBlocksError``); a URI the client library calls local is refused before anything else;
after the unplug a migration gets past that check to libvirt's own "same host" refusal;
managed save, restore by start, re-plug; then a real live migration to a second libvirtd in
the guest (own mount namespace and host UUID) with the macvtap moved to another VF's netdev in
the destination XML, and a re-plug there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
import vm_guest

from vfkeeper.agent.libvirt import (
    DeviceInUseError,
    DeviceNotFoundError,
    DomainDevice,
    DomainNotRunningError,
    DomainOps,
    DuplicateAliasError,
    HostdevBlocksError,
    LibvirtCallError,
)
from vfkeeper.agent.libvirt.devices import parse_devices
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
MV_MAC = "02:76:66:00:00:2b"
MV_ALIAS = "ua-vfk-macvtap0"
LOCAL_URI = "qemu+unix:///system"
"""The guest's libvirtd by the URI a user would type: libvirt's client library calls it local."""
SELF_URI = "qemu+unix:///system?socket=/run/libvirt/libvirt-sock"
"""The same daemon by an explicit socket, which the client library lets through to it."""
PEER_DIR = Path("/tmp/vfk-peer-libvirtd")
PEER_URI = f"qemu+unix:///system?socket={PEER_DIR}/libvirt-sock"
PEER_HOST_UUID = "9a6b2f1c-3d4e-4f50-8a61-72b3c4d5e6f7"
DOWN_URI = "qemu+tcp://127.0.0.1:1/system"  # nothing listens there
MIGRATION_IP = "192.0.2.1"
"""TEST-NET-1, put on ``lo`` for QEMU's migration stream between the two daemons."""
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


@pytest.fixture(scope="module")
def peer_libvirtd(libvirtd: None) -> Iterator[str]:
    """A second libvirtd in the guest, a migration's destination; yields its URI. Its own mount
    namespace hides the first one's state (/run/libvirt, /var/lib/libvirt, /etc/libvirt,
    /var/log/libvirt; QEMU's capabilities cache in /var/cache/libvirt stays shared, which saves
    probing QEMU again, ~8 s); it has its own socket and host UUID. QEMU's migration stream
    goes to an address on ``lo`` (libvirt refuses a loopback ``migration_host``)."""
    PEER_DIR.mkdir(exist_ok=True)
    (PEER_DIR / "libvirtd.conf").write_text(
        f'unix_sock_dir = "{PEER_DIR}"\nauth_unix_rw = "none"\nauth_unix_ro = "none"\n'
        f'log_outputs = "3:stderr"\nhost_uuid = "{PEER_HOST_UUID}"\n'
    )
    (PEER_DIR / "qemu.conf").write_text(
        _QEMU_CONF + f'migration_host = "{MIGRATION_IP}"\nmigration_address = "{MIGRATION_IP}"\n'
    )
    subprocess.run(["ip", "addr", "add", f"{MIGRATION_IP}/32", "dev", "lo"], check=True)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    hidden = ("/run/libvirt", "/var/lib/libvirt", "/etc/libvirt", "/var/log/libvirt")
    hide = "".join(f"mount -t tmpfs tmpfs {d}; " for d in hidden)
    script = (
        f"set -e; {hide}mkdir -p /var/lib/libvirt/qemu /var/log/libvirt/qemu; "
        f"cp {PEER_DIR}/qemu.conf /etc/libvirt/; "
        f"exec libvirtd --config {PEER_DIR}/libvirtd.conf --pid-file {PEER_DIR}/pid"
    )
    log = open("/tmp/libvirtd-peer.log", "w")  # noqa: SIM115 - lives as long as the daemon
    unshare = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    proc = subprocess.Popen(unshare, stdout=log, stderr=subprocess.STDOUT)
    vm_guest.wait_until((PEER_DIR / "libvirt-sock").exists, "the peer's socket")
    yield PEER_URI
    import libvirt

    conn = libvirt.open(PEER_URI)
    for dom in conn.listAllDomains():
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    conn.close()
    proc.terminate()
    proc.wait(30)
    log.close()
    subprocess.run(["ip", "addr", "del", f"{MIGRATION_IP}/32", "dev", "lo"], check=True)


class Nested(NamedTuple):
    """What the module's tests share: three VFs of the igb PF (netdev ``pf``), the nested
    domain's kernel and its serial console log. The domain ``vm`` is shared too: the hot-plug
    test defines and starts it, the lifecycle test goes on with it (starting it only when alone)
    and migrates it away."""

    vfs: list[str]
    pf: str
    kernel: str
    console: Path
    workdir: Path


@pytest.fixture(scope="module")
def nested(igb_vfs_shared: Any, libvirtd: None, tmp_path_factory: Any) -> Nested:
    # The VFs first: at the module's end libvirtd (and its domains) go before them.
    vfs = igb_vfs_shared(3)
    pf = vm_guest.netdevs(vm_guest.sriov_pfs("igb")[0])[0]
    subprocess.run(["ip", "link", "set", pf, "up"], check=True)
    tmp = tmp_path_factory.mktemp("l2")
    return Nested(vfs, pf, _l2_kernel(tmp), tmp / "l2-console.log", tmp)


def _wait_stub(console: Path) -> None:
    vm_guest.wait_until(
        lambda: console.exists() and L2_READY in console.read_text(errors="replace"),
        "the nested guest's stub",
        300,
    )


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


def test_real_libvirtd_and_the_fake_show_the_same(nested: Nested) -> None:
    from vfkeeper.agent.libvirt.fake import FakeDomainOps
    from vfkeeper.agent.libvirt.libvirt_impl import LibvirtDomainOps
    from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
    from vfkeeper.agent.linkops.pyroute2_impl import Pyroute2LinkOps

    vfs, pf = nested.vfs, nested.pf

    with LibvirtDomainOps("qemu:///system") as real, Pyroute2LinkOps() as netlink:

        def read_real() -> tuple[str | None, int]:
            state = netlink.get_vf(pf, 0)
            return state.mac, state.vlan.id if state.vlan else 0

        def define_real(name: str) -> str:
            console = nested.console if name == "vm" else nested.workdir / f"{name}.log"
            return real.define(_domain_xml(name, nested.kernel, console)).name

        real_seen = _sequence(
            real,
            vfs[0],
            read_vf=read_real,
            driver=lambda: vm_guest.driver_of(vfs[0]),
            wait_guest=lambda: _wait_stub(nested.console),
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
        define=lambda n: fake.define(_domain_xml(n, nested.kernel, nested.console)).name,
    )
    assert real_seen[1] == ("vf after attach", "vfio-pci", (MAC, VLAN))
    assert real_seen[-2] == ("vf after detach", "igbvf", 0, True)
    assert fake_seen == real_seen


# --- migration and managed save (what the agent's migrate and suspend do) ------------------------
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _try(call: Callable[[], None]) -> tuple[Any, ...]:
    """How a call ended: the typed error with libvirt's code and words (host UUIDs elided)."""
    try:
        call()
    except HostdevBlocksError as exc:
        return type(exc).__name__, exc.code, exc.devices, exc.libvirt_message
    except LibvirtCallError as exc:
        return type(exc).__name__, exc.code, _UUID.sub("<uuid>", exc.libvirt_message)
    except DomainNotRunningError as exc:
        return (type(exc).__name__,)
    return ("ok",)


def _seen(devices: tuple[DomainDevice, ...]) -> list[tuple[Any, ...]]:
    return sorted((d.type, d.alias, d.pci_address, d.source_dev, d.mac, d.vlan) for d in devices)


def _devices(ops: DomainOps) -> tuple[Any, ...]:
    got = ops.devices("vm")
    return got.domain.state.value, got.domain.managed_save, _seen(got.live), _seen(got.config)


def _outline(xml: str) -> tuple[str | None, list[tuple[str, str | None]]]:
    """The XML parses; its name and devices."""
    devices = sorted((d.type, d.alias) for d in parse_devices(xml))
    return ET.fromstring(xml).findtext("name"), devices


def _moved(xml: str, netdevs: dict[str, str]) -> str:
    """The domain XML with each macvtap moved to the destination's netdev, as the agent does."""
    root = ET.fromstring(xml)
    for source in root.findall("devices/interface[@type='direct']/source"):
        source.set("dev", netdevs.get(source.get("dev", ""), source.get("dev", "")))
    return ET.tostring(root, encoding="unicode")


def _lifecycle(
    ops: DomainOps,
    peer: DomainOps,
    vf: str,
    netdevs: tuple[str, str],
    *,
    read_vf: Callable[[], tuple[str | None, int]],
    driver: Callable[[], str | None],
) -> list[tuple[Any, ...]]:
    """Migrate and suspend as the agent does them, on the running domain ``vm`` holding a
    macvtap on ``netdevs[0]`` and the VF ``vf``: refused while the VF is plugged; unplugged,
    managed save, restore, re-plug; unplugged again, live migration to ``peer`` with the
    macvtap moved to ``netdevs[1]``, re-plug there."""
    seen: list[tuple[Any, ...]] = []
    vf_xml = render_interface(
        BoundVif("hw_veb", "direct", pci_address=vf, mac=MAC, vlan=VLAN, alias=ALIAS)
    )
    # No option ROM: the guest's QEMU has no iPXE ROMs (it changes nothing libvirt checks).
    mv_xml = render_interface(
        BoundVif("hw_veb", "macvtap", netdev=netdevs[0], mac=MV_MAC, alias=MV_ALIAS)
    ).replace("</interface>", "<rom enabled='no'/></interface>")

    def unplug(where: DomainOps) -> None:
        held = next(d for d in where.devices("vm").live if d.pci_address == vf)
        where.detach("vm", held, live=True, config=True)
        vm_guest.wait_until(
            lambda: all(d.pci_address != vf for d in where.devices("vm").live),
            "the guest to release the VF",
            120,
        )
        vm_guest.wait_until(lambda: driver() not in ("vfio-pci", None), "the VF on its driver")

    ops.attach("vm", mv_xml, live=True, config=True)
    ops.attach("vm", vf_xml, live=True, config=True)
    seen.append(("holding the VF", _try(lambda: ops.migrate("vm", LOCAL_URI)),
                 _try(lambda: ops.migrate("vm", PEER_URI)),
                 _try(lambda: ops.migrate("vm", DOWN_URI)),
                 _try(lambda: ops.managed_save("vm")), _devices(ops)))  # fmt: skip
    unplug(ops)
    seen.append(("unplugged", _try(lambda: ops.migrate("vm", LOCAL_URI)),
                 _try(lambda: ops.migrate("vm", SELF_URI)),
                 _try(lambda: ops.migrate("vm", DOWN_URI)),
                 _outline(ops.domain_xml("vm")), _outline(ops.domain_xml("vm", inactive=True))))
    ops.managed_save("vm")
    seen.append(("saved", _devices(ops), _try(lambda: ops.managed_save("vm")),
                 _try(lambda: ops.migrate("vm", PEER_URI))))  # fmt: skip
    ops.start("vm")
    seen.append(("restored", _devices(ops)))
    ops.attach("vm", vf_xml, live=True, config=True)
    seen.append(("re-plugged", _devices(ops), driver(), read_vf()))
    unplug(ops)
    rewrite = {netdevs[0]: netdevs[1]}
    ops.migrate("vm", PEER_URI, dest_xml=_moved(ops.domain_xml("vm"), rewrite),
                persist_xml=_moved(ops.domain_xml("vm", inactive=True), rewrite))  # fmt: skip
    seen.append(("migrated", "vm" in {d.name for d in ops.list_domains()}, _devices(peer)))
    peer.attach("vm", vf_xml, live=True, config=True)
    seen.append(("re-plugged there", _devices(peer), driver(), read_vf(),
                 _try(lambda: peer.migrate("vm", SELF_URI))))  # fmt: skip
    unplug(peer)
    mac, vlan = read_vf()
    seen.append(("VF back", driver(), vlan, mac not in (None, MAC, "00:00:00:00:00:00")))
    return seen


def test_migrate_and_save_real_libvirtd_and_the_fake_show_the_same(
    nested: Nested, peer_libvirtd: str
) -> None:
    from vfkeeper.agent.libvirt.fake import FakeDomainOps
    from vfkeeper.agent.libvirt.libvirt_impl import LibvirtDomainOps
    from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
    from vfkeeper.agent.linkops.pyroute2_impl import Pyroute2LinkOps

    vf, pf = nested.vfs[0], nested.pf
    netdevs = (vm_guest.netdevs(nested.vfs[1])[0], vm_guest.netdevs(nested.vfs[2])[0])
    subprocess.run(["modprobe", "macvtap"], check=True)
    with (
        LibvirtDomainOps("qemu:///system") as real,
        LibvirtDomainOps(peer_libvirtd) as there,
        Pyroute2LinkOps() as netlink,
    ):
        if not any(d.name == "vm" and d.state.active for d in real.list_domains()):
            real.define(_domain_xml("vm", nested.kernel, nested.console))
            real.start("vm")  # the hot-plug test did not leave it running
        _wait_stub(nested.console)

        def read_real() -> tuple[str | None, int]:
            state = netlink.get_vf(pf, 0)
            return state.mac, state.vlan.id if state.vlan else 0

        real_seen = _lifecycle(real, there, vf, netdevs, read_vf=read_real,
                               driver=lambda: vm_guest.driver_of(vf))  # fmt: skip

    linkops = FakeLinkOps([FakePf("pf0", "igb", 3)])
    fake = FakeDomainOps(linkops, lambda a: ("pf0", 0) if a == vf else None, uri=SELF_URI)
    fake_peer = FakeDomainOps(linkops, lambda a: ("pf0", 0) if a == vf else None, uri=PEER_URI,
                              fabric=fake.fabric)  # fmt: skip
    fake.define(_domain_xml("vm", nested.kernel, nested.console))
    fake.start("vm")

    def read_fake() -> tuple[str | None, int]:
        state = linkops.get_vf("pf0", 0)
        return state.mac, state.vlan.id if state.vlan else 0

    def fake_driver() -> str:
        return fake.drivers.get(vf) or fake_peer.drivers.get(vf, "igbvf")

    fake_seen = _lifecycle(fake, fake_peer, vf, netdevs, read_vf=read_fake, driver=fake_driver)
    blocked = ("HostdevBlocksError", 55, (vf,), "Requested operation is not valid: cannot "
               f"migrate domain: {vf}: VFIO migration is not supported in kernel")
    same_host = ("LibvirtCallError", 8, "Attempt to migrate guest to the same host")
    assert real_seen[0][1:5] == (same_host, blocked, blocked, blocked)
    assert real_seen[1][1:4] == (
        same_host,
        ("LibvirtCallError", 1, "internal error: " + same_host[2] + " <uuid>"),
        ("LibvirtCallError", 38, "unable to connect to server at '127.0.0.1:1': Connection "
                                 "refused"),
    )  # fmt: skip
    assert real_seen[2][0:2] == ("saved", ("shutoff", True, [], real_seen[2][1][3]))
    assert real_seen[3][1][:2] == ("running", False)
    assert real_seen[5][1] is False and real_seen[5][2][:2] == ("running", False)
    assert real_seen[6][2:5] == ("vfio-pci", (MAC, VLAN), blocked)
    assert fake_seen == real_seen
