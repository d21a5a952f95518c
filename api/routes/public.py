"""The public side: only the published monthly releases, exactly as released."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response

from api.cache import cached, data_version
from api.deps import ConnDep, rate_limited
from api.errors import ApiError
from api.schemas import ERRORS, NOT_FOUND, RATE_LIMITED, AnyCollection, GeoJSONResponse
from geo_monitor.privacy import releases as published

MONTH = Annotated[str, Path(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="A released month, YYYY-MM")]


def no_custom_queries(request: Request) -> None:
    """Refuse any query parameter: the public sees fixed snapshots, never a custom slice."""
    if request.query_params:
        names = ", ".join(sorted(set(request.query_params.keys())))[:100]
        raise ApiError(400, f"the public release takes no parameters ({names}): it is published for whole "
                            "months, one resolution and the whole study area only", names.split(",")[0])


router = APIRouter(prefix="/public", tags=["public"], dependencies=[Depends(rate_limited), Depends(no_custom_queries)])


@router.get("/releases", responses={**ERRORS, **RATE_LIMITED}, summary="The released months")
def releases(request: Request, conn: ConnDep) -> list[dict]:
    """Every released month with its latest version."""
    return published.list_releases(conn)


@router.get("/releases/{month}", response_model=AnyCollection, response_class=GeoJSONResponse,
            responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED},
            summary="One month's published hexagon counts (GeoJSON)")
def release_month(request: Request, conn: ConnDep, month: MONTH) -> Response:
    """Counts per hexagon and public group, with suppressed cells marked and the method's metadata."""
    key = request.app.state.cache.key(request, "public", data_version(conn), {})

    def build() -> bytes:
        data = published.get_release(conn, month).to_geojson()
        return data if isinstance(data, bytes) else json.dumps(data).encode()

    return cached(request, key, build, public=True)


@router.get("/rolling/{month}", response_model=AnyCollection, response_class=GeoJSONResponse,
            responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED},
            summary="The 12 months ending with this month, built only from monthly releases")
def rolling(request: Request, conn: ConnDep, month: MONTH) -> Response:
    """A cell is shown only where all 12 monthly releases showed it."""
    key = request.app.state.cache.key(request, "public", data_version(conn), {})

    def build() -> bytes:
        data = published.rolling_view(conn, month)
        data = data.to_geojson() if hasattr(data, "to_geojson") else data
        return data if isinstance(data, bytes) else json.dumps(data).encode()

    return cached(request, key, build, public=True)



