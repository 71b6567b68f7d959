"""Build a real ``sys/`` tree (files, directories, relative symlinks) for a :class:`HostSpec`.

The layout is the kernel's:

* ``sys/devices/pci0000:00/<root port>/<function>/`` holds a function's attributes; PF k sits
  behind root port ``0000:00:{2 + k // 8:02x}.{k % 8}`` on its own bus (from ``0x03`` on), its
  VFs next to it at routing id ``offset + stride * n`` (spilling onto the following buses);
* ``sys/bus/pci/devices/<addr>`` → the function; ``driver`` → ``bus/pci/drivers/<name>`` (which
  links back); ``iommu_group`` → ``kernel/iommu_groups/N`` (one group per function);
* ``physfn`` / ``virtfnN`` between a VF and its PF; ``net/<if>/`` and ``infiniband/<dev>/``
  under the function, with ``class/net/<if>`` and ``class/infiniband/<dev>`` linking to them;
* mlx5 PFs carry ``sriov/<n>/{node,port,policy}`` for their VFs;
* ``proc/sys/kernel/hostname`` holds the host name.

PFs register their RDMA devices and IPoIB interfaces before VFs (the order a booting host
probes them), so ``mlx5_0`` and ``ib0`` are the first PF's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from vfkeeper.domain.guid import Guid
from vfkeeper.sim import ids, vpd
from vfkeeper.sim.errors import SimSpecError
from vfkeeper.sim.models import NicModel
from vfkeeper.sim.spec import (
    DEFAULT_EXTRA_DEVICES,
    DEFAULT_PKEYS,
    HostSpec,
    PciFunctionSpec,
    PfSpec,
)

FIRST_BUS = 0x03


@dataclass(frozen=True)
class _Pf:
    index: int
    spec: PfSpec
    nic: NicModel
    bridge: str
    address: str
    vf_addresses: tuple[str, ...]


@dataclass(frozen=True)
class _Fn:
    """One function to write: which PF it belongs to, and its index there (-1: the PF)."""

    pf: _Pf
    vf: int
    address: str
    driver: str | None

    @property
    def is_vf(self) -> bool:
        return self.vf >= 0

    @property
    def number(self) -> int:
        """0 for the PF, VF index + 1 for a VF: what MACs and GUIDs are derived from."""
        return self.vf + 1


def _layout(spec: HostSpec) -> list[_Pf]:
    pfs: list[_Pf] = []
    bus = FIRST_BUS
    for k, pf in enumerate(spec.pfs):
        nic = pf.nic()
        last = nic.vf_offset + nic.vf_stride * max(pf.total() - 1, 0)
        vfs = []
        for n in range(pf.vfs):
            rid = nic.vf_offset + nic.vf_stride * n
            vfs.append(f"0000:{bus + (rid >> 8):02x}:{(rid >> 3) & 0x1F:02x}.{rid & 7}")
        bridge = f"0000:00:{2 + k // 8:02x}.{k % 8}"
        pfs.append(_Pf(k, pf, nic, bridge, f"0000:{bus:02x}:00.0", tuple(vfs)))
        bus += (last >> 8) + 1
        if bus > 0xFF:
            raise SimSpecError("pfs", "the PFs and their VFs need more than 256 PCI buses; "
                               "ask for fewer PFs or VFs")
    return pfs


class _Writer:
    def __init__(self, root: str) -> None:
        self.root = root
        self.sys = os.path.join(root, "sys")
        self.devices = f"{self.sys}/devices/pci0000:00"
        self.drivers: set[str] = set()
        self.groups = 0
        self.rdma: dict[str, int] = {}
        self.ipoib = 0

    def file(self, path: str, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, text.encode() + b"\n")
        finally:
            os.close(fd)

    def binary(self, path: str, data: bytes) -> None:
        with open(path, "wb") as f:
            f.write(data)

    def files(self, base: str, values: dict[str, str]) -> None:
        for name, text in values.items():
            self.file(f"{base}/{name}", text)

    def link(self, path: str, target: str) -> None:
        os.symlink(os.path.relpath(target, os.path.dirname(path)), path)

    def skeleton(self, hostname: str) -> None:
        for d in ("bus/pci/devices", "bus/pci/drivers", "kernel/iommu_groups", "class/net",
                  "class/infiniband"):
            os.makedirs(f"{self.sys}/{d}", exist_ok=True)
        os.makedirs(self.devices, exist_ok=True)
        os.makedirs(f"{self.root}/proc/sys/kernel", exist_ok=True)
        self.file(f"{self.root}/proc/sys/kernel/hostname", hostname)

    def function(self, parent: str, address: str, attrs: dict[str, str], driver: str | None,
                 ) -> str:
        path = f"{parent}/{address}"
        os.mkdir(path)
        self.files(path, attrs)
        self.link(f"{self.sys}/bus/pci/devices/{address}", path)
        if driver is not None:
            drv = f"{self.sys}/bus/pci/drivers/{driver}"
            if driver not in self.drivers:
                os.mkdir(drv)
                self.drivers.add(driver)
            self.link(f"{path}/driver", drv)
            self.link(f"{drv}/{address}", path)
        group = f"{self.sys}/kernel/iommu_groups/{self.groups}"
        self.groups += 1
        os.makedirs(f"{group}/devices")
        self.link(f"{path}/iommu_group", group)
        self.link(f"{group}/devices/{address}", path)
        return path

    def rdma_name(self, prefix: str) -> str:
        n = self.rdma.get(prefix, 0)
        self.rdma[prefix] = n + 1
        return f"{prefix}_{n}"


def _pci_attrs(fn: _Fn) -> dict[str, str]:
    nic, spec = fn.pf.nic, fn.pf.spec
    product = nic.vf_product if fn.is_vf else nic.pf_product
    attrs = {
        "class": nic.class_code,
        "vendor": f"0x{nic.vendor_id}",
        "device": f"0x{product}",
        "subsystem_vendor": f"0x{nic.subsystem[0]}",
        "subsystem_device": f"0x{nic.subsystem[1]}",
        "numa_node": str(-1 if spec.numa_node is None else spec.numa_node),
        "uevent": _uevent(fn, product),
    }
    if not fn.is_vf:
        attrs.update(sriov_totalvfs=str(spec.total()), sriov_numvfs=str(spec.vfs),
                     sriov_offset=str(nic.vf_offset), sriov_stride=str(nic.vf_stride),
                     sriov_vf_device=f"{int(nic.vf_product, 16):x}")  # the kernel's %x
    return attrs


def _uevent(fn: _Fn, product: str) -> str:
    nic = fn.pf.nic
    lines = [f"DRIVER={fn.driver}"] if fn.driver else []
    lines += [
        f"PCI_CLASS={int(nic.class_code, 16):X}",
        f"PCI_ID={nic.vendor_id.upper()}:{product.upper()}",
        f"PCI_SUBSYS_ID={nic.subsystem[0].upper()}:{nic.subsystem[1].upper()}",
        f"PCI_SLOT_NAME={fn.address}",
        _modalias(nic, product),
    ]
    return "\n".join(lines)


def _modalias(nic: NicModel, product: str) -> str:
    """``MODALIAS=`` as the kernel's ``pci_uevent`` prints it."""
    cls = int(nic.class_code, 16)
    sub_v, sub_d = nic.subsystem
    return (f"MODALIAS=pci:v{int(nic.vendor_id, 16):08X}d{int(product, 16):08X}"
            f"sv{int(sub_v, 16):08X}sd{int(sub_d, 16):08X}"
            f"bc{cls >> 16:02X}sc{cls >> 8 & 0xFF:02X}i{cls & 0xFF:02x}")


