"""The one place where errors become HTTP responses.

Every error response has the same envelope::

    {"error": {"code": "not_found", "message": "no host 'h9'", "details": {...}}}

``code`` is a stable machine-readable word, ``message`` says what was wrong and what to do,
``details`` carries the data (field names, conflicting ids, per-host reasons). The status comes
from the error class (``http_status``); FastAPI's own request validation errors become 422 (400
when the body is not JSON at all), unknown routes 404, a database that does not answer 503
``store_unavailable`` with ``Retry-After``, and anything unexpected 500 without leaking
internals.

Every 5xx response says ``Connection: close``: the server then closes that connection after the
answer, and a keep-alive client opens a new one for its next request instead of sending it on a
connection the server is dropping. An outage of the database is logged as one warning line with
its cause, then at most once every :data:`OUTAGE_LOG_INTERVAL_S` with the number of requests
refused meanwhile, not as a traceback per request.

:class:`Responder` is the one object that answers errors: FastAPI's exception handler for every
known error class, :class:`CatchAll` (the ASGI layer that answers what nothing else caught, so
the server never sees an exception) and the body guard of :mod:`vfkeeper.controller.limits`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vfkeeper.controller.errors import ControllerError
from vfkeeper.domain.errors import InvalidValueError
from vfkeeper.scheduler.errors import SchedulerError
from vfkeeper.store.database import unavailable
from vfkeeper.store.errors import StoreError, StoreUnavailableError

log = logging.getLogger(__name__)

Envelope = tuple[int, str, str, dict[str, Any]]

OUTAGE_LOG_INTERVAL_S = 60.0


def envelope(status: int, code: str, message: str, details: dict[str, Any],
             headers: Mapping[str, str] | None = None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return JSONResponse(status_code=status, content=body, headers=dict(headers or {}))


def _validation(exc: RequestValidationError) -> Envelope:
    errors = [
        {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return 400, "malformed_request", "the request body is not valid JSON", {"errors": errors}
    where = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['message']}" for e in errors[:5])
    return 422, "invalid_input", f"the request is invalid: {where}", {"errors": errors}


def _http(exc: StarletteHTTPException, request: Request) -> Envelope:
    if exc.status_code == 404:
        return 404, "not_found", f"no such API route {request.url.path!r}; see /openapi.json", {}
    if exc.status_code == 405:
        return (405, "method_not_allowed",
                f"{request.method} is not allowed on {request.url.path!r}", {})
    return exc.status_code, "http_error", str(exc.detail), {}


def _scheduler(exc: SchedulerError) -> Envelope:
    name = type(exc).__name__.removesuffix("Error")
    code = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    details: dict[str, Any] = {}
    result = getattr(exc, "result", None)
    if result is not None:
        details = {"summary": result.summary(), "hosts": result.details()}
    for attr in ("field", "value", "expected", "host", "problem"):
        if hasattr(exc, attr):
            details[attr] = getattr(exc, attr)
    return exc.http_status, code, str(exc), details


def _controller(exc: ControllerError, _request: Request) -> Envelope:
    return exc.http_status, exc.code, exc.message, exc.details


def _invalid_value(exc: InvalidValueError, _request: Request) -> Envelope:
    details = {"what": exc.what, "value": exc.value, "expected": exc.expected}
    return 422, "invalid_input", str(exc), details


def _store(exc: StoreError, _request: Request) -> Envelope | None:
    if exc.http_status >= 500 and not isinstance(exc, StoreUnavailableError):
        return None
    return exc.http_status, exc.code, str(exc), exc.details


def _database(exc: SQLAlchemyError, request: Request) -> Envelope | None:
    """A database that does not answer (anything else from SQLAlchemy is a bug: 500)."""
    outage = unavailable(exc)
    return None if outage is None else _store(outage, request)


_CLASSIFIERS: tuple[tuple[type[Exception], Callable[[Any, Request], Envelope | None]], ...] = (
    (ControllerError, _controller),
    (RequestValidationError, lambda exc, _r: _validation(exc)),
    (StarletteHTTPException, _http),
    (InvalidValueError, _invalid_value),
    (SchedulerError, lambda exc, _r: _scheduler(exc)),
    (StoreError, _store),
    (SQLAlchemyError, _database),
)


def classify(exc: Exception, request: Request) -> Envelope:
    """(status, code, message, details) for any exception."""
    for kind, convert in _CLASSIFIERS:
        if isinstance(exc, kind):
            result = convert(exc, request)
            if result is not None:
                return result
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return (500, "internal_error",
            "the controller failed unexpectedly; its log has the traceback", {})


def _outage(exc: Exception) -> StoreUnavailableError | None:
    return exc if isinstance(exc, StoreUnavailableError) else unavailable(exc)


class Responder:
    """Answers every error with the envelope (see the module's docstring); ``monotonic`` paces
    the outage warnings."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic,
                 outage_log_interval_s: float = OUTAGE_LOG_INTERVAL_S) -> None:
        self._monotonic = monotonic
        self._interval = outage_log_interval_s
        self._warned_at: float | None = None
        self._quiet = 0
        """Outage refusals not logged since the last warning."""

    def response(self, exc: Exception, request: Request) -> JSONResponse:
        status, code, message, details = classify(exc, request)
        headers = {"Connection": "close"} if status >= 500 else {}
        outage = _outage(exc)
        if outage is not None:
            headers["Retry-After"] = str(outage.retry_after_s)
            self._log_outage(outage, request)
        return envelope(status, code, message, details, headers)

    async def handle(self, request: Request, exc: Exception) -> JSONResponse:
        """The exception handler FastAPI calls."""
        return self.response(exc, request)

    def _log_outage(self, outage: StoreUnavailableError, request: Request) -> None:
        now = self._monotonic()
        if self._warned_at is not None and now - self._warned_at < self._interval:
            self._quiet += 1
            return
        since = f"; {self._quiet} more refused since the last warning" if self._quiet else ""
        log.warning("the database does not answer (%s): %s %s answered 503 store_unavailable "
                    "(logged again at most every %.0f s)%s", outage.cause, request.method,
                    request.url.path, self._interval, since)
        self._warned_at, self._quiet = now, 0


class CatchAll:
    """ASGI layer inside Starlette's outermost error middleware: answers an exception nothing
    else handled through the :class:`Responder`, so it never reaches the server (which would log
    a second traceback and drop the connection under the client's next request). An exception
    after the response has started is re-raised: the server must then abort the connection."""

    def __init__(self, app: ASGIApp, responder: Responder) -> None:
        self.app = app
        self.responder = responder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:
                raise
            await self.responder.response(exc, Request(scope))(scope, receive, send)


HANDLED: Sequence[type[Exception]] = (*(kind for kind, _ in _CLASSIFIERS), Exception)
"""Every known error class is registered by itself: Starlette answers those in its exception
middleware. A handler for ``Exception`` alone would run in the outermost error middleware, which
re-raises after answering, so the server would log every 404 or 409 as a crash and drop the
client's keep-alive connection (seen with uvicorn: "Connection reset by peer"); what no class
matches is answered by :class:`CatchAll` before it gets there."""


def install(app: FastAPI, responder: Responder) -> None:
    for exc_class in HANDLED:
        app.add_exception_handler(exc_class, responder.handle)
    app.add_middleware(CatchAll, responder=responder)
