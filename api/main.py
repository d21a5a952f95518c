"""The FastAPI application: settings and the connection pool live in the lifespan."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from api import errors, security
from api.cache import ResponseCache
from api.deps import RateLimiter, RecentCheck
from api.routes import (
    admin,
    analysis,
    events,
    health,
    hexagons,
    maps,
    method,
    ogc,
    plan,
    public,
    reference,
    reports,
    tiles,
    zones,
)
from geo_monitor import __version__, db
from geo_monitor.settings import Settings, get_settings

log = logging.getLogger("geo_monitor.api")


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application for the given settings (tests pass their own)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool_check = RecentCheck()
        pool = ConnectionPool(
            settings.database_url, min_size=1, max_size=settings.api_pool_size, open=False,
            kwargs={"connect_timeout": 3, "application_name": "geo_monitor_api",
                    **db.session_kwargs(settings.database_url)},
            check=app.state.pool_check, reconnect_timeout=0,
        )
        # Endpoints and database calls run in anyio's worker threads; requests are CPU-bound, so
        # more threads than this only take turns at the GIL (see the setting).
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.api_threads
        pool.open(wait=False)  # start even when the database is down; readiness says so
        app.state.pool = pool
        try:
            yield
        finally:
            pool.close()

    app = FastAPI(
        title="geo_monitor API",
        version=__version__,
        description=(
            "Anonymised monitoring of public space in north-east Paris. Planners, police and outreach "
            "teams use a bearer token (`geo-monitor token create`); the public sees only the published "
            "monthly releases under /public."
        ),
        lifespan=lifespan,
        docs_url=None,  # served by maps.mount_assets from the local Swagger UI copy
        redoc_url=None,  # ReDoc loads from a CDN: not offered
    )
    app.state.settings = settings
    app.state.settings_connect_timeout = 3.0
    app.state.limiter = RateLimiter(settings.public_rate_per_minute)
    app.state.cache = ResponseCache()
    app.state.trusted_proxies = security.trusted_networks(settings.api_trusted_proxies)
    app.add_middleware(security.BodyLimit, limit=settings.api_max_json_bytes)
    app.add_middleware(security.SecurityHeaders)  # added last: outermost, so every answer gets the headers
    errors.install(app)
    for router in (health.router, events.router, hexagons.router, analysis.router, reference.router,
                   public.router, method.router, admin.router, zones.router, maps.router, ogc.router,
                   tiles.router, plan.router, reports.router):
        app.include_router(router)
    maps.mount_assets(app)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory api.main:app_factory``."""
    return create_app()
