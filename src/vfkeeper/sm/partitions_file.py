"""OpenSM's partitions file: render the one vfkeeper installs, and parse and validate any one
the way OpenSM reads it. Pure: text in, values or :class:`PartitionsFileError` out.

**Why validation is strict.** OpenSM fails open: a file it cannot parse makes it fall back to
``Default=0x7fff : ALL=full`` and drop every other partition, fabric-wide (``osm_prtn.c``,
"retrying with default config"). Its parser (``opensm/osm_prtn_config.c``, OpenSM 3.3) also
*silently changes* several things a reader would take at face value. :func:`parse` refuses both
kinds, naming the line:

* what OpenSM refuses: an entry without a ``name=PKey:`` header, a PKey or port GUID that is not a
  number, a zero GUID, a stray ``;`` (OpenSM 3.3.23 also refuses one alone on a line, even
  closing an entry), a file with no entry at all (empty or comments only);
* what OpenSM reads differently from how it looks: an unknown membership (``0x…=fulll`` becomes
  *limited*), an empty one (``0x…=`` becomes *full*), an unknown or empty partition flag (ignored),
  a number with a leading ``0`` (octal), a GUID over 64 bits (all-ones) or a PKey over 16 bits
  (truncated), a PKey with the membership bit (dropped), a PKey omitted or 0 (OpenSM generates
  one, which could collide with a tenant's), a ``\\r`` (CRLF files: ``full\\r`` is not ``full``)
  or another control character, a line longer than OpenSM's 4094-byte read (split mid-token),
  ports listed after ``mgid=`` on its line (read as multicast flags, dropped), an IP multicast
  group whose PKey, rate or MTU does not match its partition (not created);
* what would break the fabric without failing open: a Default (0x7fff) rule that leaves the SM's
  own port a limited member (``ALL=limited`` with no ``SELF=full`` after it), since limited
  members cannot reach one another, so no port could reach the SM;
* what breaks vfkeeper's ownership: a PKey defined both in the operator's base and in
  vfkeeper's section, an unclosed last entry in the base (vfkeeper's section would be read as
  its continuation), anything but full/limited port GUIDs in vfkeeper's section.

OpenSM's own abbreviations are read as OpenSM reads them (``0x…=f`` is full, ``A`` is ``ALL``,
``i`` is ``ipoib``), ``both`` counts as full (OpenSM without ``allow_both_pkeys``), repeated
PKeys merge (first name wins) and a port listed twice gets its last membership.

Not modelled: an ``mgid=`` item with no flags at the very end of a line without a comment makes
OpenSM read past the line's end, into what its buffer kept of earlier, longer lines.

**The file vfkeeper installs** (:func:`render`) is the operator's base text, byte for byte, then
vfkeeper's section between :data:`SECTION_BEGIN` and :data:`SECTION_END`: the Default rule
:data:`DEFAULT_RULE` when the base has none, then one entry per partition in PKey order with an
explicit PKey and one port GUID per line, membership always explicit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Final

from vfkeeper.sm.errors import InvalidPartitionError, PartitionsFileError
from vfkeeper.sm.partitions_grammar import (
    MAX_LINE_BYTES,
    SECTION_BEGIN,
    SECTION_END,
    Building,
    FileMembership,
    Keyword,
    Parser,
    silent,
)
from vfkeeper.sm.protocol import DEFAULT_PKEY, Membership, Partition, SmView

__all__ = ["DEFAULT_RULE", "MAX_LINE_BYTES", "SECTION_BEGIN", "SECTION_END", "PartitionsFile",
           "Rule", "default_name", "normalized", "parse", "parse_base", "render"]

DEFAULT_RULE: Final = "Default=0x7fff, ipoib : ALL=limited, SELF=full ;"
"""Written when the base has no Default rule. Without a rule OpenSM behaves as
``ALL=limited, SELF=full`` but creates no IPoIB broadcast group for 0x7fff; ``ipoib`` keeps
IPoIB on the default partition working, and ``SELF=full`` (after ``ALL=limited``: the last
mention of a port wins) keeps the SM's own port a full member, so every port can reach it."""

_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
_NOT_OURS: Final = ("vfkeeper never writes that (was its section edited by hand?), so the file "
                    "was not installed; the file OpenSM has stays as it was")


@dataclass(frozen=True, slots=True)
class Rule:
    """One partition as the file defines it (entries with the same PKey merged)."""

    pkey: int
    name: str
    line: int
    """Where its first entry starts."""
    operator: bool
    """Defined in the operator's base, not in vfkeeper's section."""
    ipoib: bool
    members: Mapping[str, FileMembership] = field(default_factory=dict)
    """Port GUID (canonical) → membership, as OpenSM ends up with it."""
    keywords: tuple[tuple[Keyword, FileMembership], ...] = ()
    """``ALL``, ``SELF``, … with their membership, in file order."""


