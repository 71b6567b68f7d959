"""The OpenSM backend's own promises, on the real OpenSM and a simulated fabric (ibsim).

* a change that would break the file is refused, the installed file stays byte for byte, and
  OpenSM keeps the tenant partitions — and OpenSM really does fail open on the refused file;
* the parser's verdicts are OpenSM's: what it calls a parse error makes OpenSM fail open, what
  it accepts OpenSM reads the same way, what it refuses as "read differently" OpenSM reads
  differently;
* the operator's base stays verbatim, its partitions untouched;
* reload by pidfile and by command; a dead pid is a clear error, and the file stays the truth;
* differences the SM leaves (a port not on the fabric, a full PKey table) are reported.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import pytest
from ibsim_fabric import PORT_GUIDS, Fabric, expected_tables

from vfkeeper.sm.errors import OperatorPartitionError, PartitionsFileError, SmUnavailableError
from vfkeeper.sm.opensm import OpenSmBackend, install_atomically
from vfkeeper.sm.opensm_tools import CommandReload, Reload, SignalReload, SmpqueryReadback
from vfkeeper.sm.partitions_file import DEFAULT_RULE, parse, render
from vfkeeper.sm.protocol import ChangeSet, Partition

pytestmark = pytest.mark.ibsim

P = PORT_GUIDS
A, B = 0x0A01, 0x0A02
BASE = f"# the operator's\nstorage=0x0b01, ipoib : {P[3]}=full ;\n"
INITIAL_PARTITIONS = render(BASE, [])
ALL_FULL = frozenset({0xFFFF})


class CountingReload:
    def __init__(self, inner: Reload) -> None:
        self.inner = inner
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        self.inner()


@pytest.fixture
def base_file(fabric: Fabric) -> Path:
    """The operator's base, and the fabric back to it alone (file and ports)."""
    path = fabric.workdir / "base.conf"
    path.write_text(BASE)
    install_and_sweep(fabric, render(BASE, []))
    assert_tables(fabric, tenants({}))
    return path


def backend(fabric: Fabric, base_file: Path, reload: Reload | None = None,
            **kwargs: object) -> OpenSmBackend:
    return OpenSmBackend(fabric.partitions_file, base_file,
                         reload or SignalReload(fabric.pidfile),
                         SmpqueryReadback(fabric.runner), **kwargs)  # type: ignore[arg-type]


def tenants(extra: dict[str, set[int]]) -> dict[str, frozenset[int]]:
    """Every port's table: default (limited), the base's storage partition on P[3], plus
    ``extra``."""
    out = {g: {0x7FFF} | extra.get(g, set()) for g in P}
    out[P[3]].add(0x8B01)
    return {g: frozenset(t) for g, t in out.items()}


def assert_tables(fabric: Fabric, expected: dict[str, frozenset[int]]) -> None:
    assert fabric.wait_for_tables(expected) == expected


def install_and_sweep(fabric: Fabric, text: str) -> bool:
    """Put ``text`` in place behind vfkeeper's back, HUP OpenSM and wait for its sweep;
    whether OpenSM failed open on it."""
    install_atomically(fabric.partitions_file, text)
    return hup_and_sweep(fabric)


def hup_and_sweep(fabric: Fabric) -> bool:
    """HUP OpenSM and wait for the sweep; whether it failed open on the file."""
    fail_opens, before = fabric.fail_opens(), fabric.heavy_sweeps()
    fabric.hup()
    deadline = time.monotonic() + 10
    while fabric.heavy_sweeps() <= before:
        assert time.monotonic() < deadline, f"OpenSM did not sweep after a HUP\n{fabric.logs()}"
        time.sleep(0.02)
    return fabric.fail_opens() > fail_opens


# --- (a) a broken file is never installed ------------------------------------------------------
BAD_BASE = BASE + "evil=0x0c01 : 0x0002c9zz00a00041=full ;\n"


