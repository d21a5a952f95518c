"""The public side: only the published monthly releases, exactly as released."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response

from api.cache import cached, request_version
from api.deps import ConnDep, no_parameters, rate_limited
from api.schemas import ERRORS, NOT_FOUND, RATE_LIMITED, AnyCollection, GeoJSONResponse
from geo_monitor.privacy import releases as published

MONTH = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="A released month, YYYY-MM")]

router = APIRouter(prefix="/public", tags=["public"], dependencies=[
    Depends(rate_limited),
    Depends(no_parameters("the public release", ": it is published for whole months, one resolution and the "
                                                "whole study area only")),
])


def _published(request: Request, conn: ConnDep, read: Callable[[], Any]) -> Response:
    """Answer a published GeoJSON (a release or a view of releases), cached by ETag."""
    key = request.app.state.cache.key(request, "public", request_version(request, conn), {})

    def build() -> bytes:
        data = read()
        data = data.to_geojson() if hasattr(data, "to_geojson") else data
        return data if isinstance(data, bytes) else json.dumps(data).encode()

    return cached(request, key, build, public=True)


@router.get("/releases", responses={**ERRORS, **RATE_LIMITED}, summary="The released months")
def releases(request: Request, conn: ConnDep) -> list[dict]:
    """Every released month with its latest version."""
    return published.list_releases(conn)


@router.get("/releases/{month}", response_model=AnyCollection, response_class=GeoJSONResponse,
            responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED},
            summary="One month's published hexagon counts (GeoJSON)")
def release_month(request: Request, conn: ConnDep, month: MONTH) -> Response:
    """Counts per hexagon and public group, with suppressed cells marked and the method's metadata."""
    return _published(request, conn, lambda: published.get_release(conn, month))


@router.get("/rolling/{month}", response_model=AnyCollection, response_class=GeoJSONResponse,
            responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED},
            summary="The 12 months ending with this month, built only from monthly releases")
def rolling(request: Request, conn: ConnDep, month: MONTH) -> Response:
    """A cell is shown only where all 12 monthly releases showed it."""
    return _published(request, conn, lambda: published.rolling_view(conn, month))
