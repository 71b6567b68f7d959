"""The demo hosts' hypervisor: domains on libvirt's test driver (a connection per host), device
hot-plug in the agent's in-memory model."""

from __future__ import annotations

from pathlib import Path

import pytest

from vfkeeper.agent.libvirt import DomainNotFoundError, DomainState
from vfkeeper.agent.linkops.fake import FakeLinkOps, FakePf
from vfkeeper.demo.hypervisor import HypervisorOnTestDriver, own_test_driver_uri
from vfkeeper.domain.desired_state import DesiredPort, DesiredState
from vfkeeper.domain.vif import BoundVif, render_interface

pytest.importorskip("libvirt", reason="the libvirt Python binding is not installed")

UUID = "6f1c0c6e-58a3-4b39-9d35-0d0c3a4c2d11"
VF = "0000:03:00.1"


@pytest.fixture
def kernel() -> FakeLinkOps:
    return FakeLinkOps([FakePf("enp3s0f0", "ice", 2)])


def _hypervisor(path: Path, kernel: FakeLinkOps) -> HypervisorOnTestDriver:
    where = {VF: ("enp3s0f0", 0)}
    return HypervisorOnTestDriver(own_test_driver_uri(path), kernel, where.get)


def _interface(alias: str) -> str:
    return render_interface(BoundVif("hw_veb", "direct", pci_address=VF, mac="02:00:00:00:00:01",
                                     vlan=100, alias=alias))


def test_each_host_has_a_test_driver_of_its_own(tmp_path: Path, kernel: FakeLinkOps) -> None:
    a = _hypervisor(tmp_path / "a.xml", kernel)
    b = _hypervisor(tmp_path / "b.xml", kernel)
    domain = a.boot("vm1", UUID)
    assert (domain.name, domain.uuid, domain.state) == ("vm1", UUID, DomainState.RUNNING)
    assert a.uri == f"test://{tmp_path / 'a.xml'}"
    assert [d.name for d in a.list_domains()] == ["vm1"]
    assert b.list_domains() == ()


def test_attach_and_detach_are_modelled_on_the_test_drivers_domain(
        tmp_path: Path, kernel: FakeLinkOps) -> None:
    hv = _hypervisor(tmp_path / "a.xml", kernel)
    hv.boot("vm1", UUID)
    hv.attach("vm1", _interface("ua-vfk-p1"), live=True, config=True)
    held = hv.devices("vm1")
    assert held.domain.uuid == UUID and held.domain.state is DomainState.RUNNING
    assert [d.alias for d in held.live] == [d.alias for d in held.config] == ["ua-vfk-p1"]
    vf = kernel.get_vf("enp3s0f0", 0)  # libvirt sets an <interface type='hostdev'>'s MAC/VLAN
    assert (vf.mac, vf.vlan.id if vf.vlan else 0) == ("02:00:00:00:00:01", 100)
    device = held.live[0]
    hv.detach("vm1", device, live=True, config=True)
    assert hv.devices("vm1").live == hv.devices("vm1").config == ()


def test_a_domain_the_test_driver_does_not_have_is_not_found(tmp_path: Path,
                                                             kernel: FakeLinkOps) -> None:
    hv = _hypervisor(tmp_path / "a.xml", kernel)
    with pytest.raises(DomainNotFoundError):
        hv.attach("nope", _interface("ua-vfk-p1"), live=True, config=True)


def test_placed_instances_get_domains_only_when_asked(tmp_path: Path,
                                                      kernel: FakeLinkOps) -> None:
    hv = _hypervisor(tmp_path / "a.xml", kernel)
    port = DesiredPort(port_id="p1", request_id="r1", instance_id=UUID, instance_name="vm1",
                       address=VF, vnic_type="direct", vif_type="hw_veb")
    desired = DesiredState(host="a", generation=1, vfs=(port,))
    hv.ensure_domains(desired)
    assert hv.list_domains() == ()
    hv.boots_placed_instances = True
    hv.ensure_domains(desired)
    hv.ensure_domains(desired)
    [domain] = hv.list_domains()
    assert (domain.name, domain.uuid, domain.state) == ("vm1", UUID, DomainState.RUNNING)
