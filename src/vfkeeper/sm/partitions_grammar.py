"""OpenSM's partitions-file grammar, read the way ``opensm/osm_prtn_config.c`` (OpenSM 3.3)
reads it, refusing what it refuses and what it would read differently from how it looks.

:mod:`vfkeeper.sm.partitions_file` is the interface (render, parse, the values); this module is
the line-by-line reader behind it. Each refusal is a :class:`PartitionsFileError` naming the
line, with what OpenSM would do: fail open (the default), or accept and mean something else.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from vfkeeper.sm.errors import PartitionsFileError

SECTION_BEGIN: Final = ("# ---- vfkeeper section: written by vfkeeper, do not edit "
                        "(put your own partitions in the base file) ----")
SECTION_END: Final = "# ---- end of vfkeeper section ----"

MAX_LINE_BYTES: Final = 4093
"""OpenSM reads lines with ``fgets(line, 4095)``: at most 4094 bytes, the newline included."""

FileMembership = Literal["full", "limited", "both"]
Keyword = Literal["ALL", "ALL_CAS", "ALL_SWITCHES", "ALL_ROUTERS", "SELF"]
_KEYWORDS: Final[tuple[Keyword, ...]] = ("ALL", "ALL_CAS", "ALL_SWITCHES", "ALL_ROUTERS", "SELF")
_GROUP_FLAGS: Final = ("mtu", "rate", "scope", "Q_Key", "TClass", "sl", "FlowLabel")
"""OpenSM's multicast-group flags, in the order it tries them (a flag matches the first one
it is a prefix of)."""
_FLAG_LIMITS: Final = {"mtu": (1, 0xFFFFFFFF), "rate": (1, 0xFFFFFFFF), "scope": (1, 15),
                       "Q_Key": (0, 0xFFFFFFFF), "TClass": (0, 0xFF), "sl": (0, 15),
                       "FlowLabel": (0, 0xFFFFF)}
_DEFAULT_RATE, _DEFAULT_MTU = 3, 4
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+|[1-9][0-9]*|0")
_OCTAL = re.compile(r"0[0-9]+")
_BAD_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")
_MEMBER_LINE = re.compile(r"\t(0x[0-9a-f]{16})=(full|limited)([,;])")
"""The lines :func:`~vfkeeper.sm.partitions_file.render` writes for members: read directly
(what the general path reads them as), since a file holds 10,000s of them."""
_NOT_PORTS: Final = frozenset({f"0x{0:016x}", f"0x{(1 << 64) - 1:016x}"})
_BROADCAST_MGID: Final = ipaddress.IPv6Address("ff12:401b:ffff::ffff:ffff").packed
_FAIL_OPEN = None
"""PartitionsFileError's own consequence: OpenSM falls back to Default ALL=full."""


def silent(meaning: str) -> str:
    """The consequence of a refusal OpenSM would not fail open on, but read differently."""
    return (f"OpenSM would accept this but {meaning}, so the file was not installed; the file "
            "OpenSM has stays as it was")


@dataclass(slots=True)
class _Entry:
    """The entry being read (its header's flags apply to its ports only)."""

    pkey: int
    line: int
    defmember: FileMembership = "limited"
    rate: int = _DEFAULT_RATE
    mtu: int = _DEFAULT_MTU


@dataclass(slots=True)
class Building:
    """A partition as read so far (every entry of its PKey)."""

    name: str
    line: int
    operator: bool
    ipoib: bool = False
    members: dict[str, FileMembership] = field(default_factory=dict)
    keywords: list[tuple[Keyword, FileMembership]] = field(default_factory=list)
    sm_port_full: bool = True
    """For 0x7fff: OpenSM starts the SM's port as a full member, then applies the rules."""


