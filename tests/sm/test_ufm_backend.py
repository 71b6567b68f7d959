"""What the UFM backend does beyond the contract, against the UFM server written from UFM's
documentation: credentials and TLS, UFM's answers reaching the operator verbatim, failures
that must read as "unavailable", the removal call of older UFMs, what goes on the wire, and
that a batch vfkeeper may not apply sends nothing."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from tls_certs import TestCa, make_ca
from ufm_server import MONITORING_ONLY, Fault, UfmPKey, UfmServer, User

from vfkeeper.sm.errors import (
    OperatorPartitionError,
    SmConfigError,
    SmRefusedError,
    SmUnavailableError,
)
from vfkeeper.sm.protocol import ChangeSet
from vfkeeper.sm.ufm import MAX_ANSWER, BasicAuth, TokenAuth, UfmBackend

A, B = 0x0A01, 0x0A02
OPERATOR = 0x0B01
G = [f"0x0002c903000000{n:02x}" for n in range(1, 5)]
PASSWORD = "Sup3r-s3cret"
ADMIN = BasicAuth("admin", PASSWORD)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return make_ca(Path(tmp_path_factory.mktemp("ufm-ca")))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCa:
    return make_ca(Path(tmp_path_factory.mktemp("other-ca")), name="someone else's CA")


def serve(ca: TestCa | None, **options: object) -> UfmServer:
    options.setdefault("users", [User("admin", PASSWORD), User("monitor", PASSWORD,
                                                               MONITORING_ONLY)])
    options.setdefault("pkeys", [UfmPKey(OPERATOR, {G[3]: "full"}, name="storage")])
    return UfmServer(tls=ca, **options)  # type: ignore[arg-type]


def backend(ufm: UfmServer, ca: TestCa | None, auth: BasicAuth | TokenAuth = ADMIN,
            **options: object) -> UfmBackend:
    options.setdefault("owned", {A, B})
    options.setdefault("timeout", 10)
    if ca is not None:
        options.setdefault("ca_file", ca.ca_file)
    return UfmBackend(ufm.url, auth, **options)  # type: ignore[arg-type]


@pytest.fixture
def ufm(ca: TestCa) -> Iterator[UfmServer]:
    with serve(ca) as server:
        yield server


def boot(pkey: int = A, *guids: str) -> ChangeSet:
    return ChangeSet(ensure=frozenset({pkey}), add={pkey: dict.fromkeys(guids or G[:2], "full")})


# ---- credentials ---------------------------------------------------------------------

def test_a_wrong_password_is_a_401_refusal_that_says_to_check_the_credentials(
        ufm: UfmServer, ca: TestCa) -> None:
    wrong = "not-the-Passw0rd"
    with pytest.raises(SmRefusedError) as caught:
        backend(ufm, ca, BasicAuth("admin", wrong)).read()
    message = str(caught.value)
    assert caught.value.status == 401
    assert "HTTP 401" in message and "check the UFM user name and password" in message
    assert wrong not in message and PASSWORD not in message
    assert "401 Unauthorized" in caught.value.answer  # UFM's own page, verbatim


def test_a_revoked_token_is_refused_with_401(ufm: UfmServer, ca: TestCa) -> None:
    verify = ssl.create_default_context(cafile=ca.ca_file)
    with httpx.Client(base_url=ufm.url, auth=("admin", PASSWORD), verify=verify) as admin:
        token = admin.post("/ufmRest/app/tokens").json()["access_token"]
        sm = backend(ufm, ca, TokenAuth(token))
        sm.read()
        assert admin.post("/ufmRest/app/tokens/revoke",
                          files={"token": (None, token)}).status_code == 200
    with pytest.raises(SmRefusedError, match=r"HTTP 401.*revoked") as caught:
        sm.read()
    assert token not in str(caught.value)


def test_a_user_who_may_only_watch_can_read_but_a_change_is_refused_in_ufms_words(
        ufm: UfmServer, ca: TestCa) -> None:
    sm = backend(ufm, ca, BasicAuth("monitor", PASSWORD))
    assert OPERATOR in sm.read().partitions
    with pytest.raises(SmRefusedError) as caught:
        sm.apply(boot())
    assert caught.value.status == 403
    assert caught.value.answer == '{"error": "User monitor is not allowed to perform this action"}'
    assert "Monitoring_Only" in str(caught.value)  # the hint names the role to look at


def test_credentials_never_reach_logs_repr_or_errors(ufm: UfmServer, ca: TestCa,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    # Set on the loggers themselves: an earlier test may have run the agent's log set-up,
    # which gives "vfkeeper" and "httpx" levels of their own (caplog restores them after).
    for name in (None, "vfkeeper", "httpx", "httpcore"):
        caplog.set_level(logging.DEBUG, logger=name)
    sm = backend(ufm, ca)
    sm.apply(boot())
    sm.apply(ChangeSet(remove={A: frozenset({G[0]})}))
    with pytest.raises(SmRefusedError) as caught:
        backend(ufm, ca, BasicAuth("admin", "typo" + PASSWORD)).read()
    texts = [caplog.text, repr(sm), repr(ADMIN), str(caught.value)]
    assert caplog.records  # something was logged, so the check below means something
    assert not [t for t in texts if PASSWORD in t]


def test_a_url_with_credentials_in_it_is_refused_without_echoing_them(ufm: UfmServer) -> None:
    url = ufm.url.replace("https://", f"https://admin:{PASSWORD}@")
    with pytest.raises(SmConfigError, match="--ufm-user") as caught:
        UfmBackend(url, ADMIN, owned=set())
    assert PASSWORD not in str(caught.value)


# ---- TLS -------------------------------------------------------------------------------

def test_tls_with_the_test_ca_works(ufm: UfmServer, ca: TestCa) -> None:
    assert backend(ufm, ca).version() == "6.22.1-5"


def test_a_certificate_the_given_ca_did_not_sign_is_refused_clearly(
        ufm: UfmServer, other_ca: TestCa) -> None:
    with pytest.raises(SmConfigError) as caught:
        backend(ufm, other_ca).read()
    message = str(caught.value)
    assert "could not be verified" in message and str(other_ca.ca_file) in message
    assert "--ufm-ca-file" in message
    assert ufm.requests == []  # the handshake failed: not a byte of HTTP reached UFM


def test_without_a_ca_file_the_system_trust_store_is_used_and_refuses_a_private_ca(
        ufm: UfmServer, ca: TestCa) -> None:
    with pytest.raises(SmConfigError, match="system's trusted CAs"):
        backend(ufm, None).read()


def test_plain_http_needs_the_insecure_flag(ca: TestCa) -> None:
    with serve(None) as plain:
        with pytest.raises(SmConfigError, match=r"plain http.*--ufm-insecure"):
            backend(plain, None)
        assert backend(plain, None, insecure=True).read().partitions[OPERATOR].operator_owned


def test_insecure_turns_verification_off_and_says_so(
        ufm: UfmServer, ca: TestCa, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(SmConfigError, match="not both"):
        backend(ufm, ca, insecure=True)
    sm = UfmBackend(ufm.url, ADMIN, owned=set(), insecure=True)
    assert OPERATOR in sm.read().partitions
    assert "verification of UFM" in caplog.text and "is off" in caplog.text


@pytest.mark.parametrize("content", [None, "not a certificate\n"])
def test_a_ca_file_that_cannot_be_read_is_a_setting_error(
        tmp_path: Path, ufm: UfmServer, content: str | None) -> None:
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SmConfigError, match=f"--ufm-ca-file: {path}"):
        UfmBackend(ufm.url, ADMIN, owned=set(), ca_file=path)


# ---- failures ---------------------------------------------------------------------------

def test_a_500_is_unavailable_with_ufms_answer_in_it(ca: TestCa) -> None:
    answer = "Internal error: failed to connect to the OpenSM"
    with (serve(ca, faults=[Fault("status", status=500, body=answer)]) as ufm,
          pytest.raises(SmUnavailableError, match="HTTP 500: " + answer)):
        backend(ufm, ca).read()


def test_no_answer_within_the_timeout_is_unavailable(ca: TestCa) -> None:
    with (serve(ca, faults=[Fault("hang")]) as ufm,
          pytest.raises(SmUnavailableError, match=r"did not answer within 0\.3 s")):
        backend(ufm, ca, timeout=0.3).read()


def test_a_dropped_connection_is_unavailable(ca: TestCa) -> None:
    with (serve(ca, faults=[Fault("drop")]) as ufm,
          pytest.raises(SmUnavailableError, match="disconnected")):
        backend(ufm, ca).apply(boot())


def test_nobody_listening_is_unavailable(ca: TestCa) -> None:
    with serve(ca) as ufm:
        sm = backend(ufm, ca)
    with pytest.raises(SmUnavailableError, match="list partitions"):
        sm.read()


def test_a_refusal_reaches_the_operator_verbatim_and_a_long_one_is_cut(ca: TestCa) -> None:
    short = '{"error": "PKey 0xa01: pkey table of port 0002c90300000001 is full"}'
    long = "x" * (MAX_ANSWER + 500)
    faults = [Fault("status", "POST", "/ufmRest/resources/pkeys/add", 400, short, times=1),
              Fault("status", "POST", "/ufmRest/resources/pkeys/add", 400, long, times=1)]
    with serve(ca, faults=faults) as ufm:
        sm = backend(ufm, ca)
        with pytest.raises(SmRefusedError) as first:
            sm.apply(boot())
        assert first.value.answer == short and first.value.status == 400
        assert "create partition 0x0a01" in str(first.value)
        with pytest.raises(SmRefusedError) as second:
            sm.apply(boot())
        assert second.value.answer == "x" * MAX_ANSWER + "… (500 more characters)"


def test_an_answer_that_is_not_the_documented_map_is_unavailable(ca: TestCa) -> None:
    page = "<html><body>Please log in</body></html>"
    with (serve(ca, faults=[Fault("status", "GET", status=200, body=page)]) as ufm,
          pytest.raises(SmUnavailableError, match=r"not what its REST API documents.*log in")):
        backend(ufm, ca).read()


def test_a_batch_cut_short_says_which_call_failed_and_applying_it_again_completes_it(
        ca: TestCa) -> None:
    batch = ChangeSet(ensure=frozenset({A}), add={A: {G[0]: "full", G[1]: "limited"}})
    fault = Fault("status", "POST", "/ufmRest/resources/pkeys/", 503, "busy", times=1)
    with serve(ca, faults=[fault]) as ufm:
        sm = backend(ufm, ca)
        with pytest.raises(SmUnavailableError, match="call 2 of 3 of this batch"):
            sm.apply(batch)
        assert A in ufm.members()  # the create before it took effect
        assert sm.apply(batch).differences == ()
        assert ufm.members()[A] == {G[0][2:]: "full", G[1][2:]: "limited"}


def test_a_change_ufm_accepted_but_does_not_show_is_reported_as_a_difference(
        ca: TestCa) -> None:
    accepted = Fault("status", "POST", "/ufmRest/resources/pkeys/", 200, "", times=1)
    with serve(ca, faults=[accepted]) as ufm:
        result = backend(ufm, ca).apply(boot(A, G[0]))
    assert result.verified
    assert result.differences == (f"{G[0]} is not a member of partition 0x0a01 (asked: full)",)


# ---- removal on older UFMs, and long removals ------------------------------------------

@pytest.mark.parametrize("status", [404, 405])
def test_a_ufm_without_the_per_guid_delete_gets_the_deprecated_action(
        ca: TestCa, status: int) -> None:
    with serve(ca, legacy_removal_status=status) as ufm:
        sm = backend(ufm, ca)
        sm.apply(boot(A, G[0], G[1]))
        result = sm.apply(ChangeSet(remove={A: frozenset({G[1]})}))
        assert result.differences == ()
        assert ufm.members()[A] == {G[0][2:]: "full"}
        assert [(r.method, r.path.split("/guids/")[0]) for r in ufm.writes()][-2:] == [
            ("DELETE", "/ufmRest/resources/pkeys/0x0a01"),
            ("POST", "/ufmRest/actions/remove_guids_from_pkey")]


def test_the_current_removal_call_is_used_where_ufm_has_it(ufm: UfmServer, ca: TestCa) -> None:
    sm = backend(ufm, ca)
    sm.apply(boot(A, G[0], G[1]))
    sm.apply(ChangeSet(remove={A: frozenset({G[0], G[1]})}))
    assert ufm.writes()[-1].method == "DELETE"
    assert ufm.writes()[-1].path == f"/ufmRest/resources/pkeys/0x0a01/guids/{G[0][2:]},{G[1][2:]}"


def test_removing_many_guids_stays_under_the_web_servers_request_line_limit(
        ufm: UfmServer, ca: TestCa) -> None:
    many = [f"0x0002c90301{n:06x}" for n in range(600)]
    sm = backend(ufm, ca)
    sm.apply(boot(A, *many))
    result = sm.apply(ChangeSet(remove={A: frozenset(many)}))
    assert result.differences == () and ufm.members()[A] == {}
    assert len([r for r in ufm.writes() if r.method == "DELETE"]) == 3


# ---- what goes on the wire ---------------------------------------------------------------

def get_pkey(ufm: UfmServer, ca: TestCa, pkey: str) -> dict[str, object]:
    verify = ssl.create_default_context(cafile=ca.ca_file)
    answer = httpx.get(f"{ufm.url}/ufmRest/resources/pkeys/{pkey}?guids_data=true",
                       auth=("admin", PASSWORD), verify=verify)
    return dict(answer.json())


def test_guids_are_added_per_membership_with_index0_and_ipoib(ufm: UfmServer,
                                                              ca: TestCa) -> None:
    backend(ufm, ca).apply(ChangeSet(ensure=frozenset({A}),
                                     add={A: {G[0]: "full", G[1]: "limited", G[2]: "full"}}))
    posts = [r for r in ufm.writes() if r.path == "/ufmRest/resources/pkeys/"]
    assert len(posts) == 2  # one call per (PKey, membership)
    entry = get_pkey(ufm, ca, "0xa01")
    assert entry["ip_over_ib"] is True
    assert entry["guids"] == [
        {"guid": G[0][2:], "membership": "full", "index0": True},
        {"guid": G[1][2:], "membership": "limited", "index0": True},
        {"guid": G[2][2:], "membership": "full", "index0": True}]


def test_index0_can_be_turned_off(ufm: UfmServer, ca: TestCa) -> None:
    backend(ufm, ca, index0=False).apply(boot(A, G[0]))
    assert get_pkey(ufm, ca, "0xa01")["guids"] == [
        {"guid": G[0][2:], "membership": "full", "index0": False}]


def test_a_second_apply_of_the_same_batch_sends_no_write(ufm: UfmServer, ca: TestCa) -> None:
    sm = backend(ufm, ca)
    sm.apply(boot())
    writes = len(ufm.writes())
    assert sm.apply(boot()).differences == ()
    assert len(ufm.writes()) == writes


# ---- what vfkeeper owns ----------------------------------------------------------------

@pytest.mark.parametrize("pkey", [OPERATOR, 0x0C01])  # UFM's, and one nobody recorded
def test_a_batch_with_a_pkey_vfkeeper_does_not_own_sends_nothing(
        ufm: UfmServer, ca: TestCa, pkey: int) -> None:
    sm = backend(ufm, ca)
    with pytest.raises(OperatorPartitionError, match=f"{pkey:#06x}"):
        sm.apply(ChangeSet(ensure=frozenset({A}), add={A: {G[0]: "full"}, pkey: {G[1]: "full"}}))
    assert ufm.requests == []


def test_ownership_is_asked_at_every_read(ufm: UfmServer, ca: TestCa) -> None:
    owned: set[int] = set()
    sm = backend(ufm, ca, owned=lambda: owned)
    assert sm.read().partitions[OPERATOR].operator_owned
    owned.add(OPERATOR)  # the operator marked it shared, say: the caller's record changed
    assert not sm.read().partitions[OPERATOR].operator_owned


def test_the_default_partition_is_never_in_the_view(ufm: UfmServer, ca: TestCa) -> None:
    assert 0x7FFF in ufm.members()  # UFM lists it ("management")
    assert 0x7FFF not in backend(ufm, ca).read().partitions
