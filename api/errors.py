"""Errors as HTTP answers: one table from library error to status; bodies say what and where."""

from __future__ import annotations

import logging

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
    GeoMonitorError,
    InputFileError,
    InvalidArgumentError,
    NotFoundError,
    ReferenceDataError,
)

log = logging.getLogger("geo_monitor.api")
RETRY_AFTER_SECONDS = 5

STATUS: list[tuple[type[Exception], int]] = [
    (InvalidArgumentError, 400),
    (InputFileError, 400),
    (AccessDeniedError, 403),
    (NotFoundError, 404),
    (DatabaseUnavailableError, 503),
    (ReferenceDataError, 503),
    (ConfigurationError, 500),
]


class ApiError(Exception):
    """An HTTP error raised by the API layer itself (auth, limits)."""

    def __init__(self, status: int, message: str, parameter: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.parameter, self.headers = status, parameter, headers or {}


def body(message: str, parameter: str | None = None) -> dict:
    """Return the error body every endpoint uses."""
    error = {"message": message}
    if parameter:
        error["parameter"] = parameter
    return {"error": error}


def unavailable(message: str = "the database is unavailable; try again shortly") -> JSONResponse:
    """Return a 503 with Retry-After."""
    return JSONResponse(body(message), status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def install(app: FastAPI) -> None:
    """Register the exception handlers."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        await audit_refusal(request, exc.status, str(exc))
        return JSONResponse(body(str(exc), exc.parameter), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(GeoMonitorError)
    async def _library_error(request: Request, exc: GeoMonitorError) -> JSONResponse:
        status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
        if status == 503:
            return unavailable(str(exc))
        if status >= 500:
            log.error("server error on %s: %s", request.url.path, exc)
        await audit_refusal(request, status, str(exc))
        return JSONResponse(body(str(exc), getattr(exc, "parameter", None)), status_code=status)

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
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        parameter = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return JSONResponse(body(first.get("msg", "invalid request"), parameter), status_code=422)
