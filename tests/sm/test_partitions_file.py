"""The partitions file vfkeeper renders, and the parser that refuses what OpenSM would refuse or
read differently (``opensm/osm_prtn_config.c``). Pure: no OpenSM here; ``test_opensm_ibsim.py``
checks the same verdicts against the real OpenSM."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vfkeeper.sm.errors import InvalidPartitionError, PartitionsFileError
from vfkeeper.sm.partitions_file import (
    DEFAULT_RULE,
    MAX_LINE_BYTES,
    SECTION_BEGIN,
    SECTION_END,
    normalized,
    parse,
    parse_base,
    render,
)
from vfkeeper.sm.protocol import Partition

G1, G2, G3 = "0x0002c90300a00001", "0x0002c90300a00011", "0x0002c90300a00021"
BASE = "# the operator's own\nstorage=0x0b01, ipoib: 0x0002c90300a00031=full ;\n"


# --- render -----------------------------------------------------------------------------------
def test_the_base_comes_first_byte_for_byte_then_vfkeepers_section() -> None:
    text = render(BASE, [Partition(0x0A01, {G1: "full"})])
    assert text.startswith(BASE + SECTION_BEGIN + "\n")
    assert text.endswith(SECTION_END + "\n")


def test_one_guid_per_line_explicit_pkey_and_membership_in_a_stable_order() -> None:
    parts = [Partition(0x0A02, {G3: "limited"}), Partition(0x0A01, {G2: "limited", G1: "full"})]
    text = render("", parts)
    assert text == (f"{SECTION_BEGIN}\n{DEFAULT_RULE}\n"
                    "vfkeeper_0a01=0x0a01, ipoib:\n"
                    f"\t{G1}=full,\n"
                    f"\t{G2}=limited;\n"
                    "vfkeeper_0a02=0x0a02, ipoib:\n"
                    f"\t{G3}=limited;\n"
                    f"{SECTION_END}\n")
    assert render("", reversed(parts)) == text


def test_an_empty_partition_and_one_without_ipoib_keep_their_name() -> None:
    text = render("", [Partition(0x0A01, ipoib=False, name="tenant-a")])
    assert "\ntenant-a=0x0a01: ;\n" in text


def test_the_default_rule_is_written_only_when_the_base_has_none() -> None:
    assert DEFAULT_RULE in render(BASE, [])
    base = "Default=0x7fff : ALL=full ;\n"
    text = render(base, [])
    assert DEFAULT_RULE not in text and parse(text).rules[0x7FFF].operator


def test_a_base_without_its_last_newline_gets_one_and_nothing_else() -> None:
    text = render(BASE.rstrip("\n"), [])
    assert text.startswith(BASE + SECTION_BEGIN)


@pytest.mark.parametrize(("base", "problem"), [
    ("storage=0x0b01: 0x1=full\n", "no closing ';'"),
    (f"{SECTION_BEGIN}\n", "contains vfkeeper's section marker"),
    ("a=0x0a01: 0x1=full;\n", "also one of vfkeeper's partitions"),
    ("a=0x0b01: 0x0=full;\n", "port GUID 0"),
])
def test_render_refuses_a_base_it_cannot_build_on(base: str, problem: str) -> None:
    with pytest.raises(PartitionsFileError, match=problem) as exc:
        render(base, [Partition(0x0A01, {G1: "full"})])
    assert exc.value.path == "base file" and exc.value.line == 1


@pytest.mark.parametrize("name", ["a b", "a,b", "a:b", "a;b", "a#b", "a=b", "", "x" * 65])
def test_render_refuses_a_name_the_grammar_cannot_carry(name: str) -> None:
    with pytest.raises(InvalidPartitionError, match="partition name"):
        render("", [Partition(0x0A01, name=name or "\n")])


# --- parse: what it reads ---------------------------------------------------------------------
def test_parse_marks_the_bases_partitions_operator_owned() -> None:
    view = parse(render(BASE, [Partition(0x0A01, {G1: "full", G2: "limited"})])).view()
    assert view.partitions[0x0B01].operator_owned
    assert dict(view.members_of(0x0B01)) == {"0x0002c90300a00031": "full"}
    assert not view.partitions[0x0A01].operator_owned
    assert dict(view.members_of(0x0A01)) == {G1: "full", G2: "limited"}
    assert 0x7FFF not in view.partitions


def test_parse_reads_opensms_documented_examples_as_opensm_does() -> None:
    # doc/partition-config.txt, "Examples" (PKeys added where the example omits them).
    text = ("Default=0x7fff : ALL, ALL_SWITCHES=full, SELF=full ;\n"
            "NewPartition=0x10 , ipoib : 0x123456=full, 0x3456789034=limi, 0x2134af2306 ;\n"
            "YetAnotherOne = 0x300 : SELF=full ;\n"
            "YetAnotherOne = 0x300 : ALL=limited ;\n"
            "ShareIO = 0x80 , defmember=full : 0x123451, 0x123452;\n"
            "# 0x123453, 0x123454 will be limited\n"
            "ShareIO = 0x80 : 0x123453, 0x123454, 0x123455=full;\n"
            "ShareIO = 0x80 , defmember=full : 0x12345b, 0x12345c=limited, 0x12345d;\n"
            "other=0x20,ipoib:\n"
            "        mgid=ff12:401b::0707,sl=1 # random IPv4 group\n"
            "        mgid=ff12:601b::16    # MLDv2-capable routers\n"
            "        mgid=ff12::1,sl=1,Q_Key=0xDEADBEEF,rate=3,mtu=2 # random group\n"
            "        ALL=full;\n")
    parsed = parse(text)
    assert dict(parsed.rules[0x10].members) == {
        "0x0000000000123456": "full", "0x0000003456789034": "limited",
        "0x0000002134af2306": "limited"}
    assert parsed.rules[0x10].ipoib and not parsed.rules[0x80].ipoib
    assert parsed.rules[0x300].keywords == (("SELF", "full"), ("ALL", "limited"))
    share = parsed.rules[0x80].members
    assert share["0x0000000000123451"] == "full" and share["0x0000000000123453"] == "limited"
    assert share["0x000000000012345c"] == "limited" and share["0x000000000012345d"] == "full"
    assert parsed.rules[0x80].name == "ShareIO" and parsed.rules[0x20].keywords == (
        ("ALL", "full"),)


def test_abbreviations_both_and_repeats_mean_what_they_mean_to_opensm() -> None:
    text = ("p=0x10, i, d=f: 0x1, 0x2=l, 0x3=b, 0x4=full, 0x4=limited;\n"
            "0x11: A=f, S;\n")
    parsed = parse(text)
    assert dict(parsed.rules[0x10].members) == {
        "0x0000000000000001": "full", "0x0000000000000002": "limited",
        "0x0000000000000003": "both", "0x0000000000000004": "limited"}
    assert parsed.rules[0x10].ipoib
    assert parsed.rules[0x11].keywords == (("ALL", "full"), ("SELF", "limited"))
    assert dict(parsed.view().members_of(0x10))["0x0000000000000003"] == "full"


def test_entries_may_span_lines_and_share_one() -> None:
    text = "a=0x1:\n  0x1=full,\n\n  0x2=limited  ; # closed\nb=0x2: 0x3=full; c=0x3:ALL;\n"
    parsed = parse(text)
    assert set(parsed.rules) == {1, 2, 3}
    assert dict(parsed.rules[1].members) == {"0x0000000000000001": "full",
                                             "0x0000000000000002": "limited"}


def test_a_line_of_the_longest_length_opensm_reads_whole_is_accepted() -> None:
    head = "a=0x1: "
    line = head + " " * (MAX_LINE_BYTES - len(head) - len("0x1;")) + "0x1;"
    assert len(line) == MAX_LINE_BYTES
    parse(line + "\n")
    with pytest.raises(PartitionsFileError, match="longer than"):
        parse(" " + line + "\n")


# --- parse: what it refuses -------------------------------------------------------------------
REFUSED = [
    # (text, line, what the error says) — OpenSM itself refuses these and fails open:
    ("", None, "no partition entry"),
    ("# only a comment\n\n", None, "no partition entry"),
    ("a=0x1: 0x0=full;\n", 1, "port GUID 0"),
    ("a=0x1: 0xzz=full;\n", 1, "bad port GUID"),
    ("a=0x1: 0x1=full\nb=0x2: 0x2=full;\n", 2, "missing ';'"),
    ("a=0x1: 0x1=full;;\n", 1, "right after another ';'"),
    ("a=0x1 0x1=full;\n", 1, "no partition definition"),
    ("a=0xq: 0x1;\n", 1, "is not a number"),
    ("a=-1: 0x1;\n", 1, "is not a number"),
    ("a=0x1:\n 0x1=full\n", 1, "no closing ';'"),
    ("a=0x1: 0x1=full\n ; b=0x2: 0x2;\n", 2, "nothing before it on its line"),
    ("a=0x1: 0x1=full;;b=0x2: 0x2\n", 1, "right after another ';'"),
    ("a=0x1: 0x1=full\n ; # closed\n", 2, "nothing before it on its line"),
    # OpenSM accepts these but reads them differently:
    ("a=0x1: 0x1=fulll;\n", 1, "unknown membership 'fulll'"),
    ("a=0x1: 0x1=;\n", 1, "without a membership"),
    ("a=0x1: 0x1=full;\r\n", 1, "control character U\\+000D"),
    ("a=0x1: 0x1\x00=full;\n", 1, "control character U\\+0000"),
    ("a=0x1, ipob: 0x1;\n", 1, "unknown partition flag 'ipob'"),
    ("a=0x1,, ipoib: 0x1;\n", 1, "empty partition flag"),
    ("a=0x1, defmember=x: 0x1;\n", 1, "unknown membership 'x'"),
    ("a=0x1, mtu=0: 0x1;\n", 1, "outside"),
    ("a=0x1, sl=16: 0x1;\n", 1, "outside"),
    ("a=0x1, rate: 0x1;\n", 1, "without a value"),
    ("a=0x1: 012;\n", 1, "starts with 0"),
    ("a=010: 0x1;\n", 1, "starts with 0"),
    ("a=0x1: 0x10000000000000000;\n", 1, "more than 64 bits"),
    ("a=0x1: 0xffffffffffffffff;\n", 1, "all-ones"),
    ("a=0x18001: 0x1;\n", 1, "more than 16 bits"),
    ("a=0x8a01: 0x1;\n", 1, "membership bit"),
    ("a=0: 0x1;\n", 1, "PKey 0"),
    ("a: 0x1;\n", 1, "has no PKey"),
    ("a=0x1: =full;\n", 1, "without a port GUID"),
    ("a=0x1:\n mgid=ff12::1, 0x5=full;\n", 2, "after 'mgid='"),
    ("a=0x1:\n mgid=fe80::1;\n", 2, "not a multicast GID"),
    ("a=0x1:\n mgid=ff12::1; b=0x2: 0x1;\n", 2, "text after 'mgid="),
    ("a=0x1:\n mgid=ff12::1 # mtu=5\n;\n", 2, "comment after a flag-less"),
    ("a=0x1, ipoib:\n mgid=ff12:401b::1,rate=4;\n", 2, "rate 4 differs"),
    ("a=0x1, ipoib:\n mgid=ff12:401b:8002::1;\n", 2, "neither 0 nor 0x8001"),
    ("a=0x1: " + "0x1," * 1100 + "0x1;\n", 1, "longer than 4093 bytes"),
    # a working fabric needs the SM's port to be a full member of the default partition:
    ("Default=0x7fff: ALL=limited;\n", 1, "SM's own port a limited member"),
    ("Default=0x7fff: SELF=full, ALL;\n", 1, "SM's own port a limited member"),
    # vfkeeper's section:
    (f"a=0x1: 0x1;\n{SECTION_BEGIN}\na=0x1: 0x2=full;\n{SECTION_END}\n", 3, "defined both"),
    (f"Default=0x7fff: ALL;\n{SECTION_BEGIN}\n{DEFAULT_RULE}\n{SECTION_END}\n", 3,
     "defined both"),
    (f"{SECTION_BEGIN}\nb=0x2: ALL=full;\n{SECTION_END}\n", 2, "lists port GUIDs only"),
    (f"{SECTION_BEGIN}\nb=0x2: 0x1=both;\n{SECTION_END}\n", 2, "full or limited only"),
    (f"{SECTION_BEGIN}\nb=0x2: 0x1=full;\n", None, "no end marker"),
    (f"{SECTION_BEGIN}\nb=0x2: 0x1=full;\n{SECTION_END}\nc=0x3: 0x1;\n", 4, "text after"),
    (f"a=0x1: 0x1\n{SECTION_BEGIN}\n;\n{SECTION_END}\n", 1, "no closing ';'"),
    (f"{SECTION_END}\na=0x1: 0x1;\n", 1, "out of order"),
]


@pytest.mark.parametrize(("text", "line", "problem"), REFUSED)
def test_parse_refuses_with_the_line(text: str, line: int | None, problem: str) -> None:
    with pytest.raises(PartitionsFileError, match=problem) as exc:
        parse(text, "/etc/opensm/partitions.conf")
    assert exc.value.line == line
    assert str(exc.value).startswith("/etc/opensm/partitions.conf" + (f":{line}" if line else ""))
    assert "not installed" in str(exc.value)


def test_the_base_may_be_empty_but_an_installed_file_may_not() -> None:
    assert parse_base("# nothing yet\n").rules == {}
    with pytest.raises(PartitionsFileError, match="no partition entry"):
        parse("# nothing yet\n")


# --- properties -------------------------------------------------------------------------------
GUIDS = st.integers(1, (1 << 64) - 2).map(lambda v: f"0x{v:016x}")
MEMBERS = st.dictionaries(GUIDS, st.sampled_from(["full", "limited"]), max_size=6)
NAMES = st.none() | st.from_regex(r"[A-Za-z0-9_.+-]{1,12}", fullmatch=True)
OPERATOR_PKEYS = st.integers(0x7000, 0x7FFE)
"""The bases below use these; vfkeeper's partitions use the others."""
BASES = st.lists(st.tuples(OPERATOR_PKEYS, GUIDS, st.sampled_from(
    ["{n}={p:#x}: {g}=full ;\n", "# c\n{n}={p} , ipoib :\n\t{g} ,\n ALL=limited ;\n",
     "{n}={p:#06x}, defmember=full: {g}; # {n}\n", "\n\n"])), max_size=3).map(
    lambda items: "".join(f.format(n=f"op{i}", p=p, g=g) for i, (p, g, f) in enumerate(items)))