def _netdev_name(w: _Writer, fn: _Fn, port: int) -> str:
    if fn.pf.nic.is_infiniband:
        w.ipoib += 1
        return f"ib{w.ipoib - 1}"
    _, bus, rest = fn.address.split(":")
    slot, func = rest.split(".")
    return f"enp{int(bus, 16)}s{int(slot, 16)}f{func}" + (f"d{port}" if port else "")


def _port_guid(host: int, fn: _Fn, port: int) -> Guid:
    return ids.guid(host, fn.pf.index, fn.number, port + 1)


def _write_netdevs(w: _Writer, fn: _Fn, path: str, host: int) -> None:
    nic, up = fn.pf.nic, fn.pf.spec.link_up
    os.mkdir(f"{path}/net")
    for port in range(nic.ports):
        name = _netdev_name(w, fn, port)
        nd = f"{path}/net/{name}"
        os.mkdir(nd)
        if nic.is_infiniband:
            qpn = 0x48 + fn.number * nic.ports + port
            address, kind = ids.ipoib_hwaddr(qpn, _port_guid(host, fn, port)), "32"
        else:
            address, kind = ids.mac(host, fn.pf.index, fn.number, port), "1"
        w.files(nd, {
            "address": address, "type": kind, "mtu": str(nic.mtu), "dev_port": str(port),
            "operstate": "up" if up else "down", "speed": str(nic.speed_mbps if up else -1),
        })
        w.link(f"{nd}/device", path)
        w.link(f"{w.sys}/class/net/{name}", nd)


