"""Bearer-token authentication and role checks.

Roles: ``admin`` (everything), ``viewer`` (read everything), ``agent:<host>`` (read and write
only its own host's inventory, heartbeat and state). Tokens are random strings shown once at
creation; the store keeps only their SHA-256.

A verified token's role is cached in the process for ``token_cache_ttl_s`` (a setting, 10 s by
default), so a request costs no database transaction for its token; a token removed from the
database stops working within that time. Unknown tokens are never cached: a new token works at
once.

:meth:`Auth.principal` is also what :mod:`vfkeeper.controller.limits` calls for a request with a
body, before the body is read; the route's own check then finds the role in the cache.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Path, params
from sqlalchemy import select
from sqlalchemy.orm import Session

from vfkeeper.controller.errors import ForbiddenError, InvalidInputError, UnauthenticatedError
from vfkeeper.store.database import Database
from vfkeeper.store.models import Token

_AGENT = re.compile(r"agent:([A-Za-z0-9][A-Za-z0-9._-]{0,252})")
TOKEN_PREFIX = "vfk_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_role(role: str) -> str:
    if role in ("admin", "viewer") or _AGENT.fullmatch(role):
        return role
    raise InvalidInputError("role", f"{role!r} is not a role; use admin, viewer or agent:<host>")


def create_token(session: Session, role: str, name: str) -> str:
    """Store a new token's hash and return the token (the only time it is visible)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(Token(name=name, role=check_role(role), token_hash=hash_token(token)))
    return token


@dataclass(frozen=True)
class Principal:
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def agent_host(self) -> str | None:
        m = _AGENT.fullmatch(self.role)
        return m.group(1) if m else None


class Auth:
    """Resolves the request's bearer token; its methods are FastAPI dependencies."""

    def __init__(self, db: Database, enabled: bool, *, cache_ttl_s: float = 10.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self.enabled = enabled
        self._ttl = cache_ttl_s
        self._monotonic = monotonic
        self._verified: dict[str, tuple[str, float]] = {}
        """token hash -> (role, monotonic time until which it is trusted without a look-up)"""

    def _role(self, token_hash: str) -> str | None:
        now = self._monotonic()
        cached = self._verified.get(token_hash)
        if cached is not None and now < cached[1]:
            return cached[0]
        with self._db.read() as session:
            role = session.scalar(select(Token.role).where(Token.token_hash == token_hash))
        if role is None:
            self._verified.pop(token_hash, None)
        elif self._ttl > 0:
            self._verified[token_hash] = (role, now + self._ttl)
        return role

    def principal(self, authorization: Annotated[str | None, Header()] = None) -> Principal:
        if not self.enabled:
            return Principal("admin")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise UnauthenticatedError(
                "this API needs a bearer token: send 'Authorization: Bearer <token>' "
                "(create one with 'vfkeeper token create --role viewer')"
            )
        role = self._role(hash_token(token.strip()))
        if role is None:
            raise UnauthenticatedError(
                "the bearer token is not known to this controller; check it, or create one with "
                "'vfkeeper token create'"
            )
        return Principal(role)


def require_viewer(auth: Auth) -> params.Depends:
    """Admins and viewers read cluster-wide views (agents read only their own host)."""

    def dep(p: Principal = Depends(auth.principal)) -> Principal:
        if p.role not in ("admin", "viewer"):
            raise ForbiddenError(p.role, "read cluster-wide views")
        return p

    return params.Depends(dep)


def require_admin(auth: Auth, action: str) -> params.Depends:
    def dep(p: Principal = Depends(auth.principal)) -> Principal:
        if not p.is_admin:
            raise ForbiddenError(p.role, action)
        return p

    return params.Depends(dep)


def require_host_access(auth: Auth, action: str, *, write: bool) -> params.Depends:
    """The agent of the host named by the ``name`` path parameter, or an admin; for reads also
    a viewer."""

    def dep(name: str = Path(), p: Principal = Depends(auth.principal)) -> Principal:
        if p.is_admin or p.agent_host == name or (not write and p.role == "viewer"):
            return p
        raise ForbiddenError(p.role, f"{action} of host {name!r}")

    return params.Depends(dep)
