"""Vector tiles (MVT, XYZ) of the OGC collections, encoded by PostGIS ``ST_AsMVT``, with a TileJSON each.

A tile holds the same features as the collection's items for the same caller and
parameters (the hexagon counts a role may see, the public releases, reference layers), so a
GIS opens every resolution and month as a vector tile layer without fetching GeoJSON.
"""

from __future__ import annotations

import json
import math
from typing import Annotated
from urllib.parse import urlencode

import shapely
from fastapi import APIRouter, Path, Request, Response

from api.cache import cached, request_version
from api.deps import ConnDep, PrincipalDep, SettingsDep
from api.errors import ApiError
from api.routes.ogc import ask_collection, collection_layer
from api.schemas import ERRORS, NOT_FOUND, RATE_LIMITED
from geo_monitor.privacy import access

router = APIRouter(prefix="/tiles", tags=["tiles"])
MVT = "application/vnd.mapbox-vector-tile"
MIN_ZOOM, MAX_ZOOM = 9, 18
CollectionId = Annotated[str, Path(max_length=40, description="A collection id of /ogc/collections")]
Zoom = Annotated[int, Path(ge=0, le=22, description="Zoom level")]
Index = Annotated[int, Path(ge=0, le=2**22, description="Tile column or row (XYZ, origin top left)")]
TILE_SQL = """
SELECT ST_AsMVT(t, %(name)s, 4096, 'geom') FROM (
    SELECT ST_AsMVTGeom(ST_Transform(ST_GeomFromWKB(f.wkb, 4326), 3857), ST_TileEnvelope(%(z)s, %(x)s, %(y)s),
                        4096, 64, true) AS geom, f.properties
    FROM unnest(%(wkb)s::bytea[], %(properties)s::jsonb[]) AS f(wkb, properties)
) t WHERE t.geom IS NOT NULL
"""


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """Return a tile's lon/lat box (west, south, east, north) in the XYZ scheme."""
    n = 2 ** z

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360 - 180, lat(y + 1), (x + 1) / n * 360 - 180, lat(y)


@router.get("/{collection_id}/{z}/{x}/{y}.pbf", response_class=Response,
            responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED, 200: {"content": {MVT: {}}, "description": "the tile"}},
            summary="One vector tile (MVT) of a collection, with the collection's own parameters")
def tile(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
         collection_id: CollectionId, z: Zoom, x: Index, y: Index) -> Response:
    """The features of the collection in tile z/x/y (the layer is named after the collection)."""
    if x >= 2 ** z or y >= 2 ** z:
        raise ApiError(404, f"no tile {z}/{x}/{y}: x and y must be below 2^z", "x")
    ask, chosen = ask_collection(request, conn, principal, settings, collection_id)
    if not chosen.public:
        access.check(principal, "tiles")
    scope = "public" if chosen.public else f"{principal.role}:{principal.team}"
    key = request.app.state.cache.key(request, scope, request_version(request, conn))

    def build() -> bytes:
        layer = collection_layer(ask, chosen)
        west, south, east, north = tile_bounds(z, x, y)
        pad = (east - west) / 16  # the buffer ST_AsMVTGeom keeps around the tile
        inside = layer.mask(shapely.box(west - pad, south - pad, east + pad, north + pad), ask.span).nonzero()[0]
        inside = [i for i in inside if layer.geometries[i] is not None]
        if not inside:
            return b""
        wkb = [shapely.to_wkb(layer.geometries[i]) for i in inside]
        properties = [json.dumps(layer.properties[i], default=str) for i in inside]
        row = conn.execute(TILE_SQL, {"name": chosen.id, "z": z, "x": x, "y": y, "wkb": wkb,
                                      "properties": properties}).fetchone()
        return bytes(row[0] or b"")

    return cached(request, key, build, MVT, public=chosen.public)


@router.get("/{collection_id}.json", responses={**ERRORS, **NOT_FOUND, **RATE_LIMITED},
            summary="TileJSON 3.0 of a collection's vector tiles")
def tilejson(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
             collection_id: CollectionId) -> Response:
    """The tile URL template (with the same query parameters), zoom range, bounds and the layer's fields."""
    ask, chosen = ask_collection(request, conn, principal, settings, collection_id)
    if not chosen.public:
        access.check(principal, "tiles")
    layer = collection_layer(ask, chosen)
    root = str(request.base_url).rstrip("/")
    query = urlencode(list(request.query_params.multi_items()))
    bounds = layer.bounds() or [2.26, 48.80, 2.45, 48.91]
    fields = {k: type(v).__name__ for p in layer.properties[:50] for k, v in p.items()}
    document = {
        "tilejson": "3.0.0", "name": chosen.title, "description": chosen.description,
        "tiles": [f"{root}/tiles/{chosen.id}/{{z}}/{{x}}/{{y}}.pbf" + (f"?{query}" if query else "")],
        "minzoom": MIN_ZOOM, "maxzoom": MAX_ZOOM, "bounds": bounds,
        "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, 13],
        "vector_layers": [{"id": chosen.id, "fields": fields, "minzoom": MIN_ZOOM, "maxzoom": MAX_ZOOM}],
    }
    return Response(json.dumps(document), media_type="application/json")