def test_a_base_with_a_bad_guid_is_refused_and_opensm_keeps_the_tenants(
        fabric: Fabric, base_file: Path) -> None:
    reload = CountingReload(SignalReload(fabric.pidfile))
    sm = backend(fabric, base_file, reload)
    sm.apply(ChangeSet(ensure=frozenset({A}), add={A: {P[0]: "full", P[1]: "limited"}}))
    installed = fabric.partitions_file.read_bytes()
    base_file.write_text(BAD_BASE)
    with pytest.raises(PartitionsFileError, match=r"base.conf:3: bad port GUID") as exc:
        sm.apply(ChangeSet(add={A: {P[2]: "full"}}))
    assert "not installed" in str(exc.value)
    assert fabric.partitions_file.read_bytes() == installed and reload.calls == 1
    assert not hup_and_sweep(fabric)  # OpenSM re-reads what is installed: the tenants stay
    assert_tables(fabric, tenants({P[0]: {0x8A01}, P[1]: {0x0A01}}))


def test_a_renderer_that_writes_a_bad_line_is_refused(fabric: Fabric, base_file: Path) -> None:
    good = backend(fabric, base_file)
    good.apply(ChangeSet(add={A: {P[0]: "full", P[1]: "limited"}}))
    installed = fabric.partitions_file.read_bytes()

    def typo(base: str, parts: Iterable[Partition]) -> str:
        return render(base, parts).replace("=limited", "=limitd")

    reload = CountingReload(SignalReload(fabric.pidfile))
    sm = backend(fabric, base_file, reload, render=typo)
    with pytest.raises(PartitionsFileError, match="unknown membership 'limitd'"):
        sm.apply(ChangeSet(add={A: {P[2]: "limited"}}))
    assert fabric.partitions_file.read_bytes() == installed and reload.calls == 0
    assert not hup_and_sweep(fabric)
    assert_tables(fabric, tenants({P[0]: {0x8A01}, P[1]: {0x0A01}}))


def test_opensm_really_fails_open_on_the_file_vfkeeper_refused(fabric: Fabric,
                                                                base_file: Path) -> None:
    """What the two tests above prevent: installed anyway, that file drops every tenant
    partition and makes every port a full member of the default partition."""
    backend(fabric, base_file).apply(ChangeSet(add={A: {P[0]: "full", P[1]: "limited"}}))
    refused = render(BASE, [Partition(A, {P[0]: "full", P[1]: "limited"})]).replace(
        "storage=0x0b01", "evil=0x0c01 : 0x0002c9zz00a00041=full ;\nstorage=0x0b01")
    with pytest.raises(PartitionsFileError, match="bad port GUID"):
        parse(refused)
    assert install_and_sweep(fabric, refused)
    assert_tables(fabric, dict.fromkeys(P, ALL_FULL))


# --- the parser's verdicts are OpenSM's -----------------------------------------------------------
FAILS_OPEN = {
    "empty": "",
    "comments only": "# nothing\n",
    "zero GUID": f"{DEFAULT_RULE}\nt=0x0c01: 0x0=full, {P[0]}=full;\n",
    "bad GUID": f"{DEFAULT_RULE}\nt=0x0c01: {P[0]}x=full;\n",
    "missing ;": f"{DEFAULT_RULE}\nt=0x0c01: {P[0]}=full\nu=0x0c02: {P[1]}=full;\n",
    "stray ;": f"{DEFAULT_RULE}\nt=0x0c01: {P[0]}=full;;\n",
    "no header": f"{DEFAULT_RULE}\n{P[0]}=full;\n",
    "bad PKey": f"{DEFAULT_RULE}\nt=0xq: {P[0]}=full;\n",
    "lone ; then text": f"{DEFAULT_RULE}\nt=0x0c01: {P[0]}=full\n ; u=0x0c02: {P[1]}=full;\n",
    "lone ; closing": f"{DEFAULT_RULE}\nt=0x0c01: {P[0]}=full\n ;\n",
}


