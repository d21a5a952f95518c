"""Reference layers (public open data): arrondissements, quartiers, stations, lines, works."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request, Response

from api.cache import cached, request_version
from api.deps import ConnDep, rate_limited
from api.schemas import ERRORS, RATE_LIMITED, AnyCollection, GeoJSONResponse
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.store.layers import LAYERS, layer_rows

router = APIRouter(tags=["reference"])


def _value(value: object) -> object:
    """Return a property as JSON: a timestamp in ISO 8601 (UTC), anything else as it is."""
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else value


@router.get("/reference/{layer}", response_model=AnyCollection, response_class=GeoJSONResponse,
            responses={**ERRORS, **RATE_LIMITED},
            dependencies=[Depends(rate_limited)], summary="A reference layer of the study area (open data)")
def reference_layer(request: Request, conn: ConnDep,
                    layer: Annotated[Literal["arrondissements", "quartiers", "stations", "lines", "works"],
                                     Path(description="Which layer")]) -> Response:
    """Official open data (Ville de Paris, Île-de-France Mobilités) of the study area and its edge."""
    if request.query_params:  # the layers take none: a query string must not make a new cache entry
        name = sorted(request.query_params.keys())[0][:40]
        raise InvalidArgumentError(f"reference layers take no query parameters (got {name!r})", name)
    key = request.app.state.cache.key(request, "public", request_version(request, conn), {})

    def build() -> bytes:
        features = []
        for row in layer_rows(conn, layer, geometry="geojson"):
            props = {name: _value(value) for name, value in zip(LAYERS[layer], row[:-1], strict=True)}
            geometry = row[-1] or "null"
            features.append(f'{{"type":"Feature","geometry":{geometry},"properties":{json.dumps(props)}}}')
        return ('{"type":"FeatureCollection","features":[' + ",".join(features) + "]}").encode()

    return cached(request, key, build, public=True)
