"""The ``ufm`` backend: partitions through NVIDIA UFM Enterprise's REST API.

Endpoints (UFM Enterprise REST API Guide, "PKey GUIDs Rest API" and "Access Tokens API"):

=========================================================  ==================================
``GET  {prefix}/resources/pkeys/?guids_data=true``         read: every PKey with its GUIDs
``POST {prefix}/resources/pkeys/add``                      create an empty PKey
``POST {prefix}/resources/pkeys/``                         add GUIDs, one call per (PKey,
                                                           membership), with ``index0`` and
                                                           ``ip_over_ib``
``DELETE {prefix}/resources/pkeys/{pkey}/guids/{g1,g2}``   remove GUIDs; on 404 or 405 (a UFM
                                                           without it) the deprecated
``POST {prefix}/actions/remove_guids_from_pkey``           is used instead, as ib-kubernetes
                                                           does
``GET  {prefix}/app/ufm_version``                          :meth:`UfmBackend.version`
=========================================================  ==================================

``{prefix}`` is ``/ufmRest`` with HTTP Basic auth (:class:`BasicAuth`) and ``/ufmRestV3``
with an access token (:class:`TokenAuth`, sent as ``Authorization: Basic <token>``; a
System_Admin makes it in UFM under Settings → Access Tokens, or with
``POST /ufmRest/app/tokens``). PKeys are sent as 15-bit hex (``0x0a01``, never the
membership bit), GUIDs bare as UFM lists them (``0002c90300a1b2c3``) and read back into
vfkeeper's ``0x…`` form.

**Which PKeys are vfkeeper's.** UFM cannot say who made a PKey, so the caller tells:
``owned`` is the set (or a function returning the set, asked at every read and apply) of the
PKeys vfkeeper manages on this UFM — the controller keeps that record. Every other PKey UFM
lists is operator-owned: read and shown, never changed. A batch that touches a PKey outside
``owned`` is refused whole with :class:`~vfkeeper.sm.errors.OperatorPartitionError` before
anything is sent. The default partition 0x7fff (UFM's "management") is the SM's own and is
left out of the view.

**index0** is sent true by default: UFM then puts the PKey at index 0 of the port's PKey
table, the PKey the guest's plain ``ib0`` uses, so a VM is on its network's partition with no
PKey child interface inside the guest — what ib-kubernetes sends for pods and what
networking-mlnx did for mlx4 VFs (``pkey_idx/0``). It is safe because each vfkeeper port GUID
is in exactly one vfkeeper partition, so no two PKeys compete for a port's index 0. Pass
``index0=False`` when guests configure their own PKey children.

**Errors.** An answer that is not 2xx reaches the operator verbatim (cut to
:data:`MAX_ANSWER` characters): 4xx and redirects are
:class:`~vfkeeper.sm.errors.SmRefusedError` (with ``status`` and a hint for 401, 403 and 404;
terminal: asking again gets the same answer); 5xx, timeouts, dropped connections and answers
that are not the documented shape are :class:`~vfkeeper.sm.errors.SmUnavailableError`. A
certificate that does not verify is :class:`~vfkeeper.sm.errors.SmConfigError`. Retrying is
the caller's (the controller's partition reconciler), and **everything here is safe to
retry**: :meth:`UfmBackend.apply` reads UFM first and sends only what the read shows missing
(a PKey that exists is not created again, a GUID with the asked membership is not added
again, only GUIDs UFM lists are removed), and the calls themselves are idempotent (adding a
member again sets its membership; removing a non-member changes nothing). UFM applies each
call on its own, so a batch cut short by an error leaves the calls before it applied; the
error says which step failed, and applying the same batch again completes it.

**TLS.** Certificates are verified against ``ca_file`` (PEM, the CA that signed UFM's
certificate), or the system's trust store without it. ``insecure=True`` turns verification
off, and is required for an ``http://`` URL: then anyone on the network path can read the UFM
password or token and change every partition on the fabric, which is exactly the isolation
vfkeeper is there to keep; it is logged as a warning. Credentials are never logged, never put
in an error and never shown by ``repr``; a URL carrying credentials is refused.

After a batch, UFM is read back and the differences returned (``verified=True``). Some UFM
calls complete asynchronously, so a difference right after a change can clear on the next
read; the reconciler compares again on its next pass.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from vfkeeper.sm.errors import (
    InvalidPartitionError,
    OperatorPartitionError,
    SmConfigError,
    SmRefusedError,
    SmUnavailableError,
)
from vfkeeper.sm.protocol import (
    DEFAULT_PKEY,
    MEMBERSHIPS,
    ApplyResult,
    ChangeSet,
    Membership,
    Partition,
    SmView,
    canonical_guid,
    differences,
)

log = logging.getLogger(__name__)

NAME = "ufm"
MAX_ANSWER = 1000
"""Characters of UFM's answer kept in an error (an HTML error page can be long)."""
REMOVE_CHUNK = 200
"""GUIDs per removal call: they go in the URL (17 bytes each), and the web server in front of
UFM refuses a request line over 8190 bytes (Apache's LimitRequestLine)."""