@pytest.mark.parametrize("text", FAILS_OPEN.values(), ids=FAILS_OPEN.keys())
def test_what_the_parser_calls_unparsable_makes_opensm_fail_open(
        fabric: Fabric, base_file: Path, text: str) -> None:
    with pytest.raises(PartitionsFileError, match="not installed"):
        parse(text)
    assert install_and_sweep(fabric, text)
    assert_tables(fabric, dict.fromkeys(P, ALL_FULL))


def dec(guid: str) -> str:
    return str(int(guid, 16))


ACCEPTED = (f"{DEFAULT_RULE}\n"
            f"p1 = 0x0c01 , i , d=f :   {P[0]}, {P[1]}=l, {P[2]}=b ;  # abbreviations\n"
            f"0x0c02: {P[3]}=full,\n"
            f"\t{P[4]}   ; # closed\n"
            f"p3=0x0c03: {P[5]}=limited; p4=0x0c06: {P[5]}=full, ;\n"
            f"again=0x0c01: {P[6]}=full;\n"
            f"p1=0x0c01: {P[0]}=limited;\n"
            "mc=0x0c04,ipoib,mtu=4:\n"
            "   mgid=ff12:401b::0707,sl=0 # an IPv4 group\n"
            f"   {P[7]}=full;\n"
            f"decimal=3077: {dec(P[7])}=limited, NONE;\n")


def test_what_the_parser_accepts_opensm_reads_the_same_way(fabric: Fabric,
                                                           base_file: Path) -> None:
    view = parse(ACCEPTED).view()
    expected = expected_tables(view, P)
    assert expected[P[0]] == {0x7FFF, 0x0C01}  # last mention wins
    assert expected[P[2]] == {0x7FFF, 0x8C01}  # both is full without allow_both_pkeys
    assert not install_and_sweep(fabric, ACCEPTED)
    assert_tables(fabric, expected)


READ_DIFFERENTLY = {  # PKey and text for P[0] -> the table entry OpenSM gives P[0]
    "unknown membership": ("0x0c01", f"{P[0]}=fulll", 0x0C01),
    "empty membership": ("0x0c01", f"{P[0]}=", 0x8C01),
    "CRLF": ("0x0c01", f"{P[0]}=full\r", 0x0C01),
    "octal PKey": ("03001", f"{P[0]}=full", 0x8601),
    "PKey over 16 bits": ("0x10c01", f"{P[0]}=limited", 0x0C01),
}


@pytest.mark.parametrize(("pkey", "member", "entry"), READ_DIFFERENTLY.values(),
                         ids=READ_DIFFERENTLY.keys())
def test_what_the_parser_refuses_as_read_differently_opensm_reads_differently(
        fabric: Fabric, base_file: Path, pkey: str, member: str, entry: int) -> None:
    text = f"{DEFAULT_RULE}\nt={pkey}: {member};\n"
    with pytest.raises(PartitionsFileError, match="OpenSM would accept this but"):
        parse(text)
    assert not install_and_sweep(fabric, text)
    assert fabric.wait_for_tables({P[0]: frozenset({0x7FFF, entry})}) == {
        P[0]: frozenset({0x7FFF, entry})}


# --- (b) the operator's base ---------------------------------------------------------------------
ODD_BASE = (f"# Operator's file, odd but valid.\n\n"
            f"storage = 0x0b01 , ipoib, mtu=4 :\n\t{P[3]} = full , # the storage head\n"
            f"\t{P[4]}   ;\n"
            "everyone=0x0b02: ALL_CAS=limited;\n"
            "Default=0x7fff, ipoib:\n   mgid=ff12:601b::16  # MLDv2 routers\n"
            "   ALL=limited, SELF=full;")  # no newline at the end


