"""Migration and managed save in the fake libvirt, refused as libvirtd 9.0 refuses them (the
wording and codes seen in the VM tier: tests/vm/test_libvirt_hotplug.py), and the real
adapter's typing of those refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from vfkeeper.agent.libvirt import (
    DomainNotFoundError,
    DomainNotRunningError,
    DomainState,
    HostdevBlocksError,
    LibvirtCallError,
)
from vfkeeper.agent.libvirt.devices import parse_devices
from vfkeeper.agent.libvirt.fake import FakeDomainOps
from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
from vfkeeper.domain.vif import BoundVif, render_interface, render_test_domain

VF, VF2 = "0000:03:10.1", "0000:03:10.3"
HOSTDEV_IF = render_interface(BoundVif("hw_veb", "direct", pci_address=VF,
                                       mac="02:76:66:00:00:01", vlan=42, alias="ua-vfk-p1"))
HOSTDEV_IF2 = render_interface(BoundVif("hw_veb", "direct", pci_address=VF2,
                                        mac="02:76:66:00:00:02", alias="ua-vfk-p2"))
MACVTAP = render_interface(BoundVif("hw_veb", "macvtap", netdev="enp3s0f0v1",
                                    mac="02:76:66:00:00:03", alias="ua-vfk-p3"))
A_URI, B_URI = "qemu+tcp://host-a/system", "qemu+tcp://host-b/system"
BLOCKED = ("Requested operation is not valid: cannot migrate domain: 0000:03:10.1: VFIO "
           "migration is not supported in kernel")


def _hosts() -> tuple[FakeDomainOps, FakeDomainOps]:
    linkops = FakeLinkOps([FakePf("enp3s0f0", "igb", 4)])
    a = FakeDomainOps(linkops, lambda addr: ("enp3s0f0", 1) if addr == VF else None, uri=A_URI)
    b = FakeDomainOps(linkops, lambda addr: ("enp3s0f0", 1) if addr == VF else None, uri=B_URI,
                      fabric=a.fabric)
    a.define(render_test_domain("vm", [], domain_type="kvm"))
    a.start("vm")
    return a, b


def _summary(ops: FakeDomainOps, name: str) -> tuple[Any, ...]:
    devices = ops.devices(name)
    return (devices.domain.state, devices.domain.managed_save,
            [(d.type, d.source_dev, d.pci_address) for d in devices.live],
            [(d.type, d.source_dev, d.pci_address) for d in devices.config])


def test_migrate_moves_the_domain_and_its_live_devices_to_the_peer() -> None:
    a, b = _hosts()
    a.attach("vm", MACVTAP, live=True, config=True)
    uuid_before = a.list_domains()[0].uuid
    a.migrate("vm", B_URI)
    assert a.list_domains() == ()
    assert [(d.name, d.uuid, d.state) for d in b.list_domains()] == [
        ("vm", uuid_before, DomainState.RUNNING)]
    assert _summary(b, "vm") == (DomainState.RUNNING, False, [("direct", "enp3s0f0v1", None)],
                                 [("direct", "enp3s0f0v1", None)])
    assert (a.calls[-1], b.calls[-1]) == (("migrate", "vm"), ("incoming", "vm"))
    b.migrate("vm", A_URI)  # and back: the peer is a full fake host
    assert b.list_domains() == () and [d.name for d in a.list_domains()] == ["vm"]


def test_a_macvtap_survives_migration_on_the_netdev_the_destination_xml_names() -> None:
    a, b = _hosts()
    a.attach("vm", MACVTAP, live=True, config=False)
    a.attach("vm", HOSTDEV_IF2, live=False, config=True)  # config only: no blocker
    live = a.domain_xml("vm").replace("enp3s0f0v1", "ens1f0v7")
    persistent = a.domain_xml("vm", inactive=True)
    assert [d.type for d in parse_devices(persistent)] == ["hostdev"]
    a.migrate("vm", B_URI, dest_xml=live, persist_xml=persistent)
    assert _summary(b, "vm") == (DomainState.RUNNING, False, [("direct", "ens1f0v7", None)],
                                 [("hostdev", None, VF2)])
    [moved] = b.devices("vm").live
    assert (moved.mac, moved.alias) == ("02:76:66:00:00:03", "ua-vfk-p3")


def test_managed_save_then_start_restores_the_saved_live_devices_not_the_config() -> None:
    a, _ = _hosts()
    a.attach("vm", MACVTAP, live=True, config=False)
    a.attach("vm", HOSTDEV_IF, live=False, config=True)
    a.managed_save("vm")
    assert _summary(a, "vm") == (DomainState.SHUTOFF, True, [], [("hostdev", None, VF)])
    assert a.drivers == {}
    with pytest.raises(DomainNotRunningError):
        a.managed_save("vm")
    a.start("vm")
    assert _summary(a, "vm") == (DomainState.RUNNING, False, [("direct", "enp3s0f0v1", None)],
                                 [("hostdev", None, VF)])
    assert a.drivers == {}  # the VF of the config was not plugged by the restore
    a.destroy("vm")
    a.start("vm")  # no save image any more: a boot from the config
    assert _summary(a, "vm")[2] == [("hostdev", None, VF)] and a.drivers == {VF: "vfio-pci"}


@pytest.mark.parametrize("operation", ["migrate", "save"])
def test_a_held_pci_function_blocks_both_moves_with_qemus_blockers(operation: str) -> None:
    a, b = _hosts()
    a.attach("vm", HOSTDEV_IF, live=True, config=True)
    a.attach("vm", HOSTDEV_IF2, live=True, config=False)
    move = (lambda: a.migrate("vm", B_URI)) if operation == "migrate" else (
        lambda: a.managed_save("vm"))
    with pytest.raises(HostdevBlocksError) as caught:
        move()
    err = caught.value
    assert (err.operation, err.code, err.devices) == (operation, 55, (VF, VF2))
    assert err.libvirt_message == (BLOCKED + "; 0000:03:10.3: VFIO migration is not supported "
                                   "in kernel")
    assert _summary(a, "vm")[:2] == (DomainState.RUNNING, False)
    assert len(a.devices("vm").live) == 2 and b.list_domains() == ()
    [first, second] = a.devices("vm").live
    a.detach("vm", second, live=True, config=False)
    with pytest.raises(HostdevBlocksError) as caught:
        move()
    assert (caught.value.devices, caught.value.libvirt_message) == ((VF,), BLOCKED)
    a.detach("vm", first, live=True, config=False)
    move()  # only the persistent definition holds the VF now: nothing blocks


@pytest.mark.parametrize("uri", ["qemu+unix:///system", "qemu:///system",
                                 "qemu+tcp://localhost/system", "qemu+ssh://localhost.lan/system"])
def test_a_uri_the_client_calls_local_is_refused_before_anything_else(uri: str) -> None:
    a, _ = _hosts()
    a.attach("vm", HOSTDEV_IF, live=True, config=True)
    a.define(render_test_domain("off", [], domain_type="kvm"))
    for name in ("vm", "off"):  # before the blocker and the "not running" checks
        with pytest.raises(LibvirtCallError) as caught:
            a.migrate(name, uri)
        assert (caught.value.code, caught.value.libvirt_message) == (
            8, "Attempt to migrate guest to the same host")


def test_the_same_libvirtd_by_another_uri_is_refused_by_its_host_uuid() -> None:
    a, _ = _hosts()
    own_socket = "qemu+unix:///system?socket=/run/libvirt/libvirt-sock"
    a.fabric[own_socket] = a
    with pytest.raises(LibvirtCallError) as caught:
        a.migrate("vm", own_socket)
    assert caught.value.code == 1
    assert caught.value.libvirt_message == (
        f"internal error: Attempt to migrate guest to the same host {a.host_uuid}")
    assert a.host_uuid != FakeDomainOps(uri=B_URI).host_uuid


@pytest.mark.parametrize(("uri", "message"), [
    ("qemu+tcp://127.0.0.1:1/system", "unable to connect to server at '127.0.0.1:1': "
                                      "Connection refused"),
    ("qemu+tcp://host-c/system", "unable to connect to server at 'host-c:16509': Connection "
                                 "refused"),
    ("qemu://host-c/system", "unable to connect to server at 'host-c:16514': Connection "
                             "refused"),
    ("qemu+unix:///system?socket=/nonexistent", "Failed to connect socket to '/nonexistent': "
                                                "No such file or directory"),
])
def test_an_unreachable_destination_is_a_system_error(uri: str, message: str) -> None:
    a, _ = _hosts()
    with pytest.raises(LibvirtCallError) as caught:
        a.migrate("vm", uri)
    assert (caught.value.code, caught.value.libvirt_message) == (38, message)
    assert [d.state for d in a.list_domains()] == [DomainState.RUNNING]


def test_a_shut_off_or_unknown_domain_is_not_moved() -> None:
    a, b = _hosts()
    a.destroy("vm")
    with pytest.raises(DomainNotRunningError):
        a.migrate("vm", B_URI)
    with pytest.raises(DomainNotRunningError):
        a.managed_save("vm")
    with pytest.raises(DomainNotFoundError):
        a.migrate("nope", B_URI)
    assert b.list_domains() == () and a.list_domains()[0].managed_save is False


def test_the_destination_refuses_a_running_or_different_domain_of_that_name() -> None:
    a, b = _hosts()
    vm_uuid = a.list_domains()[0].uuid
    b.define(render_test_domain("vm", [], domain_type="kvm").replace(
        "<name>vm</name>", f"<name>vm</name><uuid>{vm_uuid}</uuid>"))
    b.start("vm")
    with pytest.raises(LibvirtCallError) as caught:
        a.migrate("vm", B_URI)
    assert (caught.value.code, caught.value.libvirt_message) == (
        55, "Requested operation is not valid: domain 'vm' is already active")
    b.destroy("vm")
    a.migrate("vm", B_URI)  # the same domain, shut off there: replaced
    assert b.list_domains()[0].state is DomainState.RUNNING
    a.define(render_test_domain("vm", [], domain_type="kvm"))
    a.start("vm")
    b.destroy("vm")
    with pytest.raises(LibvirtCallError) as caught:
        a.migrate("vm", B_URI)
    assert (caught.value.code, caught.value.libvirt_message) == (
        9, f"operation failed: domain 'vm' already exists with uuid {vm_uuid}")


# -- the real adapter's typing of libvirt's refusals ---------------------------------------------


class _Refusal(Exception):
    """Stands in for ``libvirt.libvirtError`` with a given code and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def get_error_code(self) -> int:
        return self.code

    def get_error_message(self) -> str:
        return self.message


