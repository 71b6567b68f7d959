"""NIC models the simulator builds, shaped on real hardware.

Ids are the PCI ids the real parts show (``lspci -nn``); drivers are the upstream drivers that
bind them. The numbers a card's firmware or BIOS decides (``sriov_totalvfs``, the VF routing
offset and stride) are typical values, not promises. ConnectX-3 shows PCI class 0x0280
("Network controller") whatever its ports run; ConnectX-4 and later show 0x0207 in InfiniBand
mode and 0x0200 in Ethernet mode, and their VFs show the same class as their PF.

PKey tables: a real mlx5 InfiniBand port shows a table of 128 entries (``pkeys/0`` …
``pkeys/127``), nearly all ``0x0000``; mlx4 in SR-IOV mode shows 127 (it reserves the last
entry). Discovery reads every entry (one file each), so the table size drives its cost; the
models use the real sizes and ``docs/performance.md`` reports what that costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Link = Literal["ethernet", "infiniband"]


@dataclass(frozen=True)
class NicModel:
    name: str
    description: str
    vendor_id: str
    pf_product: str
    vf_product: str
    pf_driver: str
    vf_driver: str
    class_code: str
    subsystem: tuple[str, str]
    link: Link
    totalvfs: int
    vf_offset: int = 1
    vf_stride: int = 1
    ports: int = 1
    """Ports (netdevs) one PCI function carries: 2 on ConnectX-3, 1 elsewhere."""
    speed_mbps: int = 100_000
    mtu: int = 1500
    rdma: str | None = None
    """Prefix of the RDMA device names the driver registers (``mlx5`` → ``mlx5_0``)."""
    ib_rate: str = "100 Gb/sec (4X EDR)"
    pkey_table: int = 128
    vf_admin_guids: bool = False
    """mlx5 exposes ``<pf>/sriov/<vf>/{node,port,policy}``."""
    vpd_part: str | None = None
    """The part number in the card's PCI VPD; ``None``: the PF shows no ``vpd`` file. Its
    serial number is derived from the host name and the PF's index (:func:`ids.serial`)."""

    @property
    def is_infiniband(self) -> bool:
        return self.link == "infiniband"


def _mlx5(
    name: str, desc: str, *, pf: str, vf: str, link: Link, rate: str, speed: int
) -> NicModel:
    return NicModel(
        name=name, description=desc, vendor_id="15b3", pf_product=pf, vf_product=vf,
        pf_driver="mlx5_core", vf_driver="mlx5_core",
        class_code="0x020700" if link == "infiniband" else "0x020000",
        subsystem=("15b3", "0003"), link=link, totalvfs=127, rdma="mlx5", ib_rate=rate,
        speed_mbps=speed, mtu=4092 if link == "infiniband" else 1500, vf_admin_guids=True,
        vpd_part=f"MCX{pf}A-ECAT",
    )


def _mlx4(name: str, desc: str, link: Link) -> NicModel:
    return NicModel(
        name=name, description=desc, vendor_id="15b3", pf_product="1003", vf_product="1004",
        pf_driver="mlx4_core", vf_driver="mlx4_core", class_code="0x028000",
        subsystem=("15b3", "0050"), link=link, totalvfs=126, ports=2,
        speed_mbps=56_000 if link == "infiniband" else 40_000,
        mtu=2044 if link == "infiniband" else 1500, rdma="mlx4",
        ib_rate="56 Gb/sec (4X FDR)" if link == "infiniband" else "40 Gb/sec (4X QDR)",
        pkey_table=127, vpd_part="MCX354A-FCBT",
    )


_MODELS = (
    _mlx5("cx4-ib", "ConnectX-4 (MT27700), InfiniBand EDR", pf="1013", vf="1014",
          link="infiniband", rate="100 Gb/sec (4X EDR)", speed=100_000),
    _mlx5("cx4-eth", "ConnectX-4 (MT27700), Ethernet 100G", pf="1013", vf="1014",
          link="ethernet", rate="100 Gb/sec (4X EDR)", speed=100_000),
    _mlx5("cx5-ib", "ConnectX-5 (MT27800), InfiniBand EDR", pf="1017", vf="1018",
          link="infiniband", rate="100 Gb/sec (4X EDR)", speed=100_000),
    _mlx5("cx5-eth", "ConnectX-5 (MT27800), Ethernet 100G", pf="1017", vf="1018",
          link="ethernet", rate="100 Gb/sec (4X EDR)", speed=100_000),
    _mlx5("cx6-ib", "ConnectX-6 (MT28908), InfiniBand HDR", pf="101b", vf="101c",
          link="infiniband", rate="200 Gb/sec (4X HDR)", speed=200_000),
    _mlx5("cx6-eth", "ConnectX-6 (MT28908), Ethernet 200G", pf="101b", vf="101c",
          link="ethernet", rate="200 Gb/sec (4X HDR)", speed=200_000),
    _mlx4("cx3-eth", "ConnectX-3 (MT27500), two Ethernet ports on one function", "ethernet"),
    _mlx4("cx3-ib", "ConnectX-3 (MT27500), two InfiniBand FDR ports on one function",
          "infiniband"),
    NicModel(
        name="e810", description="Intel E810-C (ice; VFs on iavf)", vendor_id="8086",
        pf_product="159b", vf_product="1889", pf_driver="ice", vf_driver="iavf",
        class_code="0x020000", subsystem=("8086", "0001"), link="ethernet", totalvfs=128,
        vf_offset=8, speed_mbps=100_000, vpd_part="K91258-010",
    ),
    NicModel(
        name="x710", description="Intel X710 (i40e; VFs on iavf)", vendor_id="8086",
        pf_product="1572", vf_product="154c", pf_driver="i40e", vf_driver="iavf",
        class_code="0x020000", subsystem=("8086", "0000"), link="ethernet", totalvfs=64,
        vf_offset=16, speed_mbps=10_000, vpd_part="H58244-001",
    ),
    NicModel(
        name="i350", description="Intel I350 (igb; VFs on igbvf)", vendor_id="8086",
        pf_product="1521", vf_product="1520", pf_driver="igb", vf_driver="igbvf",
        class_code="0x020000", subsystem=("8086", "0001"), link="ethernet", totalvfs=7,
        vf_offset=0x80, vf_stride=4, speed_mbps=1_000, vpd_part="G13158-000",
    ),
    NicModel(
        name="igb-82576", description="Intel 82576 (igb; VFs on igbvf), the NIC QEMU emulates",
        vendor_id="8086", pf_product="10c9", vf_product="10ca", pf_driver="igb",
        vf_driver="igbvf", class_code="0x020000", subsystem=("8086", "0000"), link="ethernet",
        totalvfs=7, vf_offset=0x80, vf_stride=2, speed_mbps=1_000,
    ),
    NicModel(
        name="vic", description="Cisco UCS VIC (enic; VFs are enic dynamic vNICs)",
        vendor_id="1137", pf_product="0043", vf_product="0071", pf_driver="enic",
        vf_driver="enic", class_code="0x020000", subsystem=("1137", "012c"), link="ethernet",
        totalvfs=64, speed_mbps=40_000,
    ),
)

NIC_MODELS: dict[str, NicModel] = {m.name: m for m in _MODELS}
"""Every model by name. ``cx3`` is ``cx3-eth``."""
NIC_MODELS["cx3"] = NIC_MODELS["cx3-eth"]
