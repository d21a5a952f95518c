"""The query parameters of a data slice (their checks and the role rules live in geo_monitor.privacy.access)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Query

Start = Annotated[date, Query(description="First day of the window (Europe/Paris), YYYY-MM-DD")]
End = Annotated[date, Query(description="Day after the last day of the window (exclusive), YYYY-MM-DD")]
Resolution = Annotated[int, Query(ge=7, le=11, description="H3 resolution, 7 (coarse) to 11 (fine)")]
Kinds = Annotated[list[str] | None, Query(description="incident, outreach or works (repeatable)")]
Categories = Annotated[list[str] | None, Query(description="Category names of data/categories.csv (repeatable)")]
Area = Annotated[str | None, Query(max_length=40, description="arrondissement:CODE or quartier:CODE (INSEE)")]
Bbox = Annotated[str | None, Query(max_length=200, description="minlon,minlat,maxlon,maxlat (WGS84)")]
Limit = Annotated[int, Query(ge=1, description="Most features in the answer (larger than the maximum is refused)")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Features to skip")]
