"""Cluster-wide MAC and InfiniBand GUID allocation.

Addresses live on the port rows; ``ports.mac`` and ``ports.guid`` are unique in the database, so
an address is never handed out twice even by two controllers at once (the loser's transaction
fails on the constraint and the claim is retried). Free addresses are drawn at random from the
configured range, which keeps two controllers from colliding in the first place.

* MACs: the configured prefix (1-5 octets) must be unicast and locally administered; the rest
  is random.
* GUIDs: drawn from an inclusive ``0xLOW-0xHIGH`` range; never all-zero ("not set") nor all-ones
  (the kernel's "clear" value).
* A requested address is honoured if free, else 409 (:class:`AddressTakenError`).
* A GUID that is still in a partition for another port (its membership row is not yet removed:
  the subnet manager has not confirmed it left) is not free: a requested one is refused with
  409 (:class:`GuidLeavingError`), and drawn ones are drawn again.
* A boot draws its addresses unchecked (``check=False``: no look-up per address); a duplicate is
  refused by the unique constraint and the boot retries, drawing checked addresses then, so a
  nearly full pool still ends in :class:`AddressPoolExhaustedError`, not in endless retries.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from vfkeeper.controller.errors import (
    AddressPoolExhaustedError,
    AddressTakenError,
    GuidLeavingError,
)
from vfkeeper.domain.guid import GUID_CLEAR, parse_guid, parse_mac
from vfkeeper.store.models import Port
from vfkeeper.store.partition_models import PartitionMembership

_TRIES = 32
_Column = InstrumentedAttribute[str | None]


def parse_mac_prefix(text: str) -> bytes:
    """``02:76:66`` → its octets; refuses multicast or globally administered prefixes."""
    try:
        octets = bytes.fromhex(text.replace(":", "").replace("-", ""))
    except ValueError:
        octets = b""
    if not 1 <= len(octets) <= 5 or len(text.replace("-", ":").split(":")) != len(octets):
        raise ValueError(f"MAC prefix {text!r} is not 1 to 5 colon-separated octets (02:76:66)")
    if octets[0] & 0x01:
        raise ValueError(f"MAC prefix {text!r} is multicast (bit 0 of the first octet is set)")
    if not octets[0] & 0x02:
        raise ValueError(
            f"MAC prefix {text!r} is not locally administered: set bit 1 of the first octet "
            "(e.g. 02:..., 0a:..., fa:...)"
        )
    return octets


def parse_guid_range(text: str) -> tuple[int, int]:
    """``0xLOW-0xHIGH`` → (low, high), inclusive, excluding 0 and all-ones."""
    low_text, sep, high_text = text.partition("-")
    try:
        low = parse_guid(low_text).value
        high = parse_guid(high_text).value
    except ValueError as exc:
        raise ValueError(f"GUID range {text!r}: {exc}") from exc
    if not sep or low > high:
        raise ValueError(f"GUID range {text!r} is not LOW-HIGH with LOW <= HIGH")
    if low == 0 or high == GUID_CLEAR.value:
        raise ValueError(
            f"GUID range {text!r} includes 0 or all-ones, which cannot be assigned; "
            "start at 1 or above and end below 0xffffffffffffffff"
        )
    return low, high


def format_mac(octets: bytes) -> str:
    return ":".join(f"{b:02x}" for b in octets)


@dataclass(frozen=True)
class AddressPools:
    """The configured MAC prefix and GUID range; draws candidates and checks them in a session."""

    mac_prefix: bytes
    guid_low: int
    guid_high: int
    rng: random.Random

    @classmethod
    def from_settings(
        cls, mac_prefix: str, guid_range: str, seed: int | None = None
    ) -> AddressPools:
        low, high = parse_guid_range(guid_range)
        return cls(parse_mac_prefix(mac_prefix), low, high, random.Random(seed))

    def _mac_candidate(self) -> str:
        suffix = self.rng.getrandbits(8 * (6 - len(self.mac_prefix)))
        return format_mac(self.mac_prefix + suffix.to_bytes(6 - len(self.mac_prefix), "big"))

    def _guid_candidate(self) -> str:
        return f"0x{self.rng.randint(self.guid_low, self.guid_high):016x}"

    def mac(self, session: Session, port_id: str, requested: str | None = None, *,
            check: bool = True) -> str:
        """A MAC for ``port_id``: ``requested`` if free (else 409), or a free random one (any
        random one with ``check=False``: the unique constraint then refuses a duplicate)."""
        if requested is not None:
            mac = parse_mac(requested)
            _check_free(session, Port.mac, mac, port_id, "MAC address")
            return mac
        if not check:
            return self._mac_candidate()
        return self._draw(session, Port.mac, self._mac_candidate, "MAC address",
                          f"prefix {format_mac(self.mac_prefix)}")

    def guid(self, session: Session, port_id: str, requested: str | None = None, *,
             check: bool = True) -> str:
        """A GUID for ``port_id``: ``requested`` if free (else 409), or a free random one (any
        random one with ``check=False``)."""
        if requested is not None:
            guid = parse_guid(requested, allow_zero=False, allow_clear=False).canonical
            _check_free(session, Port.guid, guid, port_id, "GUID")
            leaving = _leaving(session, guid, port_id)
            if leaving is not None:
                raise GuidLeavingError(guid, leaving)
            return guid
        pool = f"range 0x{self.guid_low:016x}-0x{self.guid_high:016x}"
        if not check:
            # no port holds it (the unique constraint refuses that), but one leaving a
            # partition must not be reused: one indexed look-up, the boot's only one per GUID
            for _ in range(_TRIES):
                guid = self._guid_candidate()
                if _leaving(session, guid, port_id) is None:
                    return guid
            raise AddressPoolExhaustedError("GUID", pool, _TRIES)
        for _ in range(_TRIES):
            guid = self._draw(session, Port.guid, self._guid_candidate, "GUID", pool)
            if _leaving(session, guid, port_id) is None:
                return guid
        raise AddressPoolExhaustedError("GUID", pool, _TRIES)

    @staticmethod
    def _draw(
        session: Session, column: _Column, candidate: Callable[[], str], kind: str, pool: str
    ) -> str:
        for _ in range(_TRIES):
            value = candidate()
            if session.scalar(select(Port.id).where(column == value)) is None:
                return value
        raise AddressPoolExhaustedError(kind, pool, _TRIES)


def _check_free(session: Session, column: _Column, value: str, port_id: str, kind: str) -> None:
    holder = session.scalar(select(Port.id).where(column == value))
    if holder is not None and holder != port_id:
        raise AddressTakenError(kind, value, holder)


def _leaving(session: Session, guid: str, port_id: str) -> int | None:
    """The partition ``guid`` is still a member of (or not yet confirmed out of) for a port
    other than ``port_id``; ``None`` when there is none."""
    return session.scalar(
        select(PartitionMembership.pkey)
        .where(PartitionMembership.guid == guid, PartitionMembership.state != "external",
               (PartitionMembership.port_id != port_id) | PartitionMembership.port_id.is_(None))
        .limit(1))
