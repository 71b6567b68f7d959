"""The one place where errors become HTTP responses.

Every error response has the same envelope::

    {"error": {"code": "not_found", "message": "no host 'h9'", "details": {...}}}

``code`` is a stable machine-readable word, ``message`` says what was wrong and what to do,
``details`` carries the data (field names, conflicting ids, per-host reasons). The status comes
from the error class (``http_status``); FastAPI's own request validation errors become 422 (400
when the body is not JSON at all), unknown routes 404, and anything unexpected 500 without
leaking internals.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from vfkeeper.controller.errors import ControllerError
from vfkeeper.domain.errors import InvalidValueError
from vfkeeper.scheduler.errors import SchedulerError
from vfkeeper.store.errors import StoreError

log = logging.getLogger(__name__)

Envelope = tuple[int, str, str, dict[str, Any]]


def envelope(status: int, code: str, message: str, details: dict[str, Any]) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": jsonable_encoder(details)}}
    return JSONResponse(status_code=status, content=body)


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


def _store(exc: StoreError, request: Request) -> Envelope | None:
    if exc.http_status >= 500:
        return None
    return exc.http_status, exc.code, str(exc), exc.details


_CLASSIFIERS: tuple[tuple[type[Exception], Callable[[Any, Request], Envelope | None]], ...] = (
    (ControllerError, _controller),
    (RequestValidationError, lambda exc, _r: _validation(exc)),
    (StarletteHTTPException, _http),
    (InvalidValueError, _invalid_value),
    (SchedulerError, lambda exc, _r: _scheduler(exc)),
    (StoreError, _store),
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


async def handle(request: Request, exc: Exception) -> JSONResponse:
    """The single exception handler of the API."""
    return envelope(*classify(exc, request))


HANDLED: Sequence[type[Exception]] = (*(kind for kind, _ in _CLASSIFIERS), Exception)
"""Every known error class is registered by itself: Starlette answers those in its exception
middleware. A handler for ``Exception`` alone would run in the outermost error middleware, which
re-raises after answering, so the server would log every 404 or 409 as a crash and drop the
client's keep-alive connection (seen with uvicorn: "Connection reset by peer")."""


def install(app: FastAPI) -> None:
    for exc_class in HANDLED:
        app.add_exception_handler(exc_class, handle)
