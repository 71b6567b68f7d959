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
from vfkeeper.agent.scan import Attr, Scan
from vfkeeper.domain.inventory import LinkType, Netdev

ARPHRD_TYPES: dict[int, LinkType] = {1: "ethernet", 32: "infiniband"}
"""``net/<if>/type`` values (``include/uapi/linux/if_arp.h``) and the link types they mean."""

_ATTRS = (
    Attr("type", parse.decimal, "link_type"),
    Attr("address", parse.hwaddr, "mac"),
    Attr("mtu", parse.decimal, "mtu"),
    Attr("operstate", None, "operstate"),
    Attr("dev_port", parse.decimal, "dev_port", optional=True),
)
_SPEED = Attr("speed", parse.speed_mbps, "speed_mbps", optional=True)
_NAMES = [a.name for a in (*_ATTRS, _SPEED)]


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
    what = f"netdev {name} "
    *raws, speed = scan.reader.read_many(path, _NAMES)
    kind, mac, mtu, operstate, dev_port = scan.values(path, _ATTRS, raws, what)
    return Netdev(
        name=name,
        mac=mac,
        mtu=mtu,
        operstate=operstate,
        speed_mbps=_speed(scan, f"{path}/speed", speed, what),
        link_type=None if kind is None else ARPHRD_TYPES.get(kind),
        dev_port=dev_port,
    )


def _speed(scan: Scan, path: str, raw: str | SysfsReadError, what: str) -> int | None:
    if isinstance(raw, SysfsMissingError):
        return None  # virtual and older drivers have no speed attribute
    if isinstance(raw, SysfsReadError) and raw.errno == errno.EINVAL:
        return None  # the interface is administratively down
    value: int | None = scan.value(path, raw, _SPEED, what)
    return value


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
