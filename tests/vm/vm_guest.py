"""Helpers for tests that run inside the real-kernel guest: find the igb PF, make VFs.

These touch the guest's real sysfs (the kernel's, not a fake tree), which is the point of the
tier. ``sys_root`` is a parameter so the helpers also work on a copy or a subtree.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

SYS = Path("/sys")
PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


def bound_devices(driver: str, sys_root: Path = SYS) -> list[str]:
    """PCI addresses bound to ``driver``, sorted (``/sys/bus/pci/drivers/<driver>/<address>``)."""
    drv = sys_root / "bus/pci/drivers" / driver
    if not drv.is_dir():
        return []
    return sorted(p.name for p in drv.iterdir() if PCI_ADDRESS.match(p.name))


def pci_dir(address: str, sys_root: Path = SYS) -> Path:
    return sys_root / "bus/pci/devices" / address


def sriov_pfs(driver: str, sys_root: Path = SYS) -> list[str]:
    """Devices bound to ``driver`` that can have VFs (they have ``sriov_totalvfs``)."""
    return [
        a for a in bound_devices(driver, sys_root)
        if (pci_dir(a, sys_root) / "sriov_totalvfs").exists()
    ]  # fmt: skip


def read_attr(address: str, name: str, sys_root: Path = SYS) -> str:
    return (pci_dir(address, sys_root) / name).read_text().strip()


def vf_addresses(pf: str, sys_root: Path = SYS) -> list[str]:
    """The PF's VFs in VF-index order, from its ``virtfnN`` links."""
    links = sorted((int(p.name[len("virtfn") :]), p) for p in pci_dir(pf, sys_root).glob("virtfn*"))
    return [p.resolve().name for _, p in links]


def netdevs(address: str, sys_root: Path = SYS) -> list[str]:
    net = pci_dir(address, sys_root) / "net"
    return sorted(p.name for p in net.iterdir()) if net.is_dir() else []


def driver_of(address: str, sys_root: Path = SYS) -> str | None:
    link = pci_dir(address, sys_root) / "driver"
    return link.resolve().name if link.exists() else None


def write_numvfs(pf: str, count: int, sys_root: Path = SYS) -> None:
    """One write of ``sriov_numvfs``; the kernel's refusal (EBUSY, EINVAL, ...) is raised as is."""
    with open(pci_dir(pf, sys_root) / "sriov_numvfs", "w") as f:
        f.write(str(count))


def wait_until(check: Callable[[], bool], what: str, deadline_s: float = 60.0) -> None:
    """Poll ``check`` until it holds; a generous deadline only turns a hang into a clear error."""
    end = time.monotonic() + deadline_s
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what} after {deadline_s:.0f} s")
        time.sleep(0.1)


def set_numvfs(
    pf: str,
    count: int,
    *,
    fresh: bool = True,
    driver: str | None = "igbvf",
    sys_root: Path = SYS,
) -> list[str]:
    """Make the PF have exactly ``count`` VFs (through 0, as the kernel requires) and wait until
    each is bound to ``driver`` with a netdev (``driver=None``: do not wait for binding).
    ``fresh=False`` keeps the VFs there are when their count is already right. Returns the VF
    addresses in VF-index order.

    Each 0 -> n -> 0 cycle costs seconds in the guest: the kernel itself sleeps 100 ms after
    enabling VFs and 1 s after disabling them (``drivers/pci/iov.c``), and igb adds its own."""
    if fresh or int(read_attr(pf, "sriov_numvfs", sys_root)) != count:
        write_numvfs(pf, 0, sys_root)
        if count:
            write_numvfs(pf, count, sys_root)
    vfs = vf_addresses(pf, sys_root)
    if driver is not None:
        wait_until(
            lambda: all(driver_of(v, sys_root) == driver and netdevs(v, sys_root) for v in vfs),
            f"{count} VFs of {pf} bound to {driver} with netdevs",
        )
    return vfs
