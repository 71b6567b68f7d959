"""The card serial number in a PCI function's Vital Product Data (the ``vpd`` sysfs file).

VPD is a list of resources (PCI Local Bus 3.0 §I, PCIe 4.0 §6.28): a large resource is a tag
byte with bit 7 set, a 16-bit little-endian length and its data; a small resource is one byte
``0tttt lll`` (type, length). ``0x82`` is the identifier string, ``0x90`` the read-only
section VPD-R, ``0x91`` the read-write section VPD-W, small type ``0xf`` the end. VPD-R is a
list of fields: two keyword characters, a length byte, the data; ``SN`` is the serial number
and ``RV`` (last) holds the checksum byte that makes every byte from address 0 up to and
including it sum to zero.

libvirt reads the same file (``virPCIVPDParse``) and Nova takes the serial number from it
(``card_serial_number`` of the PF, for ``remote_managed`` ports). The rules here are libvirt's:
a VPD without VPD-R, without an end tag, with a resource or field running past its end, or
with a bad checksum is invalid as a whole; text is stripped and must be printable ASCII.
"""

from __future__ import annotations

_STRING, _VPD_R, _VPD_W = 0x82, 0x90, 0x91
_END = 0x0F


def _text(raw: bytes, what: str) -> str:
    text = raw.decode("ascii", errors="replace").strip()
    if not text.isprintable() or "\ufffd" in text:
        raise ValueError(f"{what} is not printable ASCII")
    return text


def _resource(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of its data, length) of the resource at ``pos``."""
    tag = data[pos]
    if tag & 0x80:
        if pos + 3 > len(data):
            raise ValueError(f"large resource header at byte {pos} is cut off")
        return tag, pos + 3, data[pos + 1] | data[pos + 2] << 8
    return tag >> 3, pos + 1, tag & 7


def _read_only(data: bytes, start: int, length: int) -> str | None:
    """The ``SN`` field of the VPD-R section at ``start``; checks the ``RV`` checksum."""
    pos, end, serial = start, start + length, None
    while pos + 3 <= end:
        keyword, size = data[pos:pos + 2], data[pos + 2]
        value = pos + 3
        if value + size > end:
            raise ValueError(f"VPD-R field {keyword!r} runs past its section")
        if keyword == b"RV":
            if size < 1 or sum(data[:value + 1]) & 0xFF:
                raise ValueError("VPD-R checksum (RV) does not add up")
            if value + size != end:
                raise ValueError("RV is not the last field of VPD-R")
            return serial
        if keyword == b"SN":
            serial = _text(data[value:value + size], "the serial number (SN)") or None
        pos = value + size
    raise ValueError("VPD-R has no checksum field (RV)")


def serial_number(data: bytes) -> str | None:
    """The ``SN`` of VPD-R; ``None`` when the VPD is valid but has none. Raises
    ``ValueError`` saying what is wrong when the VPD is malformed."""
    pos, serial, has_read_only = 0, None, False
    while pos < len(data):
        tag, start, length = _resource(data, pos)
        if tag == _END:
            if not has_read_only:
                raise ValueError("no read-only section (VPD-R)")
            return serial
        if start + length > len(data):
            raise ValueError(f"resource 0x{tag:02x} at byte {pos} runs past the end")
        if tag == _STRING:
            _text(data[start:start + length], "the identifier string")
        elif tag == _VPD_R:
            serial, has_read_only = _read_only(data, start, length), True
        pos = start + length
    raise ValueError("no end tag" if data else "empty")
