"""The OGC collections: what each one holds, who may read it, and how its features are built.

The public collections are the published monthly releases (hexagons and totals) and the
reference layers (open data, works sites included). The others need a token and ask the
library's access policy (``geo_monitor.privacy.access``), as the routes they mirror
(``/hexagons``, ``/zones``) do: no role rule lives here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
import psycopg
import shapely

from api.errors import ApiError
from api.ogc.layers import Layer
from geo_monitor.calendar import parse_month
from geo_monitor.privacy import access
from geo_monitor.privacy import releases as published
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings
from geo_monitor.store.layers import LAYERS as REFERENCE_COLUMNS
from geo_monitor.store.layers import layer_rows
from geo_monitor.zones.records import list_zones


@dataclass
class Ask:
    """One caller's request of a collection: who, on which connection, with which extra parameters."""

    conn: psycopg.Connection
    principal: Principal
    settings: Settings
    extra: dict[str, list[str]] = field(default_factory=dict)
    span: tuple[date, date] | None = None  # the datetime parameter, as days (end exclusive)
    version: str | None = None  # the data version the answer is built from


@dataclass(frozen=True)
class Collection:
    """An OGC collection of features."""

    id: str
    title: str
    description: str
    build: Callable[[Ask], Layer]
    public: bool = True
    parameters: dict[str, str] = field(default_factory=dict)  # extra query parameter -> description
    check: Callable[[Ask], None] | None = None  # raises when the caller may not read it
    fields: dict[str, str] = field(default_factory=dict)  # property -> JSON type (api.ogc.schema.TYPES)
    geometry: str = "Geometry"  # the GeoJSON geometry type of every feature ("Geometry": any)


def plain(value: object) -> object:
    """Return a JSON-ready value: numpy scalars as Python ones, NaN and NA as None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is pd.NA or value is pd.NaT or (isinstance(value, float) and not np.isfinite(value)):
        return None
    return value


def records(frame: pd.DataFrame, columns: list[str], **constant: object) -> list[dict]:
    """Return the rows of ``frame`` as property dicts of plain values (plus constant properties)."""
    values = [[plain(v) for v in frame[c].astype(object).tolist()] for c in columns]
    return [{**dict(zip(columns, row, strict=True)), **constant} for row in zip(*values, strict=True)] \
        if len(frame) else []


def _next_month(first: date) -> date:
    return date(first.year + first.month // 12, first.month % 12 + 1, 1)


# --- public: the published releases ----------------------------------------------------------


def _releases(ask: Ask) -> list[published.Release]:
    months = [parse_month(r["month"]) for r in published.list_releases(ask.conn)]
    if ask.span is not None:  # only the months the datetime touches are read
        months = [m for m in months if m < ask.span[1] and _next_month(m) > ask.span[0]]
    return [published.get_release(ask.conn, m, settings=ask.settings) for m in sorted(months)]


def _release_cells(ask: Ask) -> Layer:
    ids, geometries, properties, starts, ends = [], [], [], [], []
    for release in _releases(ask):
        frame = release.cells_frame()
        month = f"{release.month:%Y-%m}"
        columns = ["group", "h3", "arrondissement", "value", "suppressed"]
        rows = records(frame, columns, month=month, version=release.version, resolution=release.resolution)
        ids += [f"{month}-{r['group']}-{r['h3']}" for r in rows]
        geometries += list(frame.geometry.to_numpy())
        properties += rows
        starts += [release.month] * len(rows)
        ends += [_next_month(release.month)] * len(rows)
    return Layer(ids, np.array(geometries, dtype=object), properties, starts, ends)


def _release_totals(ask: Ask) -> Layer:
    shapes = dict(ask.conn.execute(
        "SELECT code, ST_AsBinary(geom) FROM arrondissements UNION ALL SELECT NULL, ST_AsBinary(geom) FROM study_area"
    ).fetchall())
    ids, geometries, properties, starts, ends = [], [], [], [], []
    for release in _releases(ask):
        month = f"{release.month:%Y-%m}"
        rows = records(release.totals_frame(), ["group", "arrondissement", "value", "suppressed", "threshold"],
                       month=month, version=release.version)
        for row in rows:
            ids.append(f"{month}-{row['group']}-{row['arrondissement'] or 'study-area'}")
            wkb = shapes.get(row["arrondissement"])
            geometries.append(None if wkb is None else shapely.from_wkb(wkb))
        properties += rows
        starts += [release.month] * len(rows)
        ends += [_next_month(release.month)] * len(rows)
    return Layer(ids, np.array(geometries, dtype=object), properties, starts, ends)


# --- public: reference layers ----------------------------------------------------------------


def _span_day(value: object) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None


def _reference(layer: str) -> Callable[[Ask], Layer]:
    def build(ask: Ask) -> Layer:
        names = REFERENCE_COLUMNS[layer]
        rows = layer_rows(ask.conn, layer, geometry="wkb")
        properties = [{n: plain(v) for n, v in zip(names, row[:-1], strict=True)} for row in rows]
        geometries = np.array([shapely.from_wkb(r[-1]) if r[-1] else None for r in rows], dtype=object)
        ids = [p[names[0]] if layer != "lines" else f"{p['line']}-{i}" for i, p in enumerate(properties)]
        if layer == "works":
            starts = [_span_day(p["starts_at"]) for p in properties]
            ends = [None if p["ends_at"] is None else date.fromordinal(_span_day(p["ends_at"]).toordinal() + 1)
                    for p in properties]
            return Layer(ids, geometries, properties, starts, ends)
        return Layer(ids, geometries, properties)

    return build


# --- with a token: hexagon counts and zones --------------------------------------------------

HEXAGON_PARAMETERS = {
    "start": "First day of the window (Europe/Paris), YYYY-MM-DD (or give datetime=START/END)",
    "end": "Day after the last day of the window (exclusive), YYYY-MM-DD",
    "resolution": "H3 resolution, 7 (coarse) to 11 (fine); default 9",
    "kind": "incident, outreach or works (repeatable or comma-separated)",
    "category": "Category names of data/categories.csv (repeatable or comma-separated)",
}


def needs(surface: str) -> Callable[[Ask], None]:
    """Return the check of a token collection: a token (else 401), then the policy on /ogc and the surface."""

    def check(ask: Ask) -> None:
        if ask.principal.token_id is None:
            raise ApiError(401, "this collection needs a token", headers={"WWW-Authenticate": "Bearer"})
        access.check(ask.principal, "ogc")
        access.check(ask.principal, surface)

    return check


def listed(ask: Ask, name: str) -> list[str] | None:
    """Return a repeatable or comma-separated extra parameter's values, or None when not given."""
    values = [v.strip() for raw in ask.extra.get(name, []) for v in raw.split(",") if v.strip()]
    return values or None


