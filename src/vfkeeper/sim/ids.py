"""Deterministic MACs and GUIDs for simulated hosts.

Both carry a 16-bit hash of the host name, the PF's index and the function's index (0 for the
PF, ``vf + 1`` for a VF), so they are unique within a host, stable from run to run, and differ
between simulated hosts (two host names share the hash with probability 1/65536).

MACs are locally administered (``02:…``): a simulated address can never be a real card's.
GUIDs carry the Mellanox OUI ``00:02:c9`` like real ConnectX GUIDs.
"""

from __future__ import annotations

import hashlib

from vfkeeper.domain.guid import Guid

MELLANOX_OUI = 0x0002C9


def host_hash(hostname: str) -> int:
    return int.from_bytes(hashlib.blake2b(hostname.encode(), digest_size=2).digest(), "big")


def serial(vendor_id: str, host: int, pf: int) -> str:
    """A card's VPD serial number: ``MT`` + 8 hex digits on Mellanox cards, else the vendor
    id's letters (``IN`` for Intel)."""
    prefix = "MT" if vendor_id == "15b3" else "IN"
    return f"{prefix}{host:04X}{pf:04X}"


def mac(host: int, pf: int, function: int, port: int = 0) -> str:
    """``02:HH:HH:PP:FF:FF`` with FFFF = function * 2 + port (``function`` < 32768)."""
    low = function * 2 + port
    octets = (0x02, host >> 8, host & 0xFF, pf & 0xFF, (low >> 8) & 0xFF, low & 0xFF)
    return ":".join(f"{o:02x}" for o in octets)


def guid(host: int, pf: int, function: int, kind: int) -> Guid:
    """OUI(24) | host(16) | PF(8) | function(14) | kind(2); kind 0 is the node GUID, 1 and 2
    the GUIDs of ports 1 and 2."""
    value = (MELLANOX_OUI << 40) | (host << 24) | ((pf & 0xFF) << 16)
    return Guid(value | ((function & 0x3FFF) << 2) | (kind & 0x3))


def roce_gid(mac_text: str) -> str:
    """The link-local GID ``gids/0`` shows on a RoCE port: fe80:: + the MAC's EUI-64."""
    o = [int(b, 16) for b in mac_text.split(":")]
    eui = [o[0] ^ 0x02, o[1], o[2], 0xFF, 0xFE, o[3], o[4], o[5]]
    words = ["fe80", "0000", "0000", "0000"] + [
        f"{eui[i]:02x}{eui[i + 1]:02x}" for i in range(0, 8, 2)
    ]
    return ":".join(words)


def ib_gid(port_guid: Guid) -> str:
    """``gids/0`` of an InfiniBand port: the default subnet prefix + the port GUID."""
    return "fe80:0000:0000:0000:" + port_guid.sysfs


def ipoib_hwaddr(qpn: int, port_guid: Guid) -> str:
    """An IPoIB netdev's 20-byte address: flags + 24-bit QPN, then the port's GID."""
    raw = bytes((0x80, (qpn >> 16) & 0xFF, (qpn >> 8) & 0xFF, qpn & 0xFF))
    raw += bytes.fromhex("fe80000000000000") + port_guid.packed
    return ":".join(f"{b:02x}" for b in raw)
