"""One error shape for every failure: ``{"error": {"code": ..., "message": ...}}``.

Clients branch on ``code``; ``message`` is for people. Validation errors name the field and
the problem, so a user can fix the request without reading our source.
"""

from __future__ import annotations

import logging

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from clipmaker.api.deps import installed_services
from clipmaker.errors import INTERNAL_ERROR, INVALID_REQUEST, SERVICE_UNAVAILABLE, ClipError
from clipmaker.redact import client_message

log = logging.getLogger("clipmaker.api")

_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}


def error_response(status: int, code: str, message: str, **headers: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message}}, status_code=status, headers=headers
    )


def _describe(error: dict) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
    message = error.get("msg", "is invalid").removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def describe_validation_error(errors: list) -> str:
    """One readable line naming each field and what is wrong with it."""
    return "; ".join(_describe(e) for e in errors)


async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(400, "malformed_json", "the request body is not valid JSON")
    return error_response(422, INVALID_REQUEST, describe_validation_error(errors))


async def _clip_error(_: Request, exc: ClipError) -> JSONResponse:
    message = exc.message
    services = installed_services()
    if services is not None:  # a safety net: no server path reaches a client
        message = client_message(message, services.settings)
    return error_response(exc.status_code, exc.code, message, **exc.headers)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette's own 405 names only the
    methods of the first route that matched the path, not of all of them). Asked of the
    routes themselves, method by method, so included routers answer for their own routes."""
    allowed = set()
    for method in _METHODS:
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.add(method)
    return [method for method in _METHODS if method in allowed]


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request)) or headers.get("Allow", "")
    return error_response(exc.status_code, code, str(exc.detail), **headers)


DEPENDENCY_RETRY_S = 5


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    """Redis or the database is away: a clear 503 the client can retry, never a 500. The
    connection pools reconnect by themselves once it is back. The message names no address:
    the cause goes to the log."""
    log.warning(
        "%s %s: dependency unavailable: %s", request.method, request.url.path, type(exc).__name__
    )
    return error_response(
        503,
        SERVICE_UNAVAILABLE,
        "the service is briefly unavailable (a dependency is not answering); retry shortly",
        **{"Retry-After": str(DEPENDENCY_RETRY_S)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, INTERNAL_ERROR, "an internal error occurred; it has been logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ClipError, _clip_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(redis.RedisError, _unavailable)
    for unavailable in (OperationalError, DisconnectionError, PoolTimeout):
        app.add_exception_handler(unavailable, _unavailable)
    app.add_exception_handler(Exception, _unexpected)
