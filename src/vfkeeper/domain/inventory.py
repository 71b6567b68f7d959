"""The host inventory: what discovery found on one host, as immutable values.

This is the document an agent reports (``PUT /v1/hosts/{name}/inventory``) and that
``vfkeeper discover --json`` prints. Its JSON form is versioned by ``SCHEMA_VERSION`` and pinned
by ``tests/unit/test_inventory_schema.py``; ``docs/inventory-schema.md`` documents every field.

Conventions (the ones operators and Nova already use):

* PCI addresses are ``dddd:bb:ss.f`` in lowercase hex.
* ``vendor_id`` / ``product_id`` are 4 lowercase hex digits without ``0x`` (as Nova writes them).
* GUIDs are ``0x`` + 16 lowercase hex digits (as OpenSM, ibstat and partitions.conf write them).
* PKeys are ``0x%04x`` (the full-membership bit included, as the port's table holds it).
* A field the host did not show, or showed in a form we could not read, is ``None``; in the
  second case the inventory carries a :class:`ScanWarning` naming the path.
* Numbers are JSON integers (``true`` or ``"2"`` is no number here).

The rules beyond the types (address forms, ranges, a VF's PF present, ...) are
:mod:`vfkeeper.domain.inventory_rules`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool, StrictInt

SCHEMA_VERSION = 2
"""2 added ``Device.sriov_vf_device`` and ``Device.vpd_serial``; a version-1 document reads as
version 2 with both null (see ``docs/inventory-schema.md``)."""

DevType = Literal["type-PF", "type-VF", "type-PCI"]
LinkType = Literal["ethernet", "infiniband"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Netdev(_Frozen):
    """A kernel network interface of a PCI function (``/sys/bus/pci/devices/X/net/<name>``)."""

    name: str
    mac: str | None = None
    """Ethernet MAC, or the 20-byte IPoIB hardware address for InfiniBand interfaces."""
    mtu: StrictInt | None = None
    operstate: str | None = None
    speed_mbps: StrictInt | None = None
    """``None`` when the link is down or the driver reports no speed (sysfs shows -1 or EINVAL)."""
    link_type: LinkType | None = None
    """From the netdev's ``type``: 1 (ARPHRD_ETHER) ethernet, 32 (ARPHRD_INFINIBAND) infiniband."""
    dev_port: StrictInt | None = None
    """Which port of the function this netdev is (mlx4 carries two ports on one function)."""


class IbPort(_Frozen):
    """One port of an InfiniBand/RDMA device (``infiniband/<dev>/ports/<n>``)."""

    number: StrictInt
    state: str | None = None
    """As the kernel prints it, e.g. ``4: ACTIVE``."""
    phys_state: str | None = None
    link_layer: str | None = None
    """``InfiniBand`` or ``Ethernet`` (RoCE)."""
    rate: str | None = None
    port_guid: str | None = None
    """GID index 0's interface id, which is the port GUID on InfiniBand ports."""
    lid: StrictInt | None = None
    pkeys: tuple[str, ...] = ()
    """The non-zero entries of the port's PKey table, in table order."""


class IbDevice(_Frozen):
    """The RDMA device of a PCI function (``mlx5_0``)."""

    name: str
    node_guid: str | None = None
    sys_image_guid: str | None = None
    ports: tuple[IbPort, ...] = ()


class VfAdminGuids(_Frozen):
    """A VF's administrative InfiniBand GUIDs, as its PF's driver exposes them
    (``<pf>/sriov/<vf_index>/{node,port,policy}`` on mlx5)."""

    node_guid: str | None = None
    port_guid: str | None = None
    policy: str | None = None


class Device(_Frozen):
    """One PCI function."""

    address: str
    vendor_id: str | None = None
    product_id: str | None = None
    subsystem_vendor_id: str | None = None
    subsystem_device_id: str | None = None
    class_code: str | None = None
    """``0x`` + 6 hex digits, e.g. ``0x020000`` (Ethernet) or ``0x020700`` (InfiniBand)."""
    dev_type: DevType
    parent_addr: str | None = None
    """For a VF, its PF's address."""
    vf_index: StrictInt | None = None
    """For a VF, N in the PF's ``virtfnN`` link that points at it."""
    sriov_totalvfs: StrictInt | None = None
    sriov_numvfs: StrictInt | None = None
    driver: str | None = None
    """The bound driver's name; ``None`` when unbound. ``vfio-pci`` is a driver too."""
    bus_info: str | None = None
    """What ``ethtool -i`` shows as bus-info for the function's netdevs: the PCI address for
    PCI NICs, ``virtioN`` for virtio-net. ``None`` when the function has no netdev (unbound,
    or bound to ``vfio-pci``)."""
    numa_node: StrictInt | None = None
    iommu_group: StrictInt | None = None
    netdevs: tuple[Netdev, ...] = ()
    link_type: LinkType | None = None
    """From the first netdev's ``type``; without a netdev, from the InfiniBand device's first
    port's ``link_layer``; without either (a VF bound to ``vfio-pci``), from the PCI class
    (0x0207 InfiniBand, 0x0200 Ethernet). ``None`` when none of these says."""
    infiniband: IbDevice | None = None
    vf_admin_guids: VfAdminGuids | None = None
    """For a VF whose PF's driver exposes them (mlx5: ``<pf>/sriov/<vf_index>/``)."""
    is_network: StrictBool = True
    """False for non-network functions, which discovery lists only when asked for all."""
    sriov_vf_device: str | None = None
    """A PF's ``sriov_vf_device``: the product id its VFs show (4 hex digits, like
    ``product_id``). Schema version 2."""
    vpd_serial: str | None = None
    """A PF's card serial number: the ``SN`` keyword of the read-only section of its PCI VPD
    (what libvirt reports and Nova uses as ``card_serial_number``). Schema version 2."""


class ScanWarning(_Frozen):
    """Something discovery could not read; the field it fed is ``None``."""

    path: str
    message: str


class HostInventory(_Frozen):
    """Everything discovery found on one host, at one moment."""

    schema_version: StrictInt = SCHEMA_VERSION
    hostname: str
    devices: tuple[Device, ...] = ()
    warnings: tuple[ScanWarning, ...] = ()

    def by_address(self) -> dict[str, Device]:
        return {d.address: d for d in self.devices}

    def pf_by_netdev(self, name: str) -> Device | None:
        """The PF whose network interface is ``name`` (what ``ip link`` calls it)."""
        for device in self.devices:
            if device.dev_type == "type-PF" and any(n.name == name for n in device.netdevs):
                return device
        return None

    def vfs_of(self, pf_address: str) -> list[Device]:
        """The VFs of one PF, in VF index order."""
        vfs = [d for d in self.devices if d.parent_addr == pf_address]
        return sorted(vfs, key=lambda d: (d.vf_index is None, d.vf_index or 0, d.address))
