"""What the cluster demo sets up and asks for: pure data, no I/O.

Three simulated hosts with different NICs (the fake sysfs trees of :mod:`vfkeeper.sim`), the
device specs that map each host's PFs to a physical network (host overrides: the same PCI
address is a ConnectX-6 on one host and an I350 on another, as in a real cluster), an Ethernet
VLAN network and an InfiniBand PKey network, the instances to boot with mixed vnic types, one
request nothing can hold, and which instance the demo deletes.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfkeeper.sim import HostSpec, PfSpec

ETH_PHYSNET = "physnet-eth"
IB_PHYSNET = "ib-fabric-a"
VIC_PROFILE = "vm-fex-tenant"
"""The 802.1Qbh port profile the Cisco VIC's VFs are tagged with (its ports become 802.1qbh)."""


@dataclass(frozen=True)
class DemoHost:
    spec: HostSpec
    device_specs: tuple[dict[str, str], ...]
    """This host's device-spec override: which functions are handed out, on which physnet."""
    story: str

    @property
    def name(self) -> str:
        return self.spec.hostname


def _vfs_of(address: str, vf_product: str, physnet: str, **tags: str) -> dict[str, str]:
    """The Nova idiom for "the VFs of this PF, not the PF": a full PF address narrowed by the
    VF product id (``docs/device-specs.md``)."""
    return {"address": address, "product_id": vf_product, "physical_network": physnet, **tags}


HOSTS: tuple[DemoHost, ...] = (
    DemoHost(
        HostSpec("host-a", pfs=(PfSpec("cx6-ib", vfs=4, numa_node=0),
                                PfSpec("cx6-ib", vfs=4, numa_node=1))),
        (_vfs_of("0000:03:00.0", "101c", IB_PHYSNET), _vfs_of("0000:04:00.0", "101c", IB_PHYSNET)),
        "InfiniBand HPC node: two ConnectX-6 HDR ports, 4 VFs each, one per NUMA node",
    ),
    DemoHost(
        HostSpec("host-b", pfs=(PfSpec("e810", vfs=4, numa_node=0),
                                PfSpec("cx5-eth", vfs=4, numa_node=1))),
        (_vfs_of("0000:03:00.0", "1889", ETH_PHYSNET),
         _vfs_of("0000:04:00.0", "1018", ETH_PHYSNET)),
        "Ethernet node: Intel E810 (NUMA 0) and ConnectX-5 Ethernet (NUMA 1), 4 VFs each",
    ),
    DemoHost(
        HostSpec("host-c", pfs=(PfSpec("vic", vfs=2, numa_node=0),
                                PfSpec("i350", vfs=0, numa_node=0),
                                PfSpec("cx5-ib", vfs=2, numa_node=1))),
        (_vfs_of("0000:03:00.0", "0071", ETH_PHYSNET, profileid=VIC_PROFILE),
         {"address": "0000:04:00.0", "physical_network": ETH_PHYSNET},
         _vfs_of("0000:05:00.0", "1018", IB_PHYSNET)),
        "both fabrics: Cisco VIC (802.1Qbh VM-FEX), a whole Intel I350 for passthrough, "
        "ConnectX-5 InfiniBand",
    ),
)


@dataclass(frozen=True)
class NetworkPlan:
    name: str
    physical_network: str
    segmentation: str
    seg_id: str


NETWORKS: tuple[NetworkPlan, ...] = (
    NetworkPlan("tenant-vlan", ETH_PHYSNET, "vlan", "100"),
    NetworkPlan("hpc-ib", IB_PHYSNET, "pkey", "0x0a01"),
)


@dataclass(frozen=True)
class SubnetPlan:
    network: str
    cidr: str
    options: tuple[str, ...] = ()
    """More ``vfkeeper subnet create`` options."""


SUBNETS: tuple[SubnetPlan, ...] = (
    SubnetPlan("tenant-vlan", "192.0.2.0/24", ("--name", "tenant-v4", "--dns", "192.0.2.53")),
    SubnetPlan("tenant-vlan", "2001:db8:100::/64", ("--name", "tenant-v6")),
    SubnetPlan("hpc-ib", "10.20.0.0/16", ("--name", "hpc-ipoib", "--no-gateway")),
)
"""Every port on these networks gets an address in each (IPv6 static: vfkeeper allocates)."""

GUEST_INSTANCE = "mixed-1"
"""The instance whose guest documents the demo prints: one InfiniBand and one Ethernet port."""


@dataclass(frozen=True)
class PortPlan:
    name: str
    network: str
    vnic_type: str = "direct"


@dataclass(frozen=True)
class InstancePlan:
    name: str
    ports: tuple[PortPlan, ...]
    numa_policy: str = "legacy"
    why: str = ""


def _ib(name: str, count: int) -> tuple[PortPlan, ...]:
    return tuple(PortPlan(f"{name}-ib{i}", "hpc-ib") for i in range(count))


INSTANCES: tuple[InstancePlan, ...] = (
    InstancePlan("hpc-1", _ib("hpc-1", 3), "required",
                 "3 InfiniBand VFs on one NUMA node"),
    InstancePlan("mixed-1", (PortPlan("mixed-1-ib0", "hpc-ib"),
                             PortPlan("mixed-1-eth0", "tenant-vlan")), "legacy",
                 "one port on each fabric: only host-c has both"),
    InstancePlan("web-1", (PortPlan("web-1-eth0", "tenant-vlan"),
                           PortPlan("web-1-eth1", "tenant-vlan", "macvtap")), "legacy",
                 "a VLAN port passed through and one on macvtap"),
    InstancePlan("db-1", (PortPlan("db-1-pf0", "tenant-vlan", "direct-physical"),), "legacy",
                 "a whole PF: direct-physical"),
)

XML_INSTANCE = "mixed-1"
"""The instance whose libvirt device XML the demo prints."""

UNPLACEABLE = InstancePlan("hpc-big", _ib("hpc-big", 5), "required",
                           "5 InfiniBand VFs on one NUMA node")

DELETED_INSTANCE = "hpc-1"
