"""Hexagon counts for any slice, as GeoJSON, and the same as downloadable exports.

What a caller may ask and how the answer is protected is the library's access policy
(``geo_monitor.privacy.access``); this module parses, formats and caches.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response

from api.cache import cached, request_version
from api.deps import ConnDep, PrincipalDep, SettingsDep, require
from api.schemas import ERRORS, GeoJSONResponse, HexCollection
from api.slices import Area, Bbox, Categories, End, Kinds, Limit, Offset, Resolution, Start
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.export import frame_bytes, geojson_bytes
from geo_monitor.hexagons import cells_geojson
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import audit

router = APIRouter(tags=["hexagons"])
PROPERTIES = ["h3", "count", "population", "rate_per_1000", "share"]
EXPORT_FILE = {"description": "the file", "content": {
    "application/geo+json": {"schema": {"$ref": "#/components/schemas/HexCollection"}},
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
    "application/geopackage+sqlite3": {"schema": {"type": "string", "format": "binary"}},
}}


def _check_page(limit: int, settings) -> None:
    if limit > settings.api_max_page:
        raise InvalidArgumentError(f"limit {limit} is over the maximum of {settings.api_max_page}", "limit")


@router.get("/hexagons", response_model=HexCollection, response_class=GeoJSONResponse, responses=ERRORS,
            dependencies=[Depends(require("hexagons"))],
            summary="Event counts per H3 hexagon for a slice")
def hexagons(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
             start: Start, end: End, resolution: Resolution = 9, kind: Kinds = None, category: Categories = None,
             area: Area = None, bbox: Bbox = None, limit: Limit = 5000, offset: Offset = 0) -> Response:
    """Counts, residents, rate per 1,000 residents and share, per hexagon (empty ones left out)."""
    _check_page(limit, settings)
    chosen = access.slice_for(principal, settings, start=start, end=end, resolution=resolution, kinds=kind,
                              categories=category, area=area, bbox=bbox)
    key = request.app.state.cache.key(request, f"{principal.role}:{principal.team}", request_version(request, conn))

    def build() -> bytes:
        answer = access.hex_counts(conn, principal, chosen, settings, geometry=False)
        page = answer.frame.iloc[offset:offset + limit]
        meta = {**chosen.params(), "total": answer.total, "features": len(answer.frame), "offset": offset,
                "limit": limit, **answer.metadata, "notes": chosen.notes}
        return geojson_bytes(page, PROPERTIES, meta, cells_geojson(page["cell"].to_numpy()))

    response = cached(request, key, build)
    audit(conn, principal, "hexagons", chosen.params(), response.status_code)
    return response


@router.get("/exports/hexagons.{fmt}", response_class=Response, responses={**ERRORS, 200: EXPORT_FILE},
            dependencies=[Depends(require("exports"))],
            summary="The same counts as a GeoJSON, CSV, GeoParquet or GeoPackage file (planners)")
def export_hexagons(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
                    fmt: Annotated[Literal["geojson", "csv", "parquet", "gpkg"], Path(description="File format")],
                    start: Start, end: End, resolution: Resolution = 9, kind: Kinds = None,
                    category: Categories = None, area: Area = None, bbox: Bbox = None) -> Response:
    """Download a slice's hexagon counts."""
    chosen = access.slice_for(principal, settings, start=start, end=end, resolution=resolution, kinds=kind,
                              categories=category, area=area, bbox=bbox)
    frame = access.hex_counts(conn, principal, chosen, settings).frame.astype({"count": "Int64"})
    name = f"hexagons-{chosen.start}-{chosen.end}-r{chosen.resolution}.{fmt}"
    if fmt == "geojson":  # the GeoJSON of /hexagons, with the slice as its metadata
        content, media = geojson_bytes(frame, PROPERTIES, chosen.params()), "application/geo+json"
    else:  # written as geo-monitor export FILE writes it (the GeoPackage's layer is "hexagons")
        content, media = frame_bytes(frame, f"hexagons.{fmt}")
    audit(conn, principal, f"export.{fmt}", chosen.params(), 200)
    return Response(content, media_type=media,
                    headers={"Content-Disposition": f'attachment; filename="{name}"',
                             "X-Slice": json.dumps(chosen.params())[:2000]})
