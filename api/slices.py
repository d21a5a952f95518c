"""The query parameters of a data slice, checked once, and what each role may ask of them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated

import shapely
from fastapi import Query

from api.errors import ApiError
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings

Start = Annotated[date, Query(description="First day of the window (Europe/Paris), YYYY-MM-DD")]
End = Annotated[date, Query(description="Day after the last day of the window (exclusive), YYYY-MM-DD")]
Resolution = Annotated[int, Query(ge=7, le=11, description="H3 resolution, 7 (coarse) to 11 (fine)")]
Kinds = Annotated[list[str] | None, Query(description="incident, outreach or works (repeatable)")]
Categories = Annotated[list[str] | None, Query(description="Category names of data/categories.csv (repeatable)")]
Area = Annotated[str | None, Query(max_length=40, description="arrondissement:CODE or quartier:CODE (INSEE)")]
Bbox = Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (WGS84)")]
Limit = Annotated[int, Query(ge=1, description="Most features in the answer (larger than the maximum is refused)")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Features to skip")]

STUDY_BBOX = (2.26, 48.80, 2.45, 48.91)  # generous box around the north-east arrondissements


@dataclass
class Slice:
    """A checked slice request, after the caller's role rules were applied."""

    start: date
    end: date
    resolution: int
    kinds: list[str] | None
    categories: list[str] | None
    area: str | shapely.Geometry | None
    team: str | None = None
    suppress_under: int | None = None
    notes: list[str] = field(default_factory=list)

    def params(self) -> dict:
        """Return the slice as audit-log parameters."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "resolution": self.resolution,
                "kinds": self.kinds, "categories": self.categories,
                "area": self.area if isinstance(self.area, str) or self.area is None else self.area.wkt,
                "team": self.team}


def parse_bbox(text: str) -> shapely.Geometry:
    """Return the polygon of ``minlon,minlat,maxlon,maxlat``, refusing anything else."""
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise ApiError(400, "bbox must be 4 finite numbers: minlon,minlat,maxlon,maxlat", "bbox")
    minx, miny, maxx, maxy = values
    if minx >= maxx or miny >= maxy:
        raise ApiError(400, "bbox must have minlon < maxlon and minlat < maxlat", "bbox")
    sx0, sy0, sx1, sy1 = STUDY_BBOX
    if maxx < sx0 or minx > sx1 or maxy < sy0 or miny > sy1:
        raise ApiError(400, "bbox lies outside the study area", "bbox")
    if (maxx - minx) * (maxy - miny) > (sx1 - sx0) * (sy1 - sy0):
        raise ApiError(400, "bbox is larger than the study area; omit it to get the whole area", "bbox")
    return shapely.box(minx, miny, maxx, maxy)


def make_slice(principal: Principal, settings: Settings, *, start: date, end: date, resolution: int,
               kinds: list[str] | None, categories: list[str] | None, area: str | None,
               bbox: str | None) -> Slice:
    """Check a slice and apply the role's rules (see the API issue's role matrix)."""
    if area is not None and bbox is not None:
        raise ApiError(400, "give either area or bbox, not both", "bbox")
    if end <= start:
        raise ApiError(400, f"end {end} must come after start {start}", "end")
    if resolution not in settings.resolutions:
        raise ApiError(400, f"resolution {resolution} is not served", "resolution")
    for kind in kinds or []:
        if kind not in ("incident", "outreach", "works"):
            raise ApiError(400, f"unknown kind {kind[:40]!r}; kinds are incident, outreach, works", "kind")
    region = parse_bbox(bbox) if bbox is not None else area  # an empty bbox is a bad one, not none
    chosen = Slice(start, end, resolution, kinds, categories, region)
    asks_outreach = kinds is None or "outreach" in kinds
    if principal.role == "police":
        if kinds is None:
            chosen.kinds = ["incident", "works"]
            chosen.notes.append("police: incidents and works (ask kind=outreach for coarse outreach counts)")
        elif "outreach" in kinds:
            if kinds != ["outreach"]:
                raise ApiError(400, "ask for outreach on its own (kind=outreach)", "kind")
            if resolution > settings.police_outreach_max_resolution:
                raise ApiError(403, f"police see outreach counts only at resolution "
                                    f"{settings.police_outreach_max_resolution} or coarser", "resolution")
            chosen.suppress_under = settings.release_k
    elif principal.role == "outreach":
        if kinds is None:
            chosen.kinds = ["incident"]
        elif asks_outreach:
            if kinds != ["outreach"]:
                raise ApiError(400, "ask for outreach on its own (kind=outreach)", "kind")
            chosen.team = principal.team
            chosen.notes.append(f"outreach: only team {principal.team}'s own records")
    return chosen