@dataclass(frozen=True, slots=True)
class PartitionsFile:
    """A parsed partitions file."""

    base: str
    """The operator's text: everything before vfkeeper's section (all of it when there is
    none)."""
    rules: Mapping[int, Rule]
    """PKey → rule, the default partition 0x7fff included."""
    has_section: bool = False

    @property
    def base_has_default(self) -> bool:
        rule = self.rules.get(DEFAULT_PKEY)
        return rule is not None and rule.operator

    def partitions(self, *, operator: bool) -> dict[int, Partition]:
        """The operator's (``operator_owned``) or vfkeeper's partitions, 0x7fff left out."""
        return {pkey: _partition(rule) for pkey, rule in self.rules.items()
                if rule.operator == operator and pkey != DEFAULT_PKEY}

    def view(self) -> SmView:
        both = self.partitions(operator=True) | self.partitions(operator=False)
        return SmView(MappingProxyType(dict(sorted(both.items()))))


def _partition(rule: Rule) -> Partition:
    members: dict[str, Membership] = {
        guid: "limited" if m == "limited" else "full" for guid, m in rule.members.items()}
    return Partition(pkey=rule.pkey, members=members, ipoib=rule.ipoib,
                     operator_owned=rule.operator, name=rule.name or None)


def default_name(pkey: int) -> str:
    """The name vfkeeper gives a partition that has none (OpenSM only logs names)."""
    return f"vfkeeper_{pkey:04x}"


# --- render -----------------------------------------------------------------------------------
def render(base: str, partitions: Iterable[Partition], *, base_path: str = "base file") -> str:
    """The file to install: ``base`` verbatim (plus a newline if it lacks its last one), then
    vfkeeper's section with ``partitions``. Raises :class:`PartitionsFileError` when the base
    itself is unsafe or defines one of ``partitions``' PKeys, :class:`InvalidPartitionError`
    for a name OpenSM's grammar cannot carry."""
    parsed = parse_base(base, base_path)
    parts = sorted(partitions, key=lambda p: p.pkey)
    for part in parts:
        clash = parsed.rules.get(part.pkey)
        if clash is not None:
            raise PartitionsFileError(base_path, clash.line,
                                      f"PKey {part.pkey:#06x} is defined here and is also one "
                                      "of vfkeeper's partitions; give the network another PKey "
                                      "or remove it from the base file",
                                      consequence=silent("merges the two into one partition"))
    out = [base, "\n" if base and not base.endswith("\n") else "", SECTION_BEGIN, "\n"]
    if not parsed.base_has_default:
        out += [DEFAULT_RULE, "\n"]
    for part in parts:
        out.append(_render_partition(part))
    out += [SECTION_END, "\n"]
    return "".join(out)


def _render_partition(part: Partition) -> str:
    name = part.name or default_name(part.pkey)
    if not _NAME.fullmatch(name):
        raise InvalidPartitionError(f"partition name {name!r} of {part.pkey:#06x}",
                                    "use 1-64 letters, digits and _ . + - (OpenSM's grammar "
                                    "gives the others a meaning)")
    header = f"{name}={part.pkey:#06x}{', ipoib' if part.ipoib else ''}:"
    if not part.members:
        return f"{header} ;\n"
    lines = [f"\t{guid}={membership}" for guid, membership in part.members.items()]
    return header + "\n" + ",\n".join(lines) + ";\n"


# --- parse ------------------------------------------------------------------------------------
def parse(text: str, path: str = "partitions file") -> PartitionsFile:
    """An installed (or to-be-installed) partitions file, with or without vfkeeper's section."""
    parser = Parser(path, base_only=False)
    parser.run(text)
    if parser.entries == 0:
        raise parser.error("no partition entry (the file is empty or only comments)")
    return _result(parser, text)


def parse_base(text: str, path: str = "base file") -> PartitionsFile:
    """The operator's base: may be empty, must not contain vfkeeper's section, and must close
    its last entry (vfkeeper's section follows it)."""
    parser = Parser(path, base_only=True)
    parser.run(text)
    return _result(parser, text)


def _result(parser: Parser, text: str) -> PartitionsFile:
    default = parser.rules.get(DEFAULT_PKEY)
    if default is not None and not default.sm_port_full:
        raise parser.error("the Default partition (0x7fff) leaves the SM's own port a limited "
                           "member: add SELF=full after ALL=limited",
                           silent("cuts every limited port off from the SM"), line=default.line)
    rules = {pkey: _rule(parser, pkey, b) for pkey, b in sorted(parser.rules.items())}
    base = text if parser.base_end is None else text[:parser.base_end]
    return PartitionsFile(base=base, rules=MappingProxyType(rules),
                          has_section=parser.base_end is not None)


def _rule(parser: Parser, pkey: int, building: Building) -> Rule:
    if not building.operator and pkey != DEFAULT_PKEY:
        if building.keywords:
            raise parser.error(f"{building.keywords[0][0]} in vfkeeper's partition "
                               f"{pkey:#06x}: vfkeeper's section lists port GUIDs only",
                               _NOT_OURS, line=building.line)
        if "both" in building.members.values():
            raise parser.error(f"'both' in vfkeeper's partition {pkey:#06x}: vfkeeper writes "
                               "full or limited only", _NOT_OURS, line=building.line)
    return Rule(pkey=pkey, name=building.name, line=building.line, operator=building.operator,
                ipoib=building.ipoib,
                members=MappingProxyType(dict(sorted(building.members.items()))),
                keywords=tuple(building.keywords))


def normalized(part: Partition) -> Partition:
    """``part`` as :func:`parse` reads it back from :func:`render`'s output (vfkeeper's own,
    with its name filled in)."""
    return replace(part, operator_owned=False, name=part.name or default_name(part.pkey))