def _write_rdma(w: _Writer, fn: _Fn, path: str, host: int, prefix: str) -> None:
    nic, spec = fn.pf.nic, fn.pf.spec
    name = w.rdma_name(prefix)
    ib = f"{path}/infiniband/{name}"
    os.makedirs(f"{ib}/ports")
    w.files(ib, {
        "node_guid": ids.guid(host, fn.pf.index, fn.number, 0).sysfs,
        "sys_image_guid": ids.guid(host, fn.pf.index, 0, 0).sysfs,
        "node_type": "1: CA",
    })
    w.link(f"{ib}/device", path)
    w.link(f"{w.sys}/class/infiniband/{name}", ib)
    table = spec.pkey_table if spec.pkey_table is not None else nic.pkey_table
    for port in range(nic.ports):
        pd = f"{ib}/ports/{port + 1}"
        os.makedirs(f"{pd}/gids")
        os.mkdir(f"{pd}/pkeys")
        if nic.is_infiniband:
            gid = ids.ib_gid(_port_guid(host, fn, port))
            keys, size, layer, lid = spec.pkeys, table, "InfiniBand", fn.pf.index + 1
        else:
            gid = ids.roce_gid(ids.mac(host, fn.pf.index, fn.number, port))
            keys, size, layer, lid = (0xFFFF,), 1, "Ethernet", 0
        up = spec.link_up
        w.files(pd, {
            "state": "4: ACTIVE" if up else "1: DOWN", "link_layer": layer,
            "phys_state": "5: LinkUp" if up else "3: Disabled", "rate": nic.ib_rate,
            "lid": f"0x{lid:x}", "sm_lid": "0x1" if nic.is_infiniband else "0x0",
        })
        w.file(f"{pd}/gids/0", gid)
        for k in range(size):
            w.file(f"{pd}/pkeys/{k}", f"0x{keys[k] if k < len(keys) else 0:04x}")


def _write_admin_guids(w: _Writer, pf_path: str, pf: _Pf, host: int) -> None:
    """mlx5's ``<pf>/sriov/<n>/`` for every VF, as the PF driver shows it (whatever the VF's
    own driver is): ``node``, ``port`` and ``policy`` in InfiniBand mode; in Ethernet mode
    ``node`` among the eswitch files (``mac``, ``vlan``, ``trust`` … print usage text)."""
    os.mkdir(f"{pf_path}/sriov")
    for n in range(pf.spec.vfs):
        d = f"{pf_path}/sriov/{n}"
        os.mkdir(d)
        files = {"node": ids.guid(host, pf.index, n + 1, 0).colon_bytes}
        if pf.nic.is_infiniband:
            files.update(port=ids.guid(host, pf.index, n + 1, 1).colon_bytes, policy="Follow")
        else:
            files.update(mac="usage: write <LLADDR|Random> to set VF Mac Address",
                         trust="usage: write <ON|OFF> to trust|untrust VF")
        w.files(d, files)


