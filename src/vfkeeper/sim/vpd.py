"""PCI Vital Product Data as a card's ``vpd`` sysfs file shows it (PCIe 4.0 §6.28): the
identifier string, a read-only section (``PN``, ``EC``, ``SN``, then ``RV`` with the checksum
byte that makes all bytes up to it sum to zero, padded with reserved zeros) and the end tag."""

from __future__ import annotations


def _field(keyword: bytes, value: bytes) -> bytes:
    return keyword + bytes((len(value),)) + value


def _large(tag: int, data: bytes) -> bytes:
    return bytes((tag, len(data) & 0xFF, len(data) >> 8)) + data


def build(name: str, part_number: str, serial: str) -> bytes:
    """The VPD of a card called ``name`` with that part and serial number."""
    ident = _large(0x82, name.encode("ascii"))
    fields = _field(b"PN", part_number.encode("ascii")) + _field(b"EC", b"A1")
    fields += _field(b"SN", serial.encode("ascii"))
    reserved = 4  # RV: the checksum byte and 3 reserved bytes
    read_only = fields + b"RV" + bytes((reserved,))
    size = len(read_only) + reserved
    head = ident + bytes((0x90, size & 0xFF, size >> 8)) + read_only
    checksum = -sum(head) & 0xFF
    return head + bytes((checksum,)) + bytes(reserved - 1) + b"\x78"
