"""Reference layers (public open data): arrondissements, quartiers, stations, lines, works."""

from __future__ import annotations

import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response

from api.cache import cached, data_version
from api.deps import ConnDep, rate_limited
from api.errors import ApiError
from api.schemas import ERRORS, RATE_LIMITED, AnyCollection, GeoJSONResponse

router = APIRouter(tags=["reference"])

LAYERS = {
    "arrondissements": "SELECT code, number, name, ST_AsGeoJSON(l.geom, 6) FROM arrondissements l, study_area s "
                       "WHERE l.code = ANY(s.codes) ORDER BY code",
    "quartiers": "SELECT code, arrondissement, name, ST_AsGeoJSON(l.geom, 6) FROM quartiers l, study_area s "
                 "WHERE l.arrondissement = ANY(s.codes) ORDER BY code",
    "stations": "SELECT station_id, name, line, mode, arrondissement, ST_AsGeoJSON(l.geom, 6) "
                "FROM stations l, study_area s WHERE l.arrondissement = ANY(s.codes) ORDER BY name, line",
    "lines": "SELECT line, mode, colour, ST_AsGeoJSON(ST_Intersection(geom, ST_Buffer((SELECT geom FROM study_area), "
             "0.005)), 6) FROM rail_lines WHERE ST_Intersects(geom, (SELECT geom FROM study_area))",
    "works": "SELECT l.id, street, purpose, owner, starts_at::text, ends_at::text, arrondissement, "
             "ST_AsGeoJSON(l.geom, 6) FROM works_sites l, study_area s WHERE l.arrondissement = ANY(s.codes) "
             "ORDER BY id",
}


@router.get("/reference/{layer}", response_model=AnyCollection, response_class=GeoJSONResponse,
            responses={**ERRORS, **RATE_LIMITED},
            dependencies=[Depends(rate_limited)], summary="A reference layer of the study area (open data)")
def reference_layer(request: Request, conn: ConnDep,
                    layer: Annotated[Literal["arrondissements", "quartiers", "stations", "lines", "works"],
                                     Path(description="Which layer")]) -> Response:
    """Official open data (Ville de Paris, Île-de-France Mobilités), clipped to the study area."""
    if request.query_params:  # the layers take none: a query string must not make a new cache entry
        name = sorted(request.query_params.keys())[0][:40]
        raise ApiError(400, f"reference layers take no query parameters (got {name!r})", name)
    key = request.app.state.cache.key(request, "public", data_version(conn), {})

    def build() -> bytes:
        cur = conn.execute(LAYERS[layer])
        names = [d.name for d in cur.description][:-1]
        features = []
        for row in cur.fetchall():
            props = dict(zip(names, row[:-1], strict=True))
            geometry = row[-1] or "null"
            features.append(f'{{"type":"Feature","geometry":{geometry},"properties":{json.dumps(props, default=str)}}}')
        return ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}").encode()

    return cached(request, key, build, public=True)

