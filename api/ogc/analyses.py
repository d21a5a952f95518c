"""The OGC collections of the analyses: Gi* hot and cold spots and the coverage gap, as /hotspots and /coverage.

Who may read them is the access policy's (surfaces ``hotspots`` and ``coverage``, on top of
``ogc``), the kinds an analysis may use are ``access.analysis_kinds``, and the statistics are
the library's own calls, the same ones the routes make: nothing is computed here.
"""

from __future__ import annotations

from datetime import date

from api.errors import ApiError
from api.ogc.collections import (
    HEXAGON_PARAMETERS,
    Ask,
    Collection,
    hexagon_window,
    listed,
    needs,
    records,
)
from api.ogc.layers import Layer
from geo_monitor.analysis.coverage import coverage_gap
from geo_monitor.analysis.hotspots import METHOD
from geo_monitor.analysis.hotspots import hotspots as find_hotspots
from geo_monitor.privacy import access

HOTSPOT_PARAMETERS = {
    **HEXAGON_PARAMETERS,
    "resolution": "H3 resolution, 7 (coarse) to 11 (fine); default 10, as GET /hotspots",
    "k": "Neighbourhood radius in rings, 1-5 (1: 7 cells, 2: 19); default 1",
}
COVERAGE_PARAMETERS = {name: HEXAGON_PARAMETERS[name] for name in ("start", "end", "resolution")}
WINDOW_FIELDS = {"start": "date", "end": "date", "resolution": "integer"}
HOTSPOT_FIELDS = {"h3": "string", "count": "integer", "z": "number", "p": "number", "gi_bin": "integer",
                  "label": "string", **WINDOW_FIELDS}
COVERAGE_FIELDS = {"h3": "string", "incidents": "integer", "outreach": "integer", "ratio": "number",
                   "incident_share": "number", "outreach_share": "number", "gap": "number", "status": "string",
                   "uncovered": "boolean", **WINDOW_FIELDS}


def whole(ask: Ask, name: str, default: int, low: int, high: int) -> int:
    """Return a whole-number extra parameter within ``[low, high]`` (the last one given), else its default."""
    value = ask.extra.get(name, [str(default)])[-1]
    if not value.isdigit() or not low <= int(value) <= high:
        raise ApiError(400, f"{name} must be a whole number {low}-{high}, not {value[:20]!r}", name)
    return int(value)


def _layer(frame, columns: list[str], start: date, end: date, resolution: int, meta: dict) -> Layer:
    window = {"start": start.isoformat(), "end": end.isoformat(), "resolution": resolution}
    rows = records(frame, columns, **window)
    return Layer(frame["h3"].tolist(), frame.geometry.to_numpy(), rows, [start] * len(rows), [end] * len(rows),
                 {**window, **meta})


def _hotspots(ask: Ask) -> Layer:
    start, end = hexagon_window(ask)
    resolution, k = whole(ask, "resolution", 10, 7, 11), whole(ask, "k", 1, 1, 5)
    kinds = access.analysis_kinds(ask.principal, listed(ask, "kind"))
    categories = listed(ask, "category")
    frame = find_hotspots(ask.conn, start=start, end=end, resolution=resolution, kinds=kinds,
                          categories=categories, k=k, settings=ask.settings)
    columns = [c for c in HOTSPOT_FIELDS if c not in WINDOW_FIELDS]
    return _layer(frame, columns, start, end, resolution,
                  {"kinds": kinds, "categories": categories, "k": k, "method": METHOD})


def _coverage(ask: Ask) -> Layer:
    start, end = hexagon_window(ask)
    resolution = whole(ask, "resolution", 9, 7, 11)
    frame = coverage_gap(ask.conn, start=start, end=end, resolution=resolution, settings=ask.settings)
    columns = [c for c in frame.columns if c not in ("geometry", "cell")]
    return _layer(frame, columns, start, end, resolution, {})


ANALYSES: tuple[Collection, ...] = (
    Collection("hotspots", "Gi* hot and cold spots (token)",
               "Getis-Ord Gi* over the whole study grid, as GET /hotspots answers it for the caller's role: "
               "per cell its count, z, two-sided p (Benjamini-Hochberg FDR), class gi_bin (-3..3) and label. "
               "Without a window, the latest month with data.", _hotspots, public=False,
               parameters=HOTSPOT_PARAMETERS, check=needs("hotspots"), fields=HOTSPOT_FIELDS, geometry="Polygon"),
    Collection("coverage", "Coverage gap: incidents against outreach (token)",
               "Incidents and outreach contacts per cell, their ratio, shares, gap and status, as GET /coverage "
               "answers it. Without a window, the latest month with data.", _coverage, public=False,
               parameters=COVERAGE_PARAMETERS, check=needs("coverage"), fields=COVERAGE_FIELDS, geometry="Polygon"),
)
