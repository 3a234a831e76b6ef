"""The one place that turns sessionclock's errors into HTTP answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from sessionclock import errors

log = structlog.get_logger(__name__)

# Most specific first: the first class an error is an instance of decides.
STATUS_CODES: tuple[tuple[type[errors.SessionClockError], int], ...] = (
    (errors.InvalidInput, 422),
    (errors.AuthError, 401),
    (errors.Forbidden, 403),
    (errors.SessionNotFound, 404),
    (errors.EndpointDisabled, 404),
    (errors.Conflict, 409),
    (errors.RateLimited, 429),
    (errors.ContentionError, 503),
    (errors.BookingSourceUnavailable, 503),
)

_MAX_SHOWN_INPUT_CHARS = 80

_UNREACHABLE = (OperationalError, InterfaceError)

# What FastAPI says when it cannot even decode a body; we say what was expected.
_FASTAPI_BODY_ERROR = "There was an error parsing the body"


def status_code_of(error: errors.SessionClockError) -> int:
    for kind, status in STATUS_CODES:
        if isinstance(error, kind):
            return status
    return 500


def install_error_handlers(app: FastAPI) -> None:
    for kind, handler in _HANDLERS:
        app.add_exception_handler(kind, handler)


async def error_response(request: Request, error: Exception) -> JSONResponse:
    """The answer the installed handlers give, for code that runs outside FastAPI."""
    for kind, handler in _HANDLERS:
        if isinstance(error, kind):
            return await handler(request, error)
    raise AssertionError("the last handler takes every Exception")


async def _sessionclock_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, errors.SessionClockError)
    status = status_code_of(error)
    headers = {}
    if isinstance(error, errors.RateLimited):
        headers["Retry-After"] = str(error.retry_after_s)
    if isinstance(error, errors.AuthError):
        headers["WWW-Authenticate"] = "Bearer"
    level = "error" if status >= 500 else "warning"
    getattr(log, level)(
        "request.refused",
        path=request.url.path,
        status=status,
        error=type(error).__name__,
        detail=error.detail,
    )
    return JSONResponse({"detail": error.detail}, status_code=status, headers=headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    problems = [_describe(problem) for problem in error.errors()]
    detail = "; ".join(problems)
    log.warning("request.invalid", path=request.url.path, detail=detail)
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    detail = str(error.detail)
    if error.status_code == 400 and detail == _FASTAPI_BODY_ERROR:
        # Bodies that fail before JSON validation: bad UTF-8, absurd nesting.
        detail = "body: expected a JSON object in UTF-8, got a body that does not parse"
        log.warning("request.invalid", path=request.url.path, detail=detail)
    return JSONResponse(
        {"detail": detail}, status_code=error.status_code, headers=error.headers
    )


async def _database_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, DBAPIError)
    if not (error.connection_invalidated or isinstance(error, _UNREACHABLE)):
        return await _unexpected_error(request, error)
    # The pool drops the dead connection; the next request gets a fresh one.
    log.error("database.unreachable", path=request.url.path, error=str(error.orig))
    return JSONResponse(
        {"detail": "the database is not reachable right now; try again"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def _database_busy(request: Request, error: Exception) -> JSONResponse:
    # Every pooled connection stayed busy for SESSIONCLOCK_DB_POOL_TIMEOUT_S.
    log.error("database.busy", path=request.url.path)
    return JSONResponse(
        {"detail": "the database is too busy right now; try again"},
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def _unexpected_error(request: Request, error: Exception) -> JSONResponse:
    log.error("request.failed", path=request.url.path, exc_info=error)
    return JSONResponse(
        {"detail": "internal error; it has been logged"}, status_code=500
    )


_Handler = Callable[[Request, Exception], Awaitable[JSONResponse]]

# No class is a subclass of one before it, so the first match is the most specific,
# the handler Starlette's lookup along the error's MRO picks.
_HANDLERS: tuple[tuple[type[Exception], _Handler], ...] = (
    (errors.SessionClockError, _sessionclock_error),
    (RequestValidationError, _validation_error),
    (StarletteHTTPException, _http_error),
    (DBAPIError, _database_error),
    (PoolTimeout, _database_busy),
    (Exception, _unexpected_error),
)


def _describe(problem: Any) -> str:
    where = (
        ".".join(str(part) for part in problem.get("loc", ()) if part != "body")
        or "body"
    )
    message = str(problem.get("msg", "invalid"))
    if problem.get("type") == "json_invalid":
        reason = problem.get("ctx", {}).get("error", "")
        return f"body: expected a JSON object, got malformed JSON ({reason})"
    if problem.get("type") == "missing":
        return f"{where}: expected a value, got none"
    if problem.get("type") == "extra_forbidden":
        return f"{where}: unknown field; expected only the documented fields"
    shown = repr(problem.get("input"))
    if len(shown) > _MAX_SHOWN_INPUT_CHARS:
        shown = shown[:_MAX_SHOWN_INPUT_CHARS] + "…"
    message = message.removeprefix("Value error, ")
    return f"{where}: {message[0].lower() + message[1:]}, got {shown}"
