"""Parsers for the text of sysfs attributes. Each takes the stripped text and returns the
inventory's form, or raises ``ValueError`` saying what was expected (discovery turns that into a
warning naming the path and leaves the field null)."""

from __future__ import annotations

import re

from vfkeeper.domain.guid import parse_guid

_DECIMAL = re.compile(r"-?[0-9]+")
_HEX_ID = re.compile(r"0x([0-9a-fA-F]{1,4})")
_BARE_HEX_ID = re.compile(r"(?:0x)?([0-9a-fA-F]{1,4})")
_HEX_NUM = re.compile(r"0x[0-9a-fA-F]+")
_CLASS = re.compile(r"0x([0-9a-fA-F]{6})")
_HWADDR = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){0,31}")
_GUID_GROUPS = re.compile(r"[0-9a-f]{4}(?::[0-9a-f]{4}){3}")
_GID = re.compile(r"[0-9a-f]{4}(?::[0-9a-f]{4}){7}")
_GUID_BYTES = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){7}")


def hex_id(text: str) -> str:
    """``0x15b3`` (sysfs ``vendor``, ``device``, ``subsystem_*``) → ``15b3``."""
    m = _HEX_ID.fullmatch(text)
    if not m:
        raise ValueError("expected 0x and up to 4 hex digits")
    return m.group(1).lower().rjust(4, "0")


def vf_device_id(text: str) -> str:
    """``sriov_vf_device``: the kernel prints ``%x`` (``1018``, ``71``; a 2025 patch proposes
    ``0x%04x``) → ``1018``, ``0071``."""
    m = _BARE_HEX_ID.fullmatch(text)
    if not m:
        raise ValueError("expected up to 4 hex digits")
    return m.group(1).lower().rjust(4, "0")


def class_code(text: str) -> str:
    """``0x020700`` → ``0x020700`` (validated, lowercased)."""
    m = _CLASS.fullmatch(text)
    if not m:
        raise ValueError("expected 0x and 6 hex digits")
    return "0x" + m.group(1).lower()


def decimal(text: str) -> int:
    if not _DECIMAL.fullmatch(text):
        raise ValueError("expected a decimal integer")
    return int(text)


def numa_node(text: str) -> int | None:
    """``-1`` (no NUMA affinity) → ``None``."""
    value = decimal(text)
    if value < -1:
        raise ValueError("expected -1 or a node number")
    return None if value == -1 else value


def speed_mbps(text: str) -> int | None:
    """``-1`` (SPEED_UNKNOWN, link down) → ``None``."""
    value = decimal(text)
    if value < -1:
        raise ValueError("expected -1 or a speed in Mb/s")
    return None if value == -1 else value


def group_number(text: str) -> int:
    """The last component of ``iommu_group``'s target: a decimal group number."""
    return decimal(text)


def lid(text: str) -> int:
    """``0x1a`` → 26."""
    if not _HEX_NUM.fullmatch(text):
        raise ValueError("expected 0x and hex digits")
    return int(text, 16)


def hwaddr(text: str) -> str:
    """A netdev ``address``: colon-separated bytes (6 for Ethernet, 20 for IPoIB)."""
    s = text.lower()
    if not _HWADDR.fullmatch(s):
        raise ValueError("expected colon-separated hex bytes")
    return s


def sysfs_guid(text: str) -> str:
    """``node_guid`` / ``sys_image_guid``: ``0002:c903:0000:1234`` → ``0x0002c90300001234``."""
    s = text.lower()
    if not _GUID_GROUPS.fullmatch(s):
        raise ValueError("expected four groups of 4 hex digits")
    return parse_guid(s).canonical


def gid_port_guid(text: str) -> str:
    """``gids/0``: the GID's low 64 bits (its interface id), which is the port GUID."""
    s = text.lower()
    if not _GID.fullmatch(s):
        raise ValueError("expected a GID: eight groups of 4 hex digits")
    return parse_guid(s[20:]).canonical


def byte_guid(text: str) -> str:
    """mlx5 ``sriov/N/{node,port}``: ``00:02:c9:03:00:00:12:34`` → ``0x0002c90300001234``."""
    s = text.lower()
    if not _GUID_BYTES.fullmatch(s):
        raise ValueError("expected eight colon-separated hex bytes")
    return parse_guid(s).canonical


def pkey(text: str) -> int:
    """``pkeys/K``: ``0xffff`` → 65535."""
    if not _HEX_NUM.fullmatch(text) or len(text) > 6:
        raise ValueError("expected 0x and up to 4 hex digits")
    return int(text, 16)