SETTING_URL = "--ufm-url"
SETTING_CA = "--ufm-ca-file"
SETTING_INSECURE = "--ufm-insecure"
SETTING_USER = "--ufm-user"
SETTING_PASSWORD = "--ufm-password-file"
SETTING_TOKEN = "--ufm-token-file"
SETTING_TIMEOUT = "--ufm-timeout"

_HINTS = {
    401: "check the UFM user name and password, or the access token (it may have been "
         "revoked, have expired, or belong to another UFM)",
    403: "the UFM user may not do this: changing partitions needs a user whose role may "
         "change the fabric (not Monitoring_Only), and an access token needs a System_Admin",
    404: f"check {SETTING_URL}: it must be UFM's base address (https://ufm.example.com), "
         "without /ufmRest",
}


@dataclass(frozen=True, slots=True)
class BasicAuth:
    """A UFM user and password (HTTP Basic, on ``/ufmRest``)."""

    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class TokenAuth:
    """A UFM access token (on ``/ufmRestV3``)."""

    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Call:
    method: str
    path: str
    action: str
    body: Mapping[str, Any] | None = None
    fallback: _Call | None = None
    """Sent instead when UFM answers 404 or 405 (it lacks ``path``)."""


class UfmBackend:
    """A :class:`~vfkeeper.sm.protocol.SubnetManager` on one UFM server (see the module)."""

    def __init__(self, url: str, auth: BasicAuth | TokenAuth, *,
                 owned: Callable[[], AbstractSet[int]] | AbstractSet[int],
                 ca_file: str | Path | None = None, insecure: bool = False,
                 timeout: float = 10.0, index0: bool = True, ip_over_ib: bool = True,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._base = _check_url(url, insecure)
        _check_auth(auth)
        if not timeout > 0:
            raise SmConfigError(SETTING_TIMEOUT, f"{timeout!r} is not a positive number of "
                                "seconds")
        verify = _tls(self._base, ca_file, insecure)
        self._ca_file = ca_file
        self._timeout = timeout
        self._index0 = index0
        self._ip_over_ib = ip_over_ib
        self._owned = owned if callable(owned) else (lambda: frozenset(owned))
        if isinstance(auth, BasicAuth):
            prefix, basic, headers = "/ufmRest", httpx.BasicAuth(auth.username,
                                                                  auth.password), {}
        else:
            prefix, basic, headers = "/ufmRestV3", None, {"Authorization": f"Basic {auth.token}"}
        self._client = httpx.Client(
            base_url=self._base + prefix, auth=basic, verify=verify, timeout=timeout,
            headers={"Accept": "application/json", **headers}, follow_redirects=False,
            transport=transport)

    @property
    def name(self) -> str:
        return NAME

    def __repr__(self) -> str:
        return f"UfmBackend({self._base!r})"

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> UfmBackend:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # ---- the protocol ------------------------------------------------------------------

    def version(self) -> str:
        """UFM's release version (``GET /app/ufm_version``): a cheap check of URL,
        credentials and TLS."""
        data = self._json(_Call("GET", "/app/ufm_version", "read UFM's version"))
        if not isinstance(data, dict) or "ufm_release_version" not in data:
            raise _bad_answer("read UFM's version", "no ufm_release_version in it", data)
        return str(data["ufm_release_version"])

    def read(self) -> SmView:
        action = "list partitions"
        data = self._json(_Call("GET", "/resources/pkeys/?guids_data=true", action))
        if not isinstance(data, dict):
            raise _bad_answer(action, "it is not a map of PKeys", data)
        owned = self._owned()
        partitions = {}
        for key, entry in data.items():
            pkey = _read_pkey(key, action)
            if pkey != DEFAULT_PKEY:
                partitions[pkey] = _read_partition(pkey, entry, pkey not in owned, action)
        return SmView(partitions=dict(sorted(partitions.items())))

    def apply(self, changes: ChangeSet) -> ApplyResult:
        if not changes:
            return ApplyResult(verified=True)
        foreign = sorted(changes.pkeys - self._owned())
        if foreign:  # refused before anything is sent
            raise OperatorPartitionError(foreign[0], "on UFM, and not in vfkeeper's record of "
                                         "the PKeys it manages there")
        calls = self._plan(changes, self.read())
        for number, call in enumerate(calls, 1):
            self._send(call, number, len(calls))
        return ApplyResult(verified=True, differences=differences(changes, self.read()))

    # ---- planning: only what the read shows missing --------------------------------------

    def _plan(self, changes: ChangeSet, before: SmView) -> list[_Call]:
        creates = [self._create(p) for p in sorted(changes.ensure | set(changes.add))
                   if p not in before.partitions]
        removes = [call for pkey, guids in sorted(changes.remove.items())
                   for call in _removals(pkey, sorted(guids & set(before.members_of(pkey))))]
        adds = [self._add(pkey, membership, guids)
                for pkey, wanted in sorted(changes.add.items())
                for membership, guids in _by_membership(wanted, before.members_of(pkey))]
        return creates + removes + adds  # out of an old PKey before into a new one

    def _create(self, pkey: int) -> _Call:
        return _Call("POST", "/resources/pkeys/add", f"create partition {pkey:#06x}",
                     {"pkey": f"{pkey:#06x}", "index0": self._index0,
                      "ip_over_ib": self._ip_over_ib})

    def _add(self, pkey: int, membership: Membership, guids: list[str]) -> _Call:
        return _Call("POST", "/resources/pkeys/",
                     f"add {_count(guids)} to partition {pkey:#06x} as {membership} members",
                     {"pkey": f"{pkey:#06x}", "guids": [_bare(g) for g in guids],
                      "membership": membership, "index0": self._index0,
                      "ip_over_ib": self._ip_over_ib})

    # ---- HTTP ------------------------------------------------------------------------

    def _send(self, call: _Call, number: int, total: int) -> None:
        action = call.action
        if number > 1:
            action += (f" (call {number} of {total} of this batch; the calls before it took "
                       "effect, and applying the batch again is safe)")
        response = self._request(call, action)
        if call.fallback is not None and response.status_code in (404, 405):
            log.info("UFM answered HTTP %d to %s %s/guids/…; using the deprecated %s",
                     response.status_code, call.method, call.path.split("/guids/")[0],
                     call.fallback.path)
            call = call.fallback
            response = self._request(call, action)
        self._check(response, action)

    def _json(self, call: _Call) -> Any:
        response = self._request(call, call.action)
        self._check(response, call.action)
        try:
            return response.json()
        except ValueError:
            raise _bad_answer(call.action, "it is not JSON", response.text) from None

    def _request(self, call: _Call, action: str) -> httpx.Response:
        log.debug("UFM %s %s", call.method, call.path)
        try:
            return self._client.request(call.method, call.path, json=call.body)
        except httpx.TimeoutException as exc:
            raise SmUnavailableError(NAME, f"{action}: {self._base} did not answer within "
                                     f"{self._timeout:g} s") from exc
        except httpx.TransportError as exc:
            tls = _tls_failure(exc)
            if tls is not None:
                raise SmConfigError(SETTING_CA, self._tls_problem(tls)) from exc
            raise SmUnavailableError(NAME, f"{action}: {self._base}: "
                                     f"{exc or type(exc).__name__}") from exc

    def _check(self, response: httpx.Response, action: str) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        answer = _answer(response)
        if status >= 500:
            raise SmUnavailableError(NAME, f"{action}: UFM answered HTTP {status}: {answer}")
        hint = _HINTS.get(status)
        if 300 <= status < 400:
            hint = (f"UFM redirected to {response.headers.get('Location', '?')}; set "
                    f"{SETTING_URL} to the address it redirects to")
        raise SmRefusedError(NAME, action, answer, status=status, what_to_do=hint)

    def _tls_problem(self, error: ssl.SSLError) -> str:
        reason = getattr(error, "verify_message", None) or error.reason or str(error)
        trusted = (f"the CA in {self._ca_file}" if self._ca_file is not None
                   else "the system's trusted CAs")
        return (f"the TLS certificate of {self._base} could not be verified with {trusted} "
                f"({reason}); give the CA certificate that signed UFM's certificate (PEM) "
                f"with {SETTING_CA}")


# ---- settings --------------------------------------------------------------------------

def _check_url(url: str, insecure: bool) -> str:
    parts = urlsplit(url.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SmConfigError(SETTING_URL, f"{url!r} is not an https:// URL of a UFM server "
                            "(e.g. https://ufm.example.com)")
    if parts.username is not None or parts.password is not None:
        raise SmConfigError(SETTING_URL, f"the URL carries credentials; give them with "
                            f"{SETTING_USER} and {SETTING_PASSWORD} (or {SETTING_TOKEN}), "
                            "never in the URL (URLs end up in logs)")
    if parts.query or parts.fragment:
        raise SmConfigError(SETTING_URL, f"{url!r} has a query or fragment; give UFM's base "
                            "address only")
    if parts.scheme == "http" and not insecure:
        raise SmConfigError(SETTING_URL, f"{url!r} is plain http: the UFM password and "
                            "every partition change would cross the network unprotected; "
                            f"use https://, or pass {SETTING_INSECURE} to accept that risk")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _check_auth(auth: BasicAuth | TokenAuth) -> None:
    if isinstance(auth, BasicAuth):
        if not auth.username or ":" in auth.username:
            raise SmConfigError(SETTING_USER, "give the UFM user name (no ':' in it)")
        if not auth.password:
            raise SmConfigError(SETTING_PASSWORD, "the UFM password is empty")
    elif not auth.token or any(c.isspace() for c in auth.token):
        raise SmConfigError(SETTING_TOKEN, "the UFM access token is empty or has spaces or "
                            "line breaks in it; give the token exactly as UFM showed it")


def _tls(base: str, ca_file: str | Path | None, insecure: bool) -> ssl.SSLContext | bool:
    if insecure:
        if ca_file is not None:
            raise SmConfigError(SETTING_INSECURE, f"give {SETTING_CA} or {SETTING_INSECURE}, "
                                "not both")
        log.warning("TLS certificate verification of UFM at %s is off (%s): anyone on the "
                    "network path can read the UFM credentials and change every partition",
                    base, SETTING_INSECURE)
        return False
    try:
        return ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        raise SmConfigError(SETTING_CA, f"{ca_file}: cannot be read as a PEM CA certificate "
                            f"({exc.strerror or exc}); give the CA that signed UFM's "
                            "certificate") from exc


# ---- reading UFM's answers --------------------------------------------------------------

def _read_pkey(key: object, action: str) -> int:
    try:
        pkey = int(str(key), 16)
    except ValueError:
        raise _bad_answer(action, f"PKey {key!r} is not hexadecimal", key) from None
    if pkey & 0x8000 or pkey == 0:
        raise _bad_answer(action, f"PKey {key!r} is not a 15-bit partition key", key)
    return pkey


def _read_partition(pkey: int, entry: object, operator_owned: bool, action: str) -> Partition:
    if not isinstance(entry, dict):
        raise _bad_answer(action, f"the entry of PKey {pkey:#06x} is not an object", entry)
    name, ipoib = entry.get("partition"), entry.get("ip_over_ib", True)
    members = dict(_read_members(pkey, entry.get("guids", []), action))
    try:
        return Partition(pkey=pkey, members=members, ipoib=bool(ipoib),
                         operator_owned=operator_owned,
                         name=name if isinstance(name, str) else None)
    except InvalidPartitionError as exc:
        raise _bad_answer(action, f"PKey {pkey:#06x}: {exc}", entry) from exc


def _read_members(pkey: int, guids: object,
                  action: str) -> Iterator[tuple[str, Membership]]:
    if not isinstance(guids, list):
        raise _bad_answer(action, f"the GUIDs of PKey {pkey:#06x} are not a list", guids)
    for item in guids:
        guid = item.get("guid") if isinstance(item, dict) else None
        membership = item.get("membership", "full") if isinstance(item, dict) else None
        if not isinstance(guid, str) or membership not in MEMBERSHIPS:
            raise _bad_answer(action, f"a member of PKey {pkey:#06x} has no GUID or an "
                              "unknown membership", item)
        try:
            yield canonical_guid(guid), membership
        except InvalidPartitionError as exc:
            raise _bad_answer(action, f"PKey {pkey:#06x}: {exc}", item) from exc


def _bad_answer(action: str, problem: str, answer: object) -> SmUnavailableError:
    text = answer if isinstance(answer, str) else repr(answer)
    return SmUnavailableError(NAME, f"{action}: UFM's answer is not what its REST API "
                              f"documents ({problem}): {_cut(text)}")


def _answer(response: httpx.Response) -> str:
    text = response.text.strip()
    return _cut(text) if text else f"(an empty answer; {response.reason_phrase})"


def _cut(text: str) -> str:
    if len(text) <= MAX_ANSWER:
        return text
    return f"{text[:MAX_ANSWER]}… ({len(text) - MAX_ANSWER} more characters)"


def _tls_failure(exc: BaseException) -> ssl.SSLError | None:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


# ---- small helpers -------------------------------------------------------------------

def _bare(guid: str) -> str:
    return guid.removeprefix("0x")


def _count(guids: list[str]) -> str:
    return "1 GUID" if len(guids) == 1 else f"{len(guids)} GUIDs"


def _removals(pkey: int, guids: list[str]) -> Iterator[_Call]:
    for start in range(0, len(guids), REMOVE_CHUNK):
        chunk = guids[start:start + REMOVE_CHUNK]
        action = f"remove {_count(chunk)} from partition {pkey:#06x}"
        legacy = _Call("POST", "/actions/remove_guids_from_pkey", action,
                       {"pkey": f"{pkey:#06x}", "guids": [_bare(g) for g in chunk]})
        path = f"/resources/pkeys/{pkey:#06x}/guids/{','.join(_bare(g) for g in chunk)}"
        yield _Call("DELETE", path, action, fallback=legacy)


def _by_membership(wanted: Mapping[str, Membership],
                   have: Mapping[str, Membership]) -> Iterator[tuple[Membership, list[str]]]:
    for membership in MEMBERSHIPS:
        guids = sorted(g for g, m in wanted.items() if m == membership and have.get(g) != m)
        if guids:
            yield membership, guids