def _day_param(ask: Ask, name: str) -> date | None:
    value = ask.extra.get(name)
    if not value:
        return None
    try:
        return date.fromisoformat(value[-1])
    except ValueError:
        raise ApiError(400, f"{name} must be a date YYYY-MM-DD, not {value[-1][:40]!r}", name) from None


def hexagon_window(ask: Ask) -> tuple[date, date]:
    """Return the window of a hexagon request: start/end, else datetime, else the latest month with data."""
    start, end = _day_param(ask, "start"), _day_param(ask, "end")
    if start is not None or end is not None:
        if start is None or end is None:
            raise ApiError(400, "give both start and end (or datetime=START/END)", "start" if start is None else "end")
        return start, end
    if ask.span is not None:
        if ask.span[0] == date.min or ask.span[1] == date.max:
            raise ApiError(400, "the hexagon counts need a closed datetime interval (START/END)", "datetime")
        return ask.span
    latest = ask.conn.execute("SELECT max(month) FROM rollup_monthly").fetchone()[0] or date.today().replace(day=1)
    return latest, _next_month(latest)


def _hexagons(ask: Ask) -> Layer:
    start, end = hexagon_window(ask)
    resolution = ask.extra.get("resolution", ["9"])[-1]
    if not resolution.isdigit():
        raise ApiError(400, f"resolution must be a whole number 7-11, not {resolution[:20]!r}", "resolution")
    chosen = access.slice_for(ask.principal, ask.settings, start=start, end=end, resolution=int(resolution),
                              kinds=listed(ask, "kind"), categories=listed(ask, "category"))
    answer = access.hex_counts(ask.conn, ask.principal, chosen, ask.settings)
    frame = answer.frame
    rows = records(frame, ["h3", "count", "population", "rate_per_1000", "share"],
                   start=start.isoformat(), end=end.isoformat(), resolution=chosen.resolution)
    meta = {**chosen.params(), "total": answer.total, **answer.metadata, "notes": chosen.notes}
    return Layer(frame["h3"].tolist(), frame.geometry.to_numpy(), rows, [start] * len(rows), [end] * len(rows), meta)


