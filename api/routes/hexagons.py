"""Hexagon counts for any slice, as GeoJSON, and the same as downloadable exports."""

from __future__ import annotations

import io
import json
from typing import Annotated, Literal

import geopandas as gpd
from fastapi import APIRouter, Depends, Path, Request, Response

from api.cache import cached, data_version
from api.deps import ConnDep, PrincipalDep, SettingsDep, require
from api.errors import ApiError
from api.schemas import ERRORS, GeoJSONResponse, HexCollection
from api.slices import (
    Area,
    Bbox,
    Categories,
    End,
    Kinds,
    Limit,
    Offset,
    Resolution,
    Slice,
    Start,
    make_slice,
)
from geo_monitor.analysis.counts import hex_counts
from geo_monitor.export import geojson_bytes
from geo_monitor.privacy.tokens import audit

router = APIRouter(tags=["hexagons"])
READERS = Depends(require("admin", "planner", "police", "outreach"))
PROPERTIES = ["h3", "count", "population", "rate_per_1000", "share"]
EXPORT_FILE = {"description": "the file", "content": {
    "application/geo+json": {"schema": {"$ref": "#/components/schemas/HexCollection"}},
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
}}


def _slice_frame(conn, chosen: Slice, settings) -> gpd.GeoDataFrame:
    frame = hex_counts(conn, start=chosen.start, end=chosen.end, resolution=chosen.resolution,
                       kinds=chosen.kinds, categories=chosen.categories, area=chosen.area, team=chosen.team,
                       settings=settings)
    frame["count"] = frame["count"].astype(object)
    if chosen.suppress_under:
        hidden = frame["count"] < chosen.suppress_under
        frame.loc[hidden, ["count", "share", "rate_per_1000"]] = None
    return frame


def _check_page(limit: int, settings) -> None:
    if limit > settings.api_max_page:
        raise ApiError(400, f"limit {limit} is over the maximum of {settings.api_max_page}", "limit")


@router.get("/hexagons", response_model=HexCollection, response_class=GeoJSONResponse, responses=ERRORS,
            dependencies=[READERS],
            summary="Event counts per H3 hexagon for a slice")
def hexagons(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
             start: Start, end: End, resolution: Resolution = 9, kind: Kinds = None, category: Categories = None,
             area: Area = None, bbox: Bbox = None, limit: Limit = 5000, offset: Offset = 0) -> Response:
    """Counts, residents, rate per 1,000 residents and share, per hexagon (empty ones left out)."""
    _check_page(limit, settings)
    chosen = make_slice(principal, settings, start=start, end=end, resolution=resolution, kinds=kind,
                        categories=category, area=area, bbox=bbox)
    etag = request.app.state.cache.etag(request, f"{principal.role}:{principal.team}", data_version(conn))

    def build() -> bytes:
        frame = _slice_frame(conn, chosen, settings)
        total = int(frame["count"].fillna(0).sum())
        page = frame.iloc[offset:offset + limit]
        meta = {**chosen.params(), "total": total, "features": len(frame), "offset": offset, "limit": limit,
                "suppressed_under": chosen.suppress_under, "notes": chosen.notes}
        return geojson_bytes(page, PROPERTIES, meta)

    response = cached(request, etag, build)
    audit(conn, principal, "hexagons", chosen.params(), response.status_code)
    return response


@router.get("/exports/hexagons.{fmt}", response_class=Response, responses={**ERRORS, 200: EXPORT_FILE},
            dependencies=[Depends(require("admin", "planner"))],
            summary="The same counts as a GeoJSON, CSV or GeoParquet file (planners)")
def export_hexagons(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
                    fmt: Annotated[Literal["geojson", "csv", "parquet"], Path(description="File format")],
                    start: Start, end: End, resolution: Resolution = 9, kind: Kinds = None,
                    category: Categories = None, area: Area = None, bbox: Bbox = None) -> Response:
    """Download a slice's hexagon counts."""
    chosen = make_slice(principal, settings, start=start, end=end, resolution=resolution, kinds=kind,
                        categories=category, area=area, bbox=bbox)
    frame = _slice_frame(conn, chosen, settings).drop(columns=["cell"])
    name = f"hexagons-{chosen.start}-{chosen.end}-r{chosen.resolution}.{fmt}"
    if fmt == "geojson":
        content, media = geojson_bytes(frame, PROPERTIES, chosen.params()), "application/geo+json"
    elif fmt == "csv":
        content, media = frame.drop(columns="geometry").to_csv(index=False).encode(), "text/csv"
    else:
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        content, media = buffer.getvalue(), "application/vnd.apache.parquet"
    audit(conn, principal, f"export.{fmt}", chosen.params(), 200)
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Slice": json.dumps(chosen.params())[:2000]})
