"""The kernel network interfaces of a PCI function (kernel
``Documentation/ABI/testing/sysfs-class-net``).

A PCI NIC's interfaces sit in ``<function>/net/<if>``; a virtio-net function's in
``<function>/virtioN/net/<if>``. ``speed`` reads ``-1`` when the carrier is down and fails
with ``EINVAL`` when the interface is down: both mean "no speed", not an error.
"""

from __future__ import annotations

import errno

from vfkeeper.agent import parse
from vfkeeper.agent.errors import SysfsMissingError, SysfsReadError
from vfkeeper.agent.scan import Scan
from vfkeeper.domain.inventory import LinkType, Netdev

ARPHRD_TYPES: dict[int, LinkType] = {1: "ethernet", 32: "infiniband"}
"""``net/<if>/type`` values (``include/uapi/linux/if_arp.h``) and the link types they mean."""


def netdev_dirs(scan: Scan, dev_dir: str, entries: set[str]) -> list[tuple[str, str]]:
    """``(path, name)`` of each interface of the function whose directory lists ``entries``."""
    parents = [(f"{dev_dir}/net", False)] if "net" in entries else []
    parents += [(f"{dev_dir}/{e}/net", True) for e in sorted(entries) if e.startswith("virtio")]
    found: list[tuple[str, str]] = []
    for parent, optional in parents:
        names = scan.listdir(parent, "netdevs", optional=optional)
        found += [(f"{parent}/{name}", name) for name in sorted(names or [])]
    return found


def read_netdev(scan: Scan, path: str, name: str) -> Netdev:
    what = f"netdev {name}"
    kind = scan.parsed(f"{path}/type", parse.decimal, f"{what} link_type")
    return Netdev(
        name=name,
        mac=scan.parsed(f"{path}/address", parse.hwaddr, f"{what} mac"),
        mtu=scan.parsed(f"{path}/mtu", parse.decimal, f"{what} mtu"),
        operstate=scan.text(f"{path}/operstate", f"{what} operstate"),
        speed_mbps=_speed(scan, f"{path}/speed", what),
        link_type=None if kind is None else ARPHRD_TYPES.get(kind),
        dev_port=scan.parsed(f"{path}/dev_port", parse.decimal, f"{what} dev_port", optional=True),
    )


def _speed(scan: Scan, path: str, what: str) -> int | None:
    try:
        raw = scan.reader.read(path)
    except SysfsMissingError:
        return None  # virtual and older drivers have no speed attribute
    except SysfsReadError as exc:
        if exc.errno == errno.EINVAL:
            return None  # the interface is administratively down
        scan.failed(exc, f"{what} speed_mbps")
        return None
    return scan.parse(path, raw, parse.speed_mbps, f"{what} speed_mbps")


def read_netdevs(scan: Scan, dev_dir: str, entries: set[str]) -> tuple[Netdev, ...]:
    """All interfaces of the function, by ``dev_port`` then name (port 1 of an mlx4 first)."""
    netdevs = [read_netdev(scan, path, name) for path, name in netdev_dirs(scan, dev_dir, entries)]
    netdevs.sort(key=lambda n: (n.dev_port is None, n.dev_port or 0, n.name))
    return tuple(netdevs)


def bus_info(address: str, entries: set[str]) -> str:
    """What ``ethtool -i`` shows as bus-info for the function's interfaces: the PCI address,
    or the virtio device's name (``virtio2``) for virtio-net, whose driver reports that."""
    if "net" in entries:
        return address
    return min((e for e in entries if e.startswith("virtio")), default=address)
