"""Errors of the host agent.

Every error carries the data a user needs to fix the problem, and its message says what was
wrong and what to do. The tree (add new errors where they belong, and list them here)::

    AgentError                   base of everything the agent raises
    ├── MigrationUriError        --migration-uri is not a URI the host may announce
    ├── SysfsRootError           the given root has no PCI device listing: wrong --sysfs-root
    └── SysfsReadError           one sysfs path could not be read (discovery turns it into a
        │                        ScanWarning; it never aborts a scan)
        ├── SysfsMissingError    the path does not exist (or a symlink on it points nowhere)
        └── SysfsUnreadableError the path exists but reading it failed (permission, EINVAL,
                                 a directory where a file was expected, undecodable bytes)
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the host agent raises."""


class MigrationUriError(AgentError):
    """``--migration-uri`` breaks the rule the controller and the source hosts apply
    (:func:`vfkeeper.domain.migration.check_migration_uri`): every heartbeat would be refused."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"--migration-uri: {reason}")


class SysfsRootError(AgentError):
    """The root given to :class:`~vfkeeper.agent.sysfs.SysfsReader` has no PCI device listing."""

    def __init__(self, root: str, listing: str, reason: str) -> None:
        self.root = root
        self.listing = listing
        self.reason = reason
        super().__init__(
            f"no PCI device listing at {listing} ({reason}): the sysfs root {root!r} is not a "
            "host root; pass the directory that contains sys/ (\"/\" on a real host, or the "
            "--out directory of 'vfkeeper simulate host')"
        )


class SysfsReadError(AgentError):
    """One sysfs path could not be read. ``path`` is the full path, ``reason`` says why."""

    def __init__(self, path: str, reason: str, errno: int | None = None) -> None:
        self.path = path
        self.reason = reason
        self.errno = errno
        super().__init__(f"{path}: {reason}")


class SysfsMissingError(SysfsReadError):
    """The path does not exist, or a symlink on the way points nowhere."""


class SysfsUnreadableError(SysfsReadError):
    """The path exists but could not be read."""
