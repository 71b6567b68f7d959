"""What a request may send before the controller reads its body: an ASGI layer in front of the
routes.

For a request that carries a body (a ``Content-Length`` other than 0, or ``Transfer-Encoding``):

1. when authentication is on and its route needs a token, the token is checked first, with
   :meth:`Auth.principal` (the same look-up and cache as the route's own check): no usable
   ``Authorization: Bearer`` header, or a token the store does not know, is answered 401 before
   a byte of the body is read (a database that does not answer: 503);
2. a declared ``Content-Length`` over ``max_body_bytes`` is answered 413 at once;
3. a body of unknown length (chunked) is counted as it streams in and answered 413 as soon as
   the count passes the limit; it is never buffered whole here.

These answers leave the rest of the body unread, so they say ``Connection: close`` and the
server closes the connection after them. A route "needs a token" when ``Auth.principal`` is
among its dependencies (found once per route, from FastAPI's dependency tree), so routes
without one (``/openapi.json``, ``/docs``) are not touched. Requests without a body pass
straight through: their token is checked by the route, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import anyio.to_thread
from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vfkeeper.controller.auth import Auth
from vfkeeper.controller.errors import BodyTooLargeError
from vfkeeper.controller.handlers import Responder


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def _uses(dependant: Dependant, call: Callable[..., object]) -> bool:
    return dependant.call == call or any(_uses(d, call) for d in dependant.dependencies)


class TokenRoutes:
    """Which requests go to one of ``routes`` that depends on ``principal`` (found per route
    once). ``routes`` are those of the app's own routers, matched as Starlette matches a path
    and method (what the app does not know is answered 404/405 without reading the body)."""

    def __init__(self, routes: Sequence[BaseRoute], principal: Callable[..., object]) -> None:
        self._routes = routes
        self._principal = principal
        self._needs: dict[int, bool] = {}

    def __call__(self, scope: Scope) -> bool:
        for route in self._routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return self._route_needs(route)
        return False  # 404 or 405: answered without reading the body

    def _route_needs(self, route: BaseRoute) -> bool:
        key = id(route)
        if key not in self._needs:
            self._needs[key] = isinstance(route, APIRoute) and _uses(route.dependant,
                                                                    self._principal)
        return self._needs[key]


class BodyGuard:
    """The ASGI layer described in the module's docstring."""

    def __init__(self, app: ASGIApp, *, auth: Auth, responder: Responder, max_body_bytes: int,
                 needs_token: Callable[[Scope], bool]) -> None:  # fmt: skip
        self.app = app
        self.auth = auth
        self.responder = responder
        self.limit = max_body_bytes
        self.needs_token = needs_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._has_body(scope):
            await self.app(scope, receive, send)
            return
        refusal = await self._refusal(scope)
        if refusal is not None:
            await self._answer(refusal, scope, receive, send)
            return
        await self._counted(scope, receive, send)

    @staticmethod
    def _has_body(scope: Scope) -> bool:
        length = _header(scope, b"content-length")
        return (length is not None and length.strip() != "0") or \
            _header(scope, b"transfer-encoding") is not None

    async def _refusal(self, scope: Scope) -> Exception | None:
        """Why the request is answered before its body is read, or None."""
        if self.auth.enabled and self.needs_token(scope):
            try:
                await anyio.to_thread.run_sync(self.auth.principal,
                                               _header(scope, b"authorization"))
            except Exception as exc:  # unauthenticated, or the store does not answer
                return exc
        length = _header(scope, b"content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.limit:
            return BodyTooLargeError(self.limit, int(length))
        return None

    async def _answer(self, exc: Exception, scope: Scope, receive: Receive, send: Send) -> None:
        response = self.responder.response(exc, Request(scope))
        response.headers["Connection"] = "close"  # the body stays unread
        await response(scope, receive, send)

    async def _counted(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app on a ``receive`` that counts the body; past the limit the client gets
        413, the app a disconnect, and whatever the app answers to that is dropped."""
        received = 0
        started = refused = False

        async def counting() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] != "http.request" or refused:
                return message
            received += len(message.get("body", b""))
            if received <= self.limit:
                return message
            refused = True
            if not started:
                await self._answer(BodyTooLargeError(self.limit), scope, receive, send)
            return {"type": "http.disconnect"}

        async def sending(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, sending)
        except Exception:
            if not refused:  # an answer to the disconnect we made up is no error
                raise
