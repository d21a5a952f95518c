"""Response models: what the OpenAPI schema promises and the tests check answers against."""

from __future__ import annotations

from typing import Any, Literal

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


ERRORS = {
    400: {"model": Error, "description": "a parameter is invalid (named in the body)"},
    401: {"model": Error, "description": "no token, or an unknown, expired or revoked one"},
    403: {"model": Error, "description": "the role may not see this"},
    422: {"model": Error, "description": "a parameter has the wrong type (named in the body)"},
    503: {"model": Error, "description": "the database is unavailable (Retry-After)"},
}