class Parser:
    """Feed it a file's text with :meth:`run`; then :attr:`rules` holds each PKey's partition,
    :attr:`entries` the number of entries, :attr:`base_end` where vfkeeper's section starts."""

    def __init__(self, path: str, *, base_only: bool) -> None:
        self.path = path
        self.base_only = base_only
        self.section: Literal["base", "vfkeeper", "after"] = "base"
        self.base_end: int | None = None
        self.entry: _Entry | None = None
        self.entries = 0
        self.rules: dict[int, Building] = {}
        self.lineno = 0

    def error(self, problem: str, consequence: str | None = _FAIL_OPEN,
              line: int | None = None) -> PartitionsFileError:
        return PartitionsFileError(self.path, line or self.lineno or None, problem,
                                   consequence=consequence)

    def run(self, text: str) -> None:
        offset = 0
        for self.lineno, line in enumerate(text.split("\n"), 1):
            self._line(line, offset)
            offset += len(line) + 1
        self.lineno = 0
        if self.entry is not None:
            raise self.error(f"the entry of PKey {self.entry.pkey:#06x} has no closing ';'",
                             line=self.entry.line)
        if self.section == "vfkeeper":
            raise self.error("vfkeeper's section has no end marker (a truncated file?)")

    def _line(self, line: str, offset: int) -> None:
        member = _MEMBER_LINE.fullmatch(line) if self.entry is not None else None
        if member and member.group(1) not in _NOT_PORTS and self.entry is not None:
            guid, membership, end = member.groups()
            full_or_limited: FileMembership = "full" if membership == "full" else "limited"
            self.rules[self.entry.pkey].members[guid] = full_or_limited
            if end == ";":
                self.entry = None
            return
        bad = _BAD_CHAR.search(line)
        if bad:
            raise self.error(f"control character U+{ord(bad.group()):04X} at column "
                             f"{bad.start() + 1}",
                             silent("reads it as part of a name, flag or GUID"))
        if len(line.encode()) > MAX_LINE_BYTES:
            raise self.error(f"line longer than {MAX_LINE_BYTES} bytes",
                             silent("splits it in two in the middle of a token"))
        if line in (SECTION_BEGIN, SECTION_END):
            self._marker(line, offset)
            return
        body, _, comment = line.partition("#")
        if self.section == "after" and body.strip(" \t"):
            raise self.error("text after vfkeeper's section; put your partitions in the base "
                             "file")
        self._feed(body, comment)

    def _marker(self, line: str, offset: int) -> None:
        if self.base_only:
            raise self.error("the base file contains vfkeeper's section marker; the base holds "
                             "only the operator's own partitions")
        expected = "base" if line == SECTION_BEGIN else "vfkeeper"
        if self.section != expected:
            raise self.error("vfkeeper's section markers are out of order")
        if self.entry is not None:
            raise self.error(f"the entry of PKey {self.entry.pkey:#06x} has no closing ';' "
                             "before vfkeeper's section marker", line=self.entry.line)
        if line == SECTION_BEGIN:
            self.section, self.base_end = "vfkeeper", offset
        else:
            self.section = "after"

    def _feed(self, body: str, comment: str) -> None:
        """OpenSM's main loop: entries end at ``;``, and may span lines."""
        rest = body
        while True:
            rest = rest.lstrip(" \t")
            if not rest:
                return
            segment, semicolon, rest = rest.partition(";")
            if not segment:
                # OpenSM 3.3.23 refuses a ';' with only blanks before it on its line even when it
                # closes an open entry ("no partition definition found"; seen under ibsim), and
                # parse_part_conf steps over the '\0' it became, into the rest of the line.
                raise self.error("a ';' with nothing before it on its line (or right after "
                                 "another ';'): end an entry on its last line")
            flagless_mgid = self._segment(segment)
            if flagless_mgid:
                self._check_after_flagless_mgid(semicolon, rest, comment)
            if not semicolon:
                return
            self.entry = None

    def _check_after_flagless_mgid(self, semicolon: str, rest: str, comment: str) -> None:
        # OpenSM reads on past a flag-less mgid= item, taking what it finds as multicast-group
        # flags: after a ';' the rest of the line up to its comment; without one, the comment.
        if semicolon and rest.strip(" \t"):
            raise self.error("text after 'mgid=…;' on the same line",
                             silent("reads it as flags of that multicast group and drops it; "
                                     "start the next entry on a new line"))
        if not semicolon and "=" in comment:
            raise self.error("a comment after a flag-less 'mgid=' item",
                             silent("reads the comment as flags of that multicast group; "
                                     "move the comment to a line of its own"))

    def _segment(self, segment: str) -> bool:
        if self.entry is None:
            header, colon, ports = segment.partition(":")
            if not colon:
                raise self.error(f"no partition definition in {segment.strip()[:40]!r} (an "
                                 "entry starts with 'name=PKey:'; a stray ';' or a missing "
                                 "':'?)")
            self.entry = self._header(header)
            self.entries += 1
        else:
            ports = segment
        return self._ports(ports)

    # --- the header: name=PKey, flags ----------------------------------------------------------
    def _header(self, header: str) -> _Entry:
        first, *flags = header.split(",")
        name, pkey_text = _name_token(first)
        if pkey_text is None and name[:1].isascii() and name[:1].isdigit():
            name, pkey_text = "", name
        if pkey_text is None:
            raise self.error(f"partition {name!r} has no PKey",
                             silent("generates one, which vfkeeper cannot know and which "
                                     "could be a tenant's; write name=0x…"))
        entry = _Entry(pkey=self._pkey(pkey_text), line=self.lineno)
        building = self._building(entry.pkey, name)
        for flag in flags:
            self._partition_flag(entry, building, *_name_token(flag))
        return entry

    def _building(self, pkey: int, name: str) -> Building:
        operator = self.section == "base"
        building = self.rules.get(pkey)
        if building is None:
            building = self.rules[pkey] = Building(name=name, line=self.lineno,
                                                    operator=operator)
        elif building.operator != operator:
            raise self.error(f"PKey {pkey:#06x} is defined both in the operator's base (line "
                             f"{building.line}) and in vfkeeper's section",
                             silent("merges the two into one partition"))
        return building

    def _pkey(self, text: str) -> int:
        value = self._number(text, "PKey")
        if value > 0xFFFF:
            raise self.error(f"PKey {text} has more than 16 bits",
                             silent(f"keeps only {value & 0xFFFF:#06x}"))
        if value & 0x8000:
            raise self.error(f"PKey {text} has the membership bit (0x8000) set",
                             silent(f"uses {value & 0x7FFF:#06x}; write that, membership "
                                     "goes with each port"))
        if value == 0:
            raise self.error("PKey 0", silent("generates a PKey, which could be a tenant's"))
        return value

    def _number(self, text: str, what: str) -> int:
        if _OCTAL.fullmatch(text):
            raise self.error(f"{what} {text} starts with 0",
                             silent("reads it as octal; write 0x… or a decimal number"))
        if not _NUMBER.fullmatch(text):
            raise self.error(f"{what} {text!r} is not a number (0x… or decimal)")
        return int(text, 0)

    def _partition_flag(self, entry: _Entry, building: Building, flag: str,
                        value: str | None) -> None:
        group = _prefix_of(flag, _GROUP_FLAGS) if flag else None
        if group is not None:
            number = self._group_flag(group, value)
            if group in ("rate", "mtu"):
                setattr(entry, group, number)
        elif flag and "ipoib".startswith(flag):
            building.ipoib = True
        elif flag and "defmember".startswith(flag):
            entry.defmember = self._membership(value, "defmember")
        elif not flag:
            raise self.error("an empty partition flag (a stray ',' in the header?)",
                             silent("reads it as a flag without a value and ignores it"))
        elif flag != "indx0":
            raise self.error(f"unknown partition flag {flag!r}", silent("ignores it"))

    def _group_flag(self, flag: str, value: str | None) -> int:
        if not value:
            raise self.error(f"flag {flag!r} without a value", silent("ignores it"))
        number = self._number(value, f"{flag} value")
        low, high = _FLAG_LIMITS[flag]
        if not low <= number <= high:
            raise self.error(f"{flag}={value} is outside {low}-{high}", silent("ignores it"))
        return number

    def _membership(self, value: str | None, what: str) -> FileMembership:
        if not value:
            raise self.error(f"{what} without a membership",
                             silent("reads an empty one as full"))
        for membership in ("full", "both", "limited"):
            if membership.startswith(value):
                return membership
        raise self.error(f"unknown membership {value!r} in {what}",
                         silent("makes the port a limited member; use full or limited"))

    # --- the properties: ports, keywords, mgid lines --------------------------------------------
    def _ports(self, text: str) -> bool:
        """Returns whether the segment ended with an ``mgid=`` item that has no flags."""
        tokens = text.split(",")
        for i, token in enumerate(tokens):
            name, flag = _name_token(token)
            if name == "mgid":
                self._mgid(flag, tokens[i + 1:])
                return len(tokens) == i + 1
            self._port(name, flag)
        return False

    def _port(self, name: str, flag: str | None) -> None:
        entry = self.entry
        assert entry is not None
        if not name or "NONE".startswith(name):
            if flag is not None and not name:
                raise self.error(f"'={flag}' without a port GUID", silent("ignores it"))
            return
        keyword = _prefix_of(name, _KEYWORDS)
        guid = self._guid(name) if keyword is None else None
        membership = entry.defmember if flag is None else self._membership(flag, name)
        building = self.rules[entry.pkey]
        if guid is not None:
            building.members[guid] = membership
            return
        building.keywords.append((keyword, membership))  # type: ignore[arg-type]
        if keyword in ("ALL", "ALL_CAS", "SELF"):
            building.sm_port_full = membership != "limited"

    def _guid(self, text: str) -> str:
        if not _NUMBER.fullmatch(text) and not _OCTAL.fullmatch(text):
            raise self.error(f"bad port GUID {text[:40]!r} (a missing ';' at the end of the "
                             "previous entry?)")
        value = self._number(text, "port GUID")
        if value == 0:
            raise self.error("port GUID 0")
        if value >= 1 << 64:
            raise self.error(f"port GUID {text} has more than 64 bits",
                             silent("reads it as 0xffffffffffffffff"))
        if value == (1 << 64) - 1:
            raise self.error(f"port GUID {text} is all-ones (the value that clears a VF's GUID)",
                             silent("lists a GUID no port has"))
        return f"0x{value:016x}"

    def _mgid(self, gid: str | None, flags: list[str]) -> None:
        entry = self.entry
        assert entry is not None
        mgid = _multicast_gid(gid or "")
        if mgid is None:
            raise self.error(f"mgid {gid!r} is not a multicast GID (ff…)",
                             silent("skips the group"))
        rate, mtu = entry.rate, entry.mtu
        for token in flags:
            flag, value = _name_token(token)
            if not flag and value is None:
                continue
            group = _prefix_of(flag, _GROUP_FLAGS) if flag else None
            if group is None:
                raise self.error(f"{flag!r} after 'mgid=' on the same line",
                                 silent("reads it as a multicast-group flag and ignores it; "
                                         "put ports on their own line"))
            number = self._group_flag(group, value)
            if group == "rate":
                rate = number
            elif group == "mtu":
                mtu = number
        self._check_ip_group(mgid, entry, rate, mtu)

    def _check_ip_group(self, mgid: bytes, entry: _Entry, rate: int, mtu: int) -> None:
        if mgid[2:4] not in (b"\x40\x1b", b"\x60\x1b") or mgid == _BROADCAST_MGID:
            return
        mpkey = int.from_bytes(mgid[4:6], "big")
        problem = (f"PKey {mpkey:#06x} in it is neither 0 nor {entry.pkey | 0x8000:#06x}"
                   if mpkey not in (0, entry.pkey | 0x8000) else
                   f"rate {rate} differs from its partition's {entry.rate}"
                   if rate != entry.rate else
                   f"mtu {mtu} differs from its partition's {entry.mtu}"
                   if mtu != entry.mtu else None)
        if problem:
            raise self.error(f"IP multicast group: {problem}", silent("does not create it"))

def _name_token(token: str) -> tuple[str, str | None]:
    """``name[=value]``, split at the first ``=`` and trimmed, as OpenSM's
    ``parse_name_token`` does."""
    name, eq, value = token.partition("=")
    return name.strip(" \t"), value.strip(" \t") if eq else None


def _prefix_of(word: str, keywords: Iterable[str]) -> str | None:
    """The first keyword ``word`` abbreviates (OpenSM compares ``strlen(word)`` bytes)."""
    return next((k for k in keywords if k.startswith(word)), None)


def _multicast_gid(text: str) -> bytes | None:
    if "%" in text:
        return None
    try:
        packed = ipaddress.IPv6Address(text).packed
    except ValueError:
        return None
    return packed if packed[0] == 0xFF else None


