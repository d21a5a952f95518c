"""Response models: what the OpenAPI schema promises and the tests check answers against."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field


class Geometry(BaseModel):
    """A GeoJSON geometry (WGS84, lon/lat)."""

    type: str
    coordinates: list[Any]


class HexProperties(BaseModel):
    """One hexagon of a slice."""

    h3: str = Field(description="H3 cell as a hex string")
    count: int | None = Field(description="Events; null when hidden under the suppression threshold")
    population: float = Field(description="Residents (IRIS census population spread by area)")
    rate_per_1000: float | None = Field(description="Events per 1,000 residents; null with no residents")
    share: float | None = Field(description="Share of the slice's total")


class HexFeature(BaseModel):
    """A hexagon feature."""

    type: Literal["Feature"]
    geometry: Geometry
    properties: HexProperties


class HexCollection(BaseModel):
    """Counts per hexagon as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    metadata: dict[str, Any]
    features: list[HexFeature]


class AnyFeature(BaseModel):
    """A feature with free properties."""

    type: Literal["Feature"]
    geometry: Geometry | None
    properties: dict[str, Any]


class AnyCollection(BaseModel):
    """A GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    metadata: dict[str, Any] | None = None
    features: list[AnyFeature]


class ErrorBody(BaseModel):
    """What went wrong, and which parameter."""

    message: str
    parameter: str | None = None


class Error(BaseModel):
    """Every error answer."""

    error: ErrorBody


def error(description: str) -> dict:
    """Return an error answer's OpenAPI entry: always JSON, whatever the route's own media type."""
    return {"model": Error, "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


ERRORS = {
    400: error("a parameter is invalid: a wrong type, out of bounds or not allowed (named in the body)"),
    401: error("no token, or an unknown, expired or revoked one"),
    403: error("the role may not see this"),
    503: error("the database is unavailable (Retry-After)"),
}
NOT_FOUND = {404: error("no such object (or not visible to the caller)")}
RATE_LIMITED = {429: error("too many requests from this address (Retry-After)")}


class GeoJSONResponse(JSONResponse):
    """Documents an answer as ``application/geo+json`` (the routes send the bytes they built)."""

    media_type = "application/geo+json"