@pytest.fixture
def real() -> Iterator[Any]:
    pytest.importorskip("libvirt", reason="libvirt-python is not installed")
    from vfkeeper.agent.libvirt.libvirt_impl import LibvirtDomainOps

    with LibvirtDomainOps("test:///default") as ops:
        yield ops


@pytest.mark.libvirt
@pytest.mark.parametrize(("code", "message", "devices"), [
    (55, BLOCKED, (VF,)),  # libvirtd 9.0 + QEMU 10 (VM tier)
    (55, BLOCKED + "; 0000:03:10.3: VFIO migration is not supported in kernel", (VF, VF2)),
    (55, "Requested operation is not valid: cannot migrate domain: VFIO device doesn't support "
         "migration", ()),  # QEMU 7.2 (Debian 12's own)
    (84, "Operation not supported: cannot migrate a domain with <interface type='hostdev'>", ()),
    (84, "Operation not supported: cannot migrate a domain with <hostdev mode='subsystem' "
         "type='pci'>", ()),
])
def test_real_adapter_types_the_hostdev_refusals(real: Any, code: int, message: str,
                                                 devices: tuple[str, ...]) -> None:
    err = real._move_error(_Refusal(code, message), "save", "vm")
    assert isinstance(err, HostdevBlocksError)
    assert (err.operation, err.code, err.devices, err.libvirt_message) == (
        "save", code, devices, message)


