"""The one choke point through which vfkeeper reads a host's ``/sys``.

``SysfsReader(root)`` reads ``<root>/sys/...``: ``"/"`` on a real host, a directory built by
:mod:`vfkeeper.sim` in tests and demos. No other module opens sysfs paths. The reader caches
nothing and keeps no state, so each scan sees the host as it is; callers take care not to read
one path twice.

Every failure is a typed :class:`~vfkeeper.agent.errors.SysfsReadError` carrying the full path:
``SysfsMissingError`` when the path (or the target of a symlink on it) does not exist,
``SysfsUnreadableError`` for everything else. ``_read_bytes``, ``_listdir`` and ``_readlink``
are the only calls that touch the file system; tests override them to inject faults a root
user cannot otherwise provoke (``EACCES``) or to watch which paths are read.
"""

from __future__ import annotations

import errno as errno_mod
import os

from vfkeeper.agent.errors import (
    SysfsMissingError,
    SysfsReadError,
    SysfsRootError,
    SysfsUnreadableError,
)

# ENODEV/ENXIO: kernfs answers these for attributes of a device that is being removed.
_MISSING_ERRNOS = frozenset({errno_mod.ENOENT, errno_mod.ENODEV, errno_mod.ENXIO})
_MAX_ATTR = 65536


def _error(path: str, exc: OSError) -> SysfsReadError:
    reason = exc.strerror or type(exc).__name__
    if exc.errno in _MISSING_ERRNOS:
        return SysfsMissingError(path, reason, exc.errno)
    return SysfsUnreadableError(path, reason, exc.errno)


class SysfsReader:
    """Reads ``<root>/sys``. Paths given to its methods are full paths under :attr:`sys_dir`."""

    def __init__(self, root: str | os.PathLike[str] = "/") -> None:
        self.root = os.fspath(root)
        self.sys_dir = os.path.join(self.root, "sys")
        self.pci_devices_dir = f"{self.sys_dir}/bus/pci/devices"

    def __repr__(self) -> str:
        return f"SysfsReader({self.root!r})"

    # -- what discovery calls -----------------------------------------------------------------

    def pci_addresses(self) -> list[str]:
        """Every PCI function the host lists, sorted. Raises :class:`SysfsRootError` when the
        root has no ``sys/bus/pci/devices``: an empty inventory would hide a wrong root."""
        try:
            names = self._listdir(self.pci_devices_dir)
        except OSError as exc:
            raise SysfsRootError(
                self.root, self.pci_devices_dir, exc.strerror or type(exc).__name__
            ) from exc
        return sorted(names)

    def device_dir(self, address: str) -> str:
        """The function's canonical directory (``sys/devices/pci…/<address>``), found with one
        ``readlink`` of its bus link. Reading through the canonical path spares the kernel a
        symlink walk on every later read of the function's attributes."""
        link = f"{self.pci_devices_dir}/{address}"
        try:
            target = self._readlink(link)
        except OSError as exc:
            if exc.errno == errno_mod.EINVAL:
                return link  # a directory, not a link: some fake trees are built that way
            raise _error(link, exc) from exc
        return os.path.normpath(os.path.join(self.pci_devices_dir, target))

    def read(self, path: str) -> str:
        """The attribute's text without the trailing newline."""
        try:
            data = self._read_bytes(path)
        except OSError as exc:
            raise _error(path, exc) from exc
        try:
            return data.decode().strip()
        except UnicodeDecodeError as exc:
            raise SysfsUnreadableError(path, f"not text ({exc.reason})") from exc

    def listdir(self, path: str) -> list[str]:
        try:
            return self._listdir(path)
        except OSError as exc:
            raise _error(path, exc) from exc

    def link_name(self, path: str) -> str:
        """The last component of a symlink's target (``driver`` → ``mlx5_core``). The target
        need not exist: the kernel names drivers, groups and VFs by that component."""
        try:
            target = self._readlink(path)
        except OSError as exc:
            if exc.errno == errno_mod.EINVAL:
                raise SysfsUnreadableError(path, "not a symlink", exc.errno) from exc
            raise _error(path, exc) from exc
        return target.rstrip("/").rsplit("/", 1)[-1]

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def is_dangling_link(self, path: str) -> bool:
        return os.path.islink(path) and not os.path.exists(path)

    def hostname(self) -> str | None:
        """``<root>/proc/sys/kernel/hostname`` (simulated trees write one); ``None`` when absent."""
        try:
            return self.read(os.path.join(self.root, "proc/sys/kernel/hostname")) or None
        except SysfsReadError:
            return None

    # -- the only calls that touch the file system --------------------------------------------

    def _read_bytes(self, path: str) -> bytes:
        fd = os.open(path, os.O_RDONLY)
        try:
            return os.read(fd, _MAX_ATTR)
        finally:
            os.close(fd)

    def _listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def _readlink(self, path: str) -> str:
        return os.readlink(path)