def _zones(ask: Ask) -> Layer:
    zones = list_zones(ask.conn, ask.principal)
    properties = [z.properties() for z in zones]
    return Layer([z.id for z in zones], np.array([z.geometry for z in zones], dtype=object), properties)


RELEASE_NOTE = ("Published monthly release: one H3 resolution, whole calendar months, counts protected with "
                "noise and suppression (value null and suppressed true: few or no events). Method: /method/en.")
RELEASE_CELL_FIELDS = {"group": "string", "h3": "string", "arrondissement": "integer", "value": "integer",
                       "suppressed": "boolean", "month": "string", "version": "integer", "resolution": "integer"}
RELEASE_TOTAL_FIELDS = {"group": "string", "arrondissement": "integer", "value": "integer", "suppressed": "boolean",
                        "threshold": "integer", "month": "string", "version": "integer"}
REFERENCE_FIELDS = {
    "arrondissements": {"code": "integer", "number": "integer", "name": "string"},
    "quartiers": {"code": "integer", "arrondissement": "integer", "name": "string"},
    "stations": {"station_id": "string", "name": "string", "line": "string", "mode": "string",
                 "arrondissement": "integer"},
    "lines": {"line": "string", "mode": "string", "colour": "string"},
    "works": {"id": "string", "street": "string", "purpose": "string", "owner": "string", "starts_at": "date-time",
              "ends_at": "date-time", "arrondissement": "integer"},
}
HEXAGON_FIELDS = {"h3": "string", "count": "integer", "population": "number", "rate_per_1000": "number",
                  "share": "number", "start": "date", "end": "date", "resolution": "integer"}
ZONE_FIELDS = {"name": "string", "owner_team": "string", "partner_teams": "string[]", "schedule": "object[]",
               "version": "integer", "archived_at": "date-time", "created_at": "date-time", "created_by": "string",
               "updated_at": "date-time", "updated_by": "string", "clipped_share": "number", "area_m2": "number",
               "coverage_hours_per_week": "number", "coverage_hours_by_team": "object"}


def _reference_collection(layer: str, title: str, description: str, geometry: str = "Geometry") -> Collection:
    return Collection(layer, title, description, _reference(layer), fields=REFERENCE_FIELDS[layer], geometry=geometry)


STORE: tuple[Collection, ...] = (
    Collection("release-cells", "Published hexagons per month",
               f"{RELEASE_NOTE} One feature per released month, public group and hexagon.", _release_cells,
               fields=RELEASE_CELL_FIELDS, geometry="Polygon"),
    Collection("release-totals", "Published totals per arrondissement and month",
               f"{RELEASE_NOTE} One feature per released month, public group and arrondissement "
               "(the study-area total has the study area's outline).", _release_totals, fields=RELEASE_TOTAL_FIELDS),
    _reference_collection("arrondissements", "Arrondissements of the study area", "Ville de Paris open data (ODbL)."),
    _reference_collection("quartiers", "Quartiers administratifs", "Ville de Paris open data (ODbL)."),
    _reference_collection("stations", "Metro and RER stations", "Île-de-France Mobilités open data.", "Point"),
    _reference_collection("lines", "Metro and RER lines near the study area", "Île-de-France Mobilités open data."),
    _reference_collection("works", "Works sites (chantiers)",
                          "Ville de Paris open data; datetime selects sites active then."),
    Collection("hexagons", "Event counts per H3 hexagon (token)",
               "Counts, residents, rate per 1,000 residents and share for a slice, as GET /hexagons answers it "
               "for the caller's role. Extra parameters: start, end (or datetime), resolution, kind, category; "
               "without a window, the latest month with data.", _hexagons, public=False,
               parameters=HEXAGON_PARAMETERS, check=needs("hexagons"), fields=HEXAGON_FIELDS, geometry="Polygon"),
    Collection("zones", "Coordination zones (token)", "The zones the caller's team owns or partners "
               "(planners and admins: all of them), as GET /zones answers.", _zones, public=False,
               check=needs("zones"), fields=ZONE_FIELDS),
)
