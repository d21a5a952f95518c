"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from api.errors import unavailable
from geo_monitor.db import schema_version

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness: the process answers")
def health() -> dict:
    """Answer while the process runs, whatever the database does."""
    return {"status": "ok"}


@router.get("/ready", summary="Readiness: the database answers and is migrated",
            responses={503: {"description": "database unavailable"}})
def ready(request: Request) -> JSONResponse:
    """Check the database with a real query."""
    try:
        with request.app.state.pool.connection(timeout=2) as conn:
            version = schema_version(conn)
            loaded = conn.execute("SELECT count(*) FROM study_area").fetchone()[0] if version else 0
    except Exception:  # noqa: BLE001 - readiness reports any failure as not ready
        return unavailable("the database is unavailable")
    if not version or not loaded:
        return unavailable("the database is not set up: run `geo-monitor db up` and `geo-monitor reference load`")
    return JSONResponse({"status": "ready", "schema_version": version})