def test_the_operators_base_stays_verbatim_and_its_partitions_untouched(
        fabric: Fabric, base_file: Path) -> None:
    base_file.write_text(ODD_BASE)
    reload = CountingReload(SignalReload(fabric.pidfile))
    sm = backend(fabric, base_file, reload)
    sm.apply(ChangeSet(add={A: {P[0]: "full"}, B: {P[1]: "limited"}}))
    sm.apply(ChangeSet(remove={A: frozenset({P[0]})}, add={A: {P[2]: "limited"}}))
    text = fabric.partitions_file.read_text()
    assert text.startswith(ODD_BASE + "\n") and DEFAULT_RULE not in text
    installed = fabric.partitions_file.read_bytes()
    for touching in (ChangeSet(add={0x0B01: {P[0]: "full"}}),
                     ChangeSet(remove={0x0B02: frozenset({P[1]})}),
                     ChangeSet(ensure=frozenset({0x0B02}))):
        with pytest.raises(OperatorPartitionError, match=r"base\.conf:"):
            sm.apply(touching)
    assert fabric.partitions_file.read_bytes() == installed and reload.calls == 2
    view = sm.read()
    assert view.partitions[0x0B01].operator_owned and view.partitions[0x0B02].operator_owned
    everyone = {g: {0x7FFF, 0x0B02} for g in P}
    everyone[P[3]].add(0x8B01)
    everyone[P[4]].add(0x0B01)
    everyone[P[1]].add(0x0A02)
    everyone[P[2]].add(0x0A01)
    assert_tables(fabric, {g: frozenset(t) for g, t in everyone.items()})


# --- (c) reload ------------------------------------------------------------------------------
def test_reload_by_an_operator_command(fabric: Fabric, base_file: Path) -> None:
    sm = backend(fabric, base_file, CommandReload(("kill", "-HUP", str(fabric.opensm_pid))))
    result = sm.apply(ChangeSet(add={A: {P[0]: "full", P[1]: "limited"}}))
    assert result.verified and result.differences == ()
    assert_tables(fabric, tenants({P[0]: {0x8A01}, P[1]: {0x0A01}}))


def test_a_dead_pid_is_a_clear_error_the_file_stays_and_the_next_apply_reloads(
        fabric: Fabric, base_file: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = fabric.workdir / "stale.pid"
    stale.write_text(f"{dead.pid}\n")
    sm = backend(fabric, base_file, SignalReload(stale))
    with pytest.raises(SmUnavailableError, match=f"the pid {dead.pid} in .*stale.pid is not "
                       "running.*installed and valid"):
        sm.apply(ChangeSet(add={A: {P[0]: "full"}}))
    assert dict(sm.read().members_of(A)) == {P[0]: "full"}  # the new file is the truth
    stale.write_text(f"{fabric.opensm_pid}\n")  # OpenSM found again
    assert sm.apply(ChangeSet()).differences == ()  # nothing new, but the owed reload
    assert_tables(fabric, tenants({P[0]: {0x8A01}}))


# --- differences are reported, not hidden ----------------------------------------------------
def test_a_port_that_is_not_on_the_fabric_is_reported(fabric: Fabric, base_file: Path) -> None:
    ghost = "0x0002c90300a00f01"
    sm = backend(fabric, base_file, settle_timeout=0.5)
    result = sm.apply(ChangeSet(add={A: {P[0]: "full", ghost: "full"}}))
    assert result.verified
    assert len(result.differences) == 1 and ghost in result.differences[0]
    assert "is not on the fabric" in result.differences[0]
    assert sm.apply(ChangeSet(remove={A: frozenset({ghost})})).differences == ()


def test_a_full_pkey_table_is_reported(fabric: Fabric, base_file: Path) -> None:
    """ibsim's HCA ports hold 64 PKeys (mlx5: 128): the default partition and 63 more."""
    sm = backend(fabric, base_file, settle_timeout=1.5)
    result = sm.apply(ChangeSet(add={0x0100 + i: {P[0]: "full"} for i in range(64)}))
    assert result.verified and len(result.differences) == 1
    assert P[0] in result.differences[0] and "its PKey table has" in result.differences[0]
    table = fabric.table(P[0])
    assert table is not None and len(table) == 64
