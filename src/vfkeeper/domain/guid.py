"""InfiniBand GUIDs and the Ethernet MACs they are derived from: parse, format, convert.

A GUID is a 64-bit number. Users paste it in several forms, all accepted by :func:`parse_guid`:

============================  ====================================================
``0x0002c90300a1b2c3``        ibstat, OpenSM, partitions.conf; **vfkeeper's canonical form**
``0002c90300a1b2c3``          flint, plain 16 hex digits
``0002:c903:00a1:b2c3``       sysfs (``node_guid``, ``sys_image_guid``, GID interface ids)
``00:02:c9:03:00:a1:b2:c3``   ``ip link`` (a VF's ``node_guid`` / ``port_guid``), mlx5 sriov files
============================  ====================================================

Case does not matter and surrounding whitespace is ignored. ``0x`` may be followed by fewer
than 16 digits (it is a number); every other form must have all its digits, so that a short
decimal-looking string is never silently read as hex.

All-ones (:data:`GUID_CLEAR`) is what the kernel and the Mellanox tools write to *clear* a VF's
administrative GUID; all-zeros means "not set". Neither may be programmed into a VF, so callers
that assign GUIDs pass ``allow_zero=False, allow_clear=False``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from vfkeeper.domain.errors import InvalidGuidError, InvalidMacError

_MAX = (1 << 64) - 1

ACCEPTED_FORMS: Final = (
    "0x followed by up to 16 hex digits (0x0002c90300a1b2c3), 16 hex digits (0002c90300a1b2c3), "
    "four groups of 4 hex digits (0002:c903:00a1:b2c3) or eight colon-separated bytes "
    "(00:02:c9:03:00:a1:b2:c3)"
)

_HEX_0X = re.compile(r"0x([0-9a-f]{1,16})")
_HEX_16 = re.compile(r"[0-9a-f]{16}")
_GROUPS_4 = re.compile(r"[0-9a-f]{4}(?::[0-9a-f]{4}){3}")
_BYTES_8 = re.compile(r"[0-9a-f]{2}(?::[0-9a-f]{2}){7}")
_MAC = re.compile(r"[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}")

MAC_FORMS: Final = "six colon- or dash-separated bytes (fa:16:3e:12:34:56)"

IPOIB_CLIENT_ID_PREFIX: Final = bytes.fromhex("ff 00000000 0002 000002c9 00")
"""The 12 bytes an IPoIB DHCP client-id starts with, before the 8-byte port GUID.

