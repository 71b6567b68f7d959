"""The libvirt adapter: the real implementation against libvirt's ``test:///default`` driver
(define, start, read devices back from XMLDesc), and the fake's refusals, worded as libvirtd
9.0 words them (the VM tier runs one sequence against both: tests/vm/test_libvirt_hotplug.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from vfkeeper.agent.libvirt import (
    DeviceInUseError,
    DeviceNotFoundError,
    DomainNotFoundError,
    DomainNotRunningError,
    DomainState,
    DuplicateAliasError,
)
from vfkeeper.agent.libvirt.devices import parse_devices
from vfkeeper.agent.libvirt.fake import FakeDomainOps
from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
from vfkeeper.agent.linkops.protocol import Vlan
from vfkeeper.domain.vif import BoundVif, render_interface, render_test_domain

VF = "0000:03:10.1"
HOSTDEV_IF = render_interface(BoundVif("hw_veb", "direct", pci_address=VF,
                                       mac="02:76:66:00:00:01", vlan=42, alias="ua-vfk-p1"))
IB_HOSTDEV = render_interface(BoundVif("ib_hostdev", "direct", pci_address="0000:81:00.2",
                                       alias="ua-vfk-p2"))
MACVTAP = render_interface(BoundVif("hw_veb", "macvtap", netdev="enp3s0f0v1",
                                    mac="02:76:66:00:00:03", alias="ua-vfk-p3"))


def test_devices_parse_every_passthrough_form() -> None:
    xml = render_test_domain("d", [HOSTDEV_IF, IB_HOSTDEV, MACVTAP])
    hostdev_if, ib, macvtap = parse_devices(xml)
    assert (hostdev_if.kind, hostdev_if.type, hostdev_if.pci_address, hostdev_if.mac,
            hostdev_if.vlan, hostdev_if.alias) == ("interface", "hostdev", VF,
                                                  "02:76:66:00:00:01", 42, "ua-vfk-p1")
    assert (ib.kind, ib.type, ib.pci_address, ib.mac, ib.alias) == (
        "hostdev", "pci", "0000:81:00.2", None, "ua-vfk-p2")
    assert (macvtap.type, macvtap.source_dev, macvtap.pci_address) == (
        "direct", "enp3s0f0v1", None)


@pytest.fixture
def real() -> Iterator[object]:
    pytest.importorskip("libvirt", reason="libvirt-python is not installed")
    from vfkeeper.agent.libvirt.libvirt_impl import LibvirtDomainOps

    with LibvirtDomainOps("test:///default") as ops:
        yield ops


@pytest.mark.libvirt
def test_real_adapter_defines_starts_and_reads_devices(real: object) -> None:
    from vfkeeper.agent.libvirt.libvirt_impl import LibvirtDomainOps

    assert isinstance(real, LibvirtDomainOps)
    name = f"vfk-{uuid.uuid4().hex[:8]}"
    dom = real.define(render_test_domain(name, [HOSTDEV_IF, IB_HOSTDEV]))
    assert dom.state is DomainState.SHUTOFF
    off = real.devices(name)
    assert off.live == () and [d.pci_address for d in off.config] == [VF, "0000:81:00.2"]
    real.start(name)
    on = real.devices(name)
    assert on.domain.state is DomainState.RUNNING
    assert [(d.alias, d.vlan) for d in on.live] == [("ua-vfk-p1", 42), ("ua-vfk-p2", None)]
    assert name in {d.name for d in real.list_domains()}
    with pytest.raises(DomainNotFoundError, match="no libvirt domain 'nope'"):
        real.devices("nope")


def _fake() -> tuple[FakeDomainOps, FakeLinkOps]:
    linkops = FakeLinkOps([FakePf("enp3s0f0", "igb", 4)])
    ops = FakeDomainOps(linkops, lambda a: ("enp3s0f0", 1) if a == VF else None)
    for name in ("a", "b"):
        ops.define(render_test_domain(name, [], domain_type="kvm"))
    ops.start("a")
    return ops, linkops


def test_fake_attach_rebinds_and_programs_like_libvirt() -> None:
    ops, linkops = _fake()
    ops.attach("a", HOSTDEV_IF, live=True, config=True)
    assert ops.drivers == {VF: "vfio-pci"}
    vf = linkops.get_vf("enp3s0f0", 1)
    assert (vf.mac, vf.vlan) == ("02:76:66:00:00:01", Vlan(42))
    [live] = ops.devices("a").live
    ops.detach("a", live, live=True, config=True)
    assert ops.drivers == {}
    vf = linkops.get_vf("enp3s0f0", 1)
    # as libvirtd on igb: the VLAN is cleared, the MAC is the VF driver's made-up one
    assert vf.vlan == Vlan(0) and vf.mac not in ("00:00:00:00:00:00", "02:76:66:00:00:01")
    assert ops.devices("a").config == ()


def test_fake_refuses_what_libvirt_refuses() -> None:
    ops, _ = _fake()
    with pytest.raises(DomainNotRunningError):
        ops.attach("b", HOSTDEV_IF, live=True, config=False)
    ops.attach("a", HOSTDEV_IF, live=True, config=True)
    with pytest.raises(DuplicateAliasError, match="non unique alias detected"):
        ops.attach("a", HOSTDEV_IF, live=True, config=True)
    other = HOSTDEV_IF.replace("ua-vfk-p1", "ua-vfk-p9")
    ops.start("b")
    with pytest.raises(DeviceInUseError, match=r"in use by domain 'a'"):
        ops.attach("b", other, live=True, config=False)
    [missing] = parse_devices(render_test_domain("x", [IB_HOSTDEV]))
    with pytest.raises(DeviceNotFoundError, match="no device found with alias ua-vfk-p2"):
        ops.detach("a", missing, live=True, config=False)


def test_fake_keeps_a_device_until_the_guest_answers_the_unplug() -> None:
    ops, _ = _fake()
    ops.attach("a", HOSTDEV_IF, live=True, config=True)
    ops.domains["a"].guest_answers_unplug = False
    [live] = ops.devices("a").live
    ops.detach("a", live, live=True, config=False)
    assert [d.alias for d in ops.devices("a").live] == ["ua-vfk-p1"]
    assert ops.drivers == {VF: "vfio-pci"}
    ops.guest_acks("a")
    assert ops.devices("a").live == () and ops.drivers == {}