VFK_PARTITIONS = st.lists(st.builds(Partition, pkey=st.integers(1, 0x6FFF), members=MEMBERS,
                                    ipoib=st.booleans(), name=NAMES),
                          max_size=5, unique_by=lambda p: p.pkey)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(base=BASES, parts=VFK_PARTITIONS)
def test_render_then_parse_gives_back_what_was_rendered(base: str,
                                                        parts: list[Partition]) -> None:
    text = render(base, parts)
    parsed = parse(text)
    assert parsed.partitions(operator=False) == {p.pkey: normalized(p) for p in parts}
    assert parsed.partitions(operator=True) == parse_base(base).partitions(operator=True)
    assert parsed.base in (base, base + "\n") and text.startswith(base)
    assert render(parsed.base, parsed.partitions(operator=False).values()) == text
    # vfkeeper's member lines are read by a fast path; the general one reads them the same
    slow = text.replace("=full,\n", "=full ,\n").replace("=limited;\n", "=limited ;\n")
    assert parse(slow).rules == parsed.rules


GRAMMAR = st.sampled_from(list("0x1aF9=,:;# \t\n\rALSEFNOfulimtdbgp7-")) | st.characters()


@settings(max_examples=500)
@given(text=st.text(GRAMMAR, max_size=80) | st.builds(
    lambda t, i, junk: t[:i] + junk + t[i:],
    st.just(render(BASE, [Partition(0x0A01, {G1: "full", G2: "limited"})])),
    st.integers(0, 400), st.text(GRAMMAR, max_size=6)))
def test_any_text_gives_a_file_or_a_partitions_file_error(text: str) -> None:
    try:
        parsed = parse(text)
    except PartitionsFileError as exc:
        assert exc.problem and "not installed" in str(exc)
        return
    parsed.view()  # every partition it read is a valid value