@pytest.mark.libvirt
@pytest.mark.parametrize(("code", "message", "typed"), [
    (8, "Attempt to migrate guest to the same host", LibvirtCallError),
    (1, "internal error: Attempt to migrate guest to the same host 46568584-0046-4821-9680-"
        "983304e000ff", LibvirtCallError),
    (55, "Requested operation is not valid: cannot migrate domain: domain has 'invtsc' CPU "
         "feature", LibvirtCallError),  # a blocker unplugging cannot lift
    (55, "Requested operation is not valid: domain is not running", DomainNotRunningError),
])
def test_real_adapter_leaves_other_refusals_untyped(real: Any, code: int, message: str,
                                                   typed: type[Exception]) -> None:
    err = real._move_error(_Refusal(code, message), "migrate", "vm")
    assert type(err) is typed
    assert not isinstance(err, HostdevBlocksError)


@pytest.mark.libvirt
def test_real_adapter_saves_and_restores_on_the_test_driver(real: Any) -> None:
    name = f"vfk-{uuid.uuid4().hex[:8]}"
    real.define(render_test_domain(name, [MACVTAP]))
    real.start(name)
    assert real.domain_xml(name).startswith("<domain")
    real.managed_save(name)
    [saved] = [d for d in real.list_domains() if d.name == name]
    assert (saved.state, saved.managed_save) == (DomainState.SHUTOFF, True)
    real.start(name)
    [restored] = [d for d in real.list_domains() if d.name == name]
    assert (restored.state, restored.managed_save) == (DomainState.RUNNING, False)
