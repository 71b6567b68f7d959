"""The one choke point through which vfkeeper reads a host's ``/sys``.

``SysfsReader(root)`` reads ``<root>/sys/...``: ``"/"`` on a real host, a directory built by
:mod:`vfkeeper.sim` in tests and demos. No other module opens sysfs paths. The reader caches
nothing and keeps no state, so each scan sees the host as it is; callers take care not to read
one path twice.

Reads are cheap because sysfs files are tiny: one ``open`` + one ``read`` of at most a page (the
kernel formats a text attribute into one page) + ``close``, no buffered file object.
:meth:`SysfsReader.read_many` reads several attributes of one directory through an open
descriptor of that directory (``openat``), so the kernel walks the long path once, not once per
attribute; a PKey table's 128 entries are read that way.

Every failure is a typed :class:`~vfkeeper.agent.errors.SysfsReadError` carrying the full path:
``SysfsMissingError`` when the path (or the target of a symlink on it) does not exist,
``SysfsUnreadableError`` for everything else. ``_read_files``, ``_read_binary``, ``_listdir``
and ``_readlink`` are the only calls that touch the file system; tests override them to inject
faults a root user cannot otherwise provoke (``EACCES``) or to watch which paths are read.
"""

from __future__ import annotations

import errno as errno_mod
import os
from collections.abc import Sequence

from vfkeeper.agent.errors import (
    SysfsMissingError,
    SysfsReadError,
    SysfsRootError,
    SysfsUnreadableError,
)

# ENODEV/ENXIO: kernfs answers these for attributes of a device that is being removed.
_MISSING_ERRNOS = frozenset({errno_mod.ENOENT, errno_mod.ENODEV, errno_mod.ENXIO})
_PAGE = os.sysconf("SC_PAGE_SIZE")
"""A sysfs text attribute is at most one page: the kernel's ``show()`` fills one page."""
_FLAGS = os.O_RDONLY | os.O_CLOEXEC
_DIR_FLAGS = _FLAGS | os.O_DIRECTORY
_MIN_DIR_BATCH = 8
"""From this many names on, :meth:`SysfsReader._read_files` opens the directory once and the
files relative to it (a PKey table). Measured on tmpfs, a relative open saves ~0.7 µs of path
walk and opening the directory costs ~3 µs, so the 2-6 attributes of a device, netdev or port
directory are read by full path."""
VPD_MAX = 0x8000
"""PCI VPD is addressed with 15 bits: at most 32 KiB."""


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
        directory, _, name = path.rpartition("/")
        value = self.read_many(directory, (name,))[0]
        if isinstance(value, SysfsReadError):
            raise value
        return value

    def read_many(self, directory: str, names: Sequence[str]) -> list[str | SysfsReadError]:
        """The text of each attribute ``names`` lists in ``directory``, in that order. An
        attribute that cannot be read yields its :class:`SysfsReadError` in its place instead of
        raising, so a table of 128 entries costs no exception per entry."""
        got = self._read_files(directory, names)
        try:  # the common case: every attribute read, and text
            return [data.decode().strip() for data in got]  # type: ignore[union-attr]
        except (AttributeError, UnicodeDecodeError):
            pass  # an OSError in the list, or bytes that are not text
        out: list[str | SysfsReadError] = []
        for name, data in zip(names, got, strict=True):
            if isinstance(data, OSError):
                out.append(_error(f"{directory}/{name}", data))
                continue
            try:
                out.append(data.decode().strip())
            except UnicodeDecodeError as exc:
                out.append(SysfsUnreadableError(f"{directory}/{name}", f"not text ({exc.reason})"))
        return out

    def read_binary(self, path: str, limit: int = VPD_MAX) -> bytes:
        """A binary attribute (``vpd``, ``config``) up to ``limit`` bytes."""
        try:
            return self._read_binary(path, limit)
        except OSError as exc:
            raise _error(path, exc) from exc

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

    def _read_files(self, directory: str, names: Sequence[str]) -> list[bytes | OSError]:
        """The bytes of each named file of ``directory``, or the ``OSError`` reading it raised."""
        if len(names) < _MIN_DIR_BATCH:
            return [_read_file(f"{directory}/{name}") for name in names]
        try:
            dir_fd = os.open(directory, _DIR_FLAGS)
        except OSError as exc:
            return [exc] * len(names)
        # The loop a PKey table's 128 entries go through: inlined, no exception when all is well.
        open_, read, close = os.open, os.read, os.close
        out: list[bytes | OSError] = []
        try:
            for name in names:
                try:
                    fd = open_(name, _FLAGS, dir_fd=dir_fd)
                except OSError as exc:
                    out.append(exc)
                    continue
                try:
                    out.append(read(fd, _PAGE))
                except OSError as exc:
                    out.append(exc)
                finally:
                    close(fd)
        finally:
            close(dir_fd)
        return out

    def _read_binary(self, path: str, limit: int) -> bytes:
        fd = os.open(path, _FLAGS)
        try:
            chunks, size = [], 0
            while size < limit:  # kernfs hands out binary attributes a page per read
                chunk = os.read(fd, limit - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            return b"".join(chunks)
        finally:
            os.close(fd)

    def _listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def _readlink(self, path: str) -> str:
        return os.readlink(path)


def _read_file(path: str) -> bytes | OSError:
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        return exc
    try:
        return os.read(fd, _PAGE)
    except OSError as exc:
        return exc
    finally:
        os.close(fd)