def _write_function(w: _Writer, fn: _Fn, host: int) -> str:
    path = w.function(f"{w.devices}/{fn.pf.bridge}", fn.address, _pci_attrs(fn), fn.driver)
    on_net_driver = fn.driver in (fn.pf.nic.pf_driver, fn.pf.nic.vf_driver)
    if on_net_driver:
        _write_netdevs(w, fn, path, host)
        if fn.pf.nic.rdma is not None:
            _write_rdma(w, fn, path, host, fn.pf.nic.rdma)
    return path


def build_tree(spec: HostSpec, root: str | os.PathLike[str]) -> None:
    """Write the host ``spec`` describes under ``root`` (created if absent; ``root/sys`` must
    not exist yet)."""
    spec.validate()
    root = os.fspath(root)
    if os.path.exists(os.path.join(root, "sys")):
        raise SimSpecError(root, "already holds a sys/ tree; choose an empty directory")
    w = _Writer(root)
    w.skeleton(spec.hostname)
    host = ids.host_hash(spec.hostname)
    pfs = _layout(spec)
    for pf in pfs:
        os.mkdir(f"{w.devices}/{pf.bridge}")
        path = _write_function(w, _Fn(pf, -1, pf.address, pf.nic.pf_driver), host)
        if pf.nic.vpd_part is not None:
            w.binary(f"{path}/vpd", vpd.build(pf.nic.description, pf.nic.vpd_part,
                                              ids.serial(pf.nic.vendor_id, host, pf.index)))
        if pf.nic.vf_admin_guids and pf.spec.vfs:
            _write_admin_guids(w, path, pf, host)
    for pf in pfs:
        pf_path = f"{w.devices}/{pf.bridge}/{pf.address}"
        for n, address in enumerate(pf.vf_addresses):
            path = _write_function(w, _Fn(pf, n, address, pf.spec.vf_driver(n)), host)
            w.link(f"{path}/physfn", pf_path)
            w.link(f"{pf_path}/virtfn{n}", path)
    for extra in spec.extra_devices:
        w.function(w.devices, extra.address, {
            "class": extra.class_code, "vendor": f"0x{extra.vendor_id}",
            "device": f"0x{extra.product_id}", "subsystem_vendor": f"0x{extra.vendor_id}",
            "subsystem_device": "0x0000", "numa_node": "0",
        }, extra.driver)


def simulate_host(
    root: str | os.PathLike[str],
    model: str,
    pfs: int,
    vfs: int,
    *,
    hostname: str = "sim-host",
    vfio_vfs: tuple[int, ...] = (),
    totalvfs: int | None = None,
    numa_nodes: tuple[int | None, ...] = (0, 1),
    pkeys: tuple[int, ...] = DEFAULT_PKEYS,
    pkey_table: int | None = None,
    extra_devices: tuple[PciFunctionSpec, ...] = DEFAULT_EXTRA_DEVICES,
) -> HostSpec:
    """Build a host of ``pfs`` PFs of one ``model`` with ``vfs`` VFs each; return its spec.

    PF k sits on NUMA node ``numa_nodes[k % len(numa_nodes)]``; the other options go to every
    :class:`PfSpec` (or to :class:`HostSpec` for ``hostname`` and ``extra_devices``).
    """
    pf_specs = tuple(
        PfSpec(model=model, vfs=vfs, totalvfs=totalvfs, vfio_vfs=vfio_vfs,
               numa_node=numa_nodes[k % len(numa_nodes)], pkeys=pkeys, pkey_table=pkey_table)
        for k in range(pfs)
    )
    spec = HostSpec(hostname=hostname, pfs=pf_specs, extra_devices=extra_devices)
    build_tree(spec, root)
    return spec
