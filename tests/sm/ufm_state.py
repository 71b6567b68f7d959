"""What the test UFM holds and refuses: PKeys with their GUIDs, and access tokens, with the
validation UFM's REST API Guide states ("PKey GUIDs Rest API", "Access Tokens API"; sources and
the ASSUMED readings are listed in ``ufm_server.py``, which serves this over HTTP)."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

SYSTEM_ADMIN = "System_Admin"
MONITORING_ONLY = "Monitoring_Only"
DEFAULT_PKEY = 0x7FFF
RATE_LIMITS = (2.5, 5, 10, 14, 20, 25, 30, 40, 56, 60, 80, 100, 112, 120, 168, 200, 300)
_HEX = re.compile(r"(?:0x)?([0-9a-fA-F]+)")


@dataclass(frozen=True)
class User:
    name: str
    password: str
    role: str = SYSTEM_ADMIN


@dataclass(frozen=True)
class UfmPKey:
    """A PKey the server holds before the test (an operator's partition): GUID → membership."""

    pkey: int
    members: Mapping[str, str] = field(default_factory=dict)
    name: str | None = None
    ip_over_ib: bool = True


class ApiError(Exception):
    """A refusal of UFM's REST layer: ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _Member:
    membership: str
    index0: bool


@dataclass
class _PKey:
    name: str
    ip_over_ib: bool = True
    index0: bool = False
    mtu_limit: int = 2
    service_level: int = 0
    rate_limit: float = 2.5
    members: dict[str, _Member] = field(default_factory=dict)

    def as_json(self, guids_data: bool, qos_conf: bool) -> dict[str, Any]:
        out: dict[str, Any] = {"partition": self.name, "ip_over_ib": self.ip_over_ib}
        if guids_data:
            out["guids"] = [{"guid": g, "membership": m.membership, "index0": m.index0}
                            for g, m in sorted(self.members.items())]
        if qos_conf:
            out.update(mtu_limit=self.mtu_limit, service_level=self.service_level,
                       rate_limit=self.rate_limit)
        return out


def _key(pkey: int) -> str:
    return f"0x{pkey:x}"


# ---- validation, as the guide states it ----------------------------------------------------

def parse_pkey(value: object) -> int:
    """A PKey as UFM takes it: a hex string between 0x0 and 0x7fff exclusive."""
    if not isinstance(value, str) or not (m := _HEX.fullmatch(value.strip())):
        raise ApiError(400, f"Invalid pkey {value!r}: must be a hexadecimal string")
    pkey = int(m.group(1), 16)
    if not 0 < pkey < DEFAULT_PKEY:
        raise ApiError(400, f"Invalid pkey {value}: must be between 0x0 and 0x7fff exclusive")
    return pkey


def parse_guid(value: object) -> str:
    """A GUID as UFM takes it (16 to 20 hex characters), stored bare like UFM lists it."""
    if not isinstance(value, str) or not 16 <= len(value) <= 20:
        raise ApiError(400, f"Invalid GUID {value!r}: must be a hexadecimal string of 16 to "
                            "20 characters")
    m = _HEX.fullmatch(value)
    if not m or int(m.group(1), 16) >> 64:  # ASSUMED: a GUID is 64 bits
        raise ApiError(400, f"Invalid GUID {value!r}: must be a hexadecimal string of 16 to "
                            "20 characters")
    return f"{int(m.group(1), 16):016x}"


def _bool(body: Mapping[str, Any], name: str, default: bool) -> bool:
    value = body.get(name, default)
    if not isinstance(value, bool):
        raise ApiError(400, f"Invalid {name} {value!r}: must be true or false")
    return value


def _membership(value: object) -> str:
    if value not in ("full", "limited"):
        raise ApiError(400, f"Invalid membership {value!r}: must be 'full' or 'limited'")
    return str(value)


def parse_guids(body: Mapping[str, Any]) -> list[str]:
    guids = body.get("guids")
    if guids is None:
        raise ApiError(400, "guids is a required parameter")
    if not isinstance(guids, list) or not guids:  # ASSUMED: an empty list is refused
        raise ApiError(400, "guids must be a non-empty list of GUIDs")
    return [parse_guid(g) for g in guids]


def _memberships(body: Mapping[str, Any], count: int) -> list[str]:
    if "memberships" in body and "membership" in body:
        raise ApiError(400, "membership and memberships conflict: give one of them")
    if "memberships" in body:
        values = body["memberships"]
        if not isinstance(values, list) or len(values) != count:
            raise ApiError(400, "memberships must be a list of the same length as guids")
        return [_membership(v) for v in values]
    return [_membership(body.get("membership", "full"))] * count


def _qos(body: Mapping[str, Any], entry: _PKey) -> None:
    mtu = body.get("mtu_limit", entry.mtu_limit)
    if mtu not in (2, 4) or isinstance(mtu, bool):
        raise ApiError(400, f"Invalid mtu_limit {mtu!r}: must be 2 or 4")
    sl = body.get("service_level", entry.service_level)
    if not isinstance(sl, int) or isinstance(sl, bool) or not 0 <= sl <= 15:
        raise ApiError(400, f"Invalid service_level {sl!r}: must be between 0 and 15")
    rate = body.get("rate_limit", entry.rate_limit)
    if isinstance(rate, bool) or rate not in RATE_LIMITS:
        raise ApiError(400, f"Invalid rate_limit {rate!r}: must be one of "
                            f"{', '.join(map(str, RATE_LIMITS))}")
    entry.mtu_limit, entry.service_level, entry.rate_limit = mtu, sl, float(rate)


# ---- the fabric's PKeys and the tokens -----------------------------------------------------

class UfmFabric:
    def __init__(self, pkeys: Iterable[UfmPKey]) -> None:
        self.lock = threading.Lock()
        self.pkeys: dict[int, _PKey] = {DEFAULT_PKEY: _PKey(name="management")}
        for p in pkeys:
            members = {parse_guid(g): _Member(m, False) for g, m in p.members.items()}
            self.pkeys[p.pkey] = _PKey(name=p.name or f"operator_{p.pkey:#x}",
                                       ip_over_ib=p.ip_over_ib, members=members)
        self.tokens: dict[str, dict[str, Any]] = {}

    def create(self, body: Mapping[str, Any]) -> None:
        pkey = parse_pkey(body.get("pkey"))
        entry = _PKey(name=str(body.get("partition_name") or f"api_pkey_{_key(pkey)}"),
                      ip_over_ib=_bool(body, "ip_over_ib", True),
                      index0=_bool(body, "index0", False))
        _qos(body, entry)
        with self.lock:
            if pkey in self.pkeys:  # ASSUMED: creating an existing PKey is refused
                raise ApiError(400, f"PKey {_key(pkey)} already exists")
            self.pkeys[pkey] = entry

    def add(self, body: Mapping[str, Any]) -> None:
        pkey = parse_pkey(body.get("pkey"))
        guids = parse_guids(body)
        memberships = _memberships(body, len(guids))
        index0 = _bool(body, "index0", False)
        ip_over_ib = _bool(body, "ip_over_ib", True)
        with self.lock:  # a PKey that does not exist is created (ib-kubernetes relies on it)
            entry = self.pkeys.setdefault(pkey, _PKey(name=f"api_pkey_{_key(pkey)}"))
            entry.ip_over_ib = ip_over_ib
            for guid, membership in zip(guids, memberships, strict=True):
                entry.members[guid] = _Member(membership, index0)

    def remove(self, pkey: int, guids: list[str]) -> None:
        with self.lock:
            entry = self.pkeys.get(pkey)
            if entry is None:  # ASSUMED
                raise ApiError(404, f"PKey {_key(pkey)} not found")
            for guid in guids:
                entry.members.pop(guid, None)

    def delete(self, pkey: int) -> None:
        with self.lock:
            if self.pkeys.pop(pkey, None) is None:
                raise ApiError(404, f"PKey {_key(pkey)} not found")

    def listing(self, query: Mapping[str, list[str]]) -> Any:
        guids_data, qos_conf = _flag(query, "guids_data"), _flag(query, "qos_conf")
        with self.lock:
            if not (guids_data or qos_conf):
                return [_key(p) for p in sorted(self.pkeys)]
            return {_key(p): e.as_json(guids_data, qos_conf)
                    for p, e in sorted(self.pkeys.items())}

    def one(self, pkey: int, query: Mapping[str, list[str]]) -> Any:
        with self.lock:
            entry = self.pkeys.get(pkey)
            return {} if entry is None else entry.as_json(_flag(query, "guids_data"),
                                                          _flag(query, "qos_conf"))

    def new_token(self, user: User) -> dict[str, Any]:
        if user.role != SYSTEM_ADMIN:
            raise ApiError(403, "Only users with the System_Admin role may create tokens")
        token = {"access_token": secrets.token_hex(16), "revoked": False,
                 "issued_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                 "expires_in": 86400 * 365, "username": user.name}
        with self.lock:
            self.tokens[str(token["access_token"])] = token
        return dict(token)

    def tokens_of(self, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(t) for t in self.tokens.values() if t["username"] == name]

    def revoke(self, value: str) -> None:
        with self.lock:
            token = self.tokens.get(value)
            if token is None:
                raise ApiError(404, "Token not found")
            token["revoked"] = True

    def token_user(self, value: str) -> str | None:
        with self.lock:
            token = self.tokens.get(value)
            return None if token is None or token["revoked"] else str(token["username"])


def _flag(query: Mapping[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[-1].lower() == "true"
