"""Errors as HTTP answers: one table from error class to status; bodies say what and where.

A bad parameter answers 400 wherever it is caught: by the library (``InvalidArgumentError``),
by FastAPI's own validation of types and bounds, or by a route. A refusal is never a 500:
only a broken installation is.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from psycopg import OperationalError
from psycopg_pool import PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.refusals import audit_refusal
from geo_monitor.errors import (
    AccessDeniedError,
    ConfigurationError,
    DatabaseUnavailableError,
    DisclosureError,
    GeoMonitorError,
    InputFileError,
    InvalidArgumentError,
    MapAssetsError,
    NotFoundError,
    PlanFileError,
    PrivacyBudgetError,
    ReferenceDataError,
    ZoneConflictError,
)

log = logging.getLogger("geo_monitor.api")
RETRY_AFTER_SECONDS = 5
BAD_PARAMETER = 400


class ApiError(Exception):
    """A refusal only HTTP knows (no token, a body too large, ...), with its status.

    Raise one of the named subclasses below (their status is in ``STATUS``); a bad parameter
    is the library's ``InvalidArgumentError``.
    """

    def __init__(self, status: int, message: str, parameter: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.parameter, self.headers = status, parameter, headers or {}


class _Named(ApiError):
    def __init__(self, message: str, parameter: str | None = None, headers: dict[str, str] | None = None) -> None:
        status = next(STATUS[kind] for kind in type(self).__mro__ if kind in STATUS)
        super().__init__(status, message, parameter, headers)


class Unauthenticated(_Named):
    """No token, or an unknown, expired or revoked one."""

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": "Bearer"})


class PayloadTooLarge(_Named):
    """The request body is larger than the server takes."""


class UnsupportedMediaType(_Named):
    """The request body's content type is not one the route reads."""


class PreconditionRequired(_Named):
    """An edit came without the version it is based on (If-Match)."""


class TooManyRequests(_Named):
    """The client is over its rate; ``Retry-After`` says when to come back."""

    def __init__(self, message: str, wait_seconds: float) -> None:
        super().__init__(message, headers={"Retry-After": str(max(1, round(wait_seconds)))})


# The one table: the most specific class of an error (its first class found here, walking its
# MRO) gives the status. Refusals are 4xx; only an installation problem is a 5xx.
STATUS: dict[type[Exception], int] = {
    InvalidArgumentError: BAD_PARAMETER,
    InputFileError: BAD_PARAMETER,
    PlanFileError: BAD_PARAMETER,  # every bad record named in the message
    Unauthenticated: 401,
    AccessDeniedError: 403,
    NotFoundError: 404,
    ZoneConflictError: 409,  # sent with the zone's current ETag
    PrivacyBudgetError: 409,  # the month's or the year's privacy budget is spent
    DisclosureError: 409,  # suppression cannot protect this table: the release is refused
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    PreconditionRequired: 428,
    TooManyRequests: 429,
    DatabaseUnavailableError: 503,
    ReferenceDataError: 503,  # the reference layers are not loaded yet
    MapAssetsError: 500,
    ConfigurationError: 500,
    GeoMonitorError: 500,
}


def status_of(exc: Exception) -> int:
    """Return the status of an error: that of its most specific class in ``STATUS``."""
    if isinstance(exc, ApiError):
        return exc.status
    return next((STATUS[kind] for kind in type(exc).__mro__ if kind in STATUS), 500)


def body(message: str, parameter: str | None = None) -> dict:
    """Return the error body every endpoint uses."""
    error = {"message": message}
    if parameter:
        error["parameter"] = parameter
    return {"error": error}


def unavailable(message: str = "the database is unavailable; try again shortly") -> JSONResponse:
    """Return a 503 with Retry-After."""
    return JSONResponse(body(message), status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def _headers(exc: Exception) -> dict[str, str]:
    if isinstance(exc, ApiError):
        return exc.headers
    etag = getattr(exc, "etag", None)  # a zone conflict names the version to edit from
    return {"ETag": etag} if etag else {}


def _document_bad_parameters_as_400(app: FastAPI) -> None:
    """Make the OpenAPI schema say what the app answers: 400 for a bad parameter, never 422."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                responses = operation.get("responses", {})
                if responses.pop("422", None) is not None and str(BAD_PARAMETER) not in responses:
                    responses[str(BAD_PARAMETER)] = {
                        "description": "a parameter is invalid (named in the body)",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        components = schema.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            components.pop(name, None)
        return schema

    app.openapi = openapi


def install(app: FastAPI) -> None:
    """Register the exception handlers and the schema's error answers."""
    _document_bad_parameters_as_400(app)

    @app.exception_handler(ApiError)
    @app.exception_handler(GeoMonitorError)
    async def _error(request: Request, exc: Exception) -> JSONResponse:
        status = status_of(exc)
        if status == 503:
            return unavailable(str(exc))
        if status >= 500:
            log.error("server error on %s: %s", request.url.path, exc)
        await audit_refusal(request, status, str(exc))
        return JSONResponse(body(str(exc), getattr(exc, "parameter", None)), status_code=status,
                            headers=_headers(exc))

    @app.exception_handler(PoolTimeout)
    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable on %s: %s", request.url.path, exc)
        return unavailable()

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # The framework's own refusals (unreadable JSON body, unknown path, wrong method) in
        # the same body as every other error.
        if exc.status_code < 400:
            return Response(status_code=exc.status_code, headers=exc.headers)
        return JSONResponse(body(str(exc.detail)), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's checks of types and bounds are bad parameters like any other: the same status.
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        parameter = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return JSONResponse(body(first.get("msg", "invalid request"), parameter), status_code=BAD_PARAMETER)
