"""The declarative description of a simulated host."""

from __future__ import annotations

from dataclasses import dataclass, field

from vfkeeper.sim.errors import SimSpecError, UnknownModelError
from vfkeeper.sim.models import NIC_MODELS, NicModel

DEFAULT_PKEYS: tuple[int, ...] = (0xFFFF, 0x8001, 0x8002)
"""Non-zero PKey entries of a simulated InfiniBand port, in table order: the default partition
(full membership) and two tenant partitions an SM programmed."""

MAX_PFS = 200


@dataclass(frozen=True)
class PfSpec:
    """One physical function of ``model`` with ``vfs`` VFs enabled (``sriov_numvfs``)."""

    model: str
    vfs: int = 0
    totalvfs: int | None = None
    """``sriov_totalvfs``; the model's when ``None``."""
    vfio_vfs: tuple[int, ...] = ()
    """VF indexes bound to ``vfio-pci`` (no netdev, no RDMA device)."""
    unbound_vfs: tuple[int, ...] = ()
    """VF indexes bound to no driver."""
    numa_node: int | None = 0
    """``None`` writes ``-1`` (no NUMA affinity)."""
    pkeys: tuple[int, ...] = DEFAULT_PKEYS
    """Non-zero entries of each InfiniBand port's PKey table (RoCE ports show only 0xffff)."""
    pkey_table: int | None = None
    """Entries of each InfiniBand port's PKey table; the model's when ``None``."""
    link_up: bool = True

    def nic(self) -> NicModel:
        try:
            return NIC_MODELS[self.model]
        except KeyError:
            raise UnknownModelError(self.model, NIC_MODELS) from None

    def total(self) -> int:
        return self.nic().totalvfs if self.totalvfs is None else self.totalvfs

    def vf_driver(self, index: int) -> str | None:
        if index in self.vfio_vfs:
            return "vfio-pci"
        if index in self.unbound_vfs:
            return None
        return self.nic().vf_driver

    def validate(self, where: str) -> None:
        self.nic()
        if not 0 <= self.vfs <= self.total():
            raise SimSpecError(where, f"{self.vfs} VFs asked but sriov_totalvfs is "
                               f"{self.total()}; ask for at most {self.total()}")
        for index in (*self.vfio_vfs, *self.unbound_vfs):
            if not 0 <= index < self.vfs:
                raise SimSpecError(where, f"VF index {index} does not exist: the PF has "
                                   f"{self.vfs} VFs (0..{self.vfs - 1})")
        table = self.pkey_table if self.pkey_table is not None else self.nic().pkey_table
        if len(self.pkeys) > table or any(not 0 < k <= 0xFFFF for k in self.pkeys):
            raise SimSpecError(where, f"pkeys must be at most {table} values in 0x0001-0xffff")


@dataclass(frozen=True)
class PciFunctionSpec:
    """A non-network PCI function (listed only by ``discover --all``)."""

    address: str
    class_code: str
    vendor_id: str
    product_id: str
    driver: str | None
    description: str


DEFAULT_EXTRA_DEVICES: tuple[PciFunctionSpec, ...] = (
    PciFunctionSpec("0000:00:00.0", "0x060000", "8086", "09a2", None, "host bridge"),
    PciFunctionSpec("0000:00:17.0", "0x010601", "8086", "a182", "ahci", "SATA controller"),
    PciFunctionSpec("0000:00:1d.0", "0x010802", "144d", "a80a", "nvme", "NVMe SSD"),
)


@dataclass(frozen=True)
class HostSpec:
    """A host: its name (which seeds every MAC and GUID), its PFs and other PCI functions."""

    hostname: str = "sim-host"
    pfs: tuple[PfSpec, ...] = ()
    extra_devices: tuple[PciFunctionSpec, ...] = field(default=DEFAULT_EXTRA_DEVICES)

    def validate(self) -> None:
        if not self.hostname or "/" in self.hostname:
            raise SimSpecError("hostname", f"{self.hostname!r} is not a host name")
        if len(self.pfs) > MAX_PFS:
            raise SimSpecError("pfs", f"{len(self.pfs)} PFs; the simulator lays out at most "
                               f"{MAX_PFS}")
        for i, pf in enumerate(self.pfs):
            pf.validate(f"PF {i} ({pf.model})")