RFC 4390 makes IPoIB clients send a client-id of type 255 (an RFC 4361 IAID + DUID). The
convention dhclient, FlexBoot/iPXE and the Mellanox drivers use (and Ironic's InfiniBand support
puts into Neutron's ``client-id`` DHCP option) is type ``ff``, IAID ``00:00:00:00``, DUID-EN type
``00:02``, enterprise number ``00:00:02:c9`` (713, Mellanox), a ``00`` byte, then the port GUID.
"""


@dataclass(frozen=True, order=True, slots=True)
class Guid:
    """A 64-bit InfiniBand GUID. ``str(guid)`` is the canonical ``0x`` + 16 hex digits form."""

    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise InvalidGuidError(self.value, "an integer between 0 and 2**64-1")
        if not 0 <= self.value <= _MAX:
            raise InvalidGuidError(self.value, "an integer between 0 and 2**64-1")

    def __str__(self) -> str:
        return self.canonical

    @property
    def canonical(self) -> str:
        """``0x0002c90300a1b2c3``: how vfkeeper's inventory, ibstat and OpenSM write it."""
        return f"0x{self.value:016x}"

    @property
    def colon_bytes(self) -> str:
        """``00:02:c9:03:00:a1:b2:c3``: the form ``ip link set … vf N node_guid`` takes."""
        return ":".join(f"{b:02x}" for b in self.packed)

    @property
    def sysfs(self) -> str:
        """``0002:c903:00a1:b2c3``: the form sysfs shows ``node_guid`` in."""
        h = f"{self.value:016x}"
        return ":".join(h[i : i + 4] for i in range(0, 16, 4))

    @property
    def packed(self) -> bytes:
        """The 8 bytes, most significant first (network order)."""
        return self.value.to_bytes(8, "big")

    @property
    def is_zero(self) -> bool:
        return self.value == 0

    @property
    def is_clear(self) -> bool:
        """All ones: the value that clears a VF's administrative GUID."""
        return self.value == _MAX


GUID_ZERO: Final = Guid(0)
GUID_CLEAR: Final = Guid(_MAX)
"""``0xffffffffffffffff``: written to a VF's node/port GUID to clear it (mlx5 sriov files,
``ip link … node_guid ff:ff:ff:ff:ff:ff:ff:ff``)."""


def _parse_text(text: str) -> int:
    s = text.strip().lower()
    m = _HEX_0X.fullmatch(s)
    if m:
        return int(m.group(1), 16)
    if _HEX_16.fullmatch(s):
        return int(s, 16)
    if _GROUPS_4.fullmatch(s) or _BYTES_8.fullmatch(s):
        return int(s.replace(":", ""), 16)
    raise InvalidGuidError(text, ACCEPTED_FORMS)


def parse_guid(
    value: str | int | Guid, *, allow_zero: bool = True, allow_clear: bool = True
) -> Guid:
    """Parse a GUID in any form users paste (see the module docstring).

    ``allow_zero=False`` rejects ``0`` ("not set"), ``allow_clear=False`` rejects all-ones
    (the kernel's "clear" value): pass both as ``False`` for a GUID that will be programmed.
    """
    if isinstance(value, Guid):
        guid = value
    elif isinstance(value, str):
        guid = Guid(_parse_text(value))
    else:
        guid = Guid(value)
    if not allow_zero and guid.is_zero:
        raise InvalidGuidError(value, "a non-zero GUID (0 means 'not set'); assign a real GUID")
    if not allow_clear and guid.is_clear:
        raise InvalidGuidError(
            value, "a GUID other than all-ones (the kernel's 'clear' value); assign a real GUID"
        )
    return guid


def format_guid(value: str | int | Guid) -> str:
    """The canonical form (``0x`` + 16 lowercase hex digits) of a GUID in any accepted form."""
    return parse_guid(value).canonical


def parse_mac(text: str) -> str:
    """An Ethernet MAC in lowercase colon form; accepts ``:`` or ``-`` separators, any case."""
    s = text.strip().lower()
    if not _MAC.fullmatch(s):
        raise InvalidMacError(text, MAC_FORMS)
    return s.replace("-", ":")


def parse_assignable_mac(text: str) -> str:
    """:func:`parse_mac` for a MAC a VF may be given: a unicast address (bit 0 of the first
    octet clear, so not broadcast nor multicast) that is not all-zero. NIC drivers refuse a
    multicast VF MAC (``ip link set … vf N mac``: EINVAL, igb and ixgbe check
    ``is_valid_ether_addr``) and read all-zero as "no address"."""
    mac = parse_mac(text)
    if int(mac[:2], 16) & 0x01:
        kind = "the broadcast address" if mac == "ff:ff:ff:ff:ff:ff" else "a multicast address"
        raise InvalidMacError(text, f"a unicast MAC; {mac} is {kind} (bit 0 of the first octet "
                              "is set), which no VF can have")
    if mac == "00:00:00:00:00:00":
        raise InvalidMacError(text, "a MAC other than all-zero, which means 'no address'")
    return mac


def mac_to_guid_mlx5(mac: str) -> Guid:
    """The GUID the Mellanox drivers derive from a VF's MAC: ``aa:bb:cc:dd:ee:ff`` →
    ``aa:bb:cc:00:00:dd:ee:ff`` (OUI, two zero bytes, NIC-specific part).

    This is the convention of the Mellanox Neutron agent (networking-mlnx eswitchd) for mlx4
    and mlx5 InfiniBand VFs, so that a port's MAC determines its GUID. It is *not* the EUI-64
    ``ff:fe`` insertion the mlx5 Ethernet driver uses for a RoCE VF's node GUID.
    """
    octets = bytes.fromhex(parse_mac(mac).replace(":", ""))
    return Guid(int.from_bytes(octets[:3] + b"\x00\x00" + octets[3:], "big"))


def ipoib_client_id(port_guid: str | int | Guid) -> str:
    """The DHCP client-id (option 61) an IPoIB interface with this port GUID sends, as the
    colon-separated 20 bytes DHCP servers' host entries and Neutron's ``client-id`` option take:
    ``ff:00:00:00:00:00:02:00:00:02:c9:00:`` + the GUID's 8 bytes (see
    :data:`IPOIB_CLIENT_ID_PREFIX`)."""
    guid = parse_guid(port_guid, allow_zero=False, allow_clear=False)
    return ":".join(f"{b:02x}" for b in IPOIB_CLIENT_ID_PREFIX + guid.packed)


def guid_to_cloud_init_mac(port_guid: str | int | Guid) -> str:
    """The 6-byte "Ethernet-format" address stock cloud-init indexes an IPoIB interface under:
    the port GUID's bytes 0-2 and 5-7, dropping bytes 3-4.

    cloud-init's ``get_ib_interface_hwaddr(name, ethernet_format=True)``
    (``cloudinit/net/__init__.py``) takes bytes 13-15 and 18-20 of the 20-byte IPoIB hardware
    address, whose last 8 bytes are the port GUID; ``convert_net_json`` then matches a
    network_data.json link's ``ethernet_mac_address`` against it. Publishing this form is what
    makes a guest's cloud-init find the VF. For a GUID from :func:`mac_to_guid_mlx5` it gives
    the MAC back.
    """
    packed = parse_guid(port_guid, allow_zero=False, allow_clear=False).packed
    return ":".join(f"{b:02x}" for b in packed[:3] + packed[5:])
