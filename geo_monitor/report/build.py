"""Assemble the yearly evaluation: the planners' edition from the store, the public one from releases only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pandas as pd
import psycopg
import shapely

from geo_monitor import hexagons
from geo_monitor.calendar import PARIS
from geo_monitor.errors import InvalidArgumentError, NotFoundError
from geo_monitor.plan.actions import list_actions
from geo_monitor.plan.figures import Figure, year_bounds
from geo_monitor.plan.indicators import year_figures
from geo_monitor.plan.places import list_places
from geo_monitor.settings import Settings, get_settings

MAP_RESOLUTION = 9


@dataclass
class ReportData:
    """Everything the yearly report shows, before it is turned into HTML."""

    year: int
    public: bool
    figures: list[Figure]
    actions: list[dict]
    places: list[dict]
    objectives: list[dict]
    partners: dict[str, str]
    maps: dict[str, dict] = field(default_factory=dict)  # name -> {polygons, values, highlight}
    outlines: list[shapely.Geometry] = field(default_factory=list)
    notes: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = True

    def figure(self, key: str) -> Figure:
        """Return the figure with this key."""
        return next(f for f in self.figures if f.key == key)


def check_year(conn: psycopg.Connection, year: int, *, today: date | None = None) -> list[tuple[str, str]]:
    """Refuse a future year, a year before any plan or a year with no data; return notes (year not over)."""
    today = today or datetime.now(PARIS).date()
    if year > today.year:
        raise InvalidArgumentError(f"{year} has not begun (today is {today}): a report covers a past or the current year",
                                   "year")
    first_action = conn.execute("SELECT min(coalesce(starts_on, '2019-05-27'::date)) FROM plan_actions").fetchone()[0]
    if first_action is None:
        raise NotFoundError("no plan is loaded: run `geo-monitor plan load data/plan_2019_2021.yaml` first")
    if year < first_action.year:
        raise InvalidArgumentError(f"{year} is before any plan: the first action starts on {first_action}", "year")
    first, end = year_bounds(year)
    has_events = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM events WHERE occurred_at >= %s::date::timestamp AT TIME ZONE 'Europe/Paris' "
        "AND occurred_at < %s::date::timestamp AT TIME ZONE 'Europe/Paris')", (first, end)).fetchone()[0]
    has_updates = conn.execute("SELECT EXISTS (SELECT 1 FROM plan_updates WHERE on_date >= %s AND on_date < %s)",
                               (first, end)).fetchone()[0]
    if not has_events and not has_updates:
        raise NotFoundError(f"no data for {year}: no event and no plan update is dated in that year "
                            "(ingest the year's files, or choose another year)")
    if year == today.year:
        return [(f"L'année {year} n'est pas finie : chiffres au {today:%d/%m/%Y}.",
                 f"{year} is not over: figures as of {today:%Y-%m-%d}.")]
    return []


def _outlines(conn: psycopg.Connection) -> list[shapely.Geometry]:
    rows = conn.execute("SELECT ST_AsBinary(a.geom) FROM arrondissements a, study_area s "
                        "WHERE a.code = ANY(s.codes) ORDER BY a.code").fetchall()
    return [shapely.from_wkb(r[0]) for r in rows]


def _plan(conn: psycopg.Connection, year: int) -> tuple[list[dict], list[dict], list[dict], dict[str, str]]:
    from geo_monitor.plan.objectives import objectives, partners

    return (list_actions(conn, as_of=date(year, 12, 31)), list_places(conn), objectives(conn), partners(conn))


def build_report(conn: psycopg.Connection, year: int, *, settings: Settings | None = None,
                 progress: Callable[[str], None] | None = None, today: date | None = None) -> ReportData:
    """Return the planners' edition of ``year``: every indicator from the store, with maps."""
    from geo_monitor.analysis.hotspots import hotspots

    settings = settings or get_settings()
    say = progress or (lambda _: None)
    notes = check_year(conn, year, today=today)
    figures = year_figures(conn, year, settings, progress=say)
    actions, places, objectives, partners = _plan(conn, year)
    say("maps")
    first, end = year_bounds(year)
    grid = hotspots(conn, start=first, end=end, resolution=MAP_RESOLUTION, kinds=["incident"], settings=settings)
    grid = grid[grid["count"] > 0]
    maps = {"incidents": {"polygons": list(grid.geometry), "values": [float(v) for v in grid["count"]],
                          "highlight": [str(c).startswith("hot") for c in grid["label"]]}}
    return ReportData(year, False, figures, actions, places, objectives, partners, maps, _outlines(conn), notes,
                      complete=not notes)


def public_places(places: list[dict]) -> list[dict]:
    """Return the places as published: type, operator, number of places, arrondissement, dates."""
    return [{k: p[k] for k in ("type", "operator", "places", "arrondissement", "opens_on", "closes_on")} for p in places]


def release_map(conn: psycopg.Connection, year: int, settings: Settings) -> dict | None:
    """Return the year's hexagons from the 12-month public view (None when a month is not released)."""
    from geo_monitor.privacy.releases import rolling_view

    try:
        view = rolling_view(conn, date(year, 12, 1), settings=settings)
    except NotFoundError:
        return None
    cells = view.cells[["cell", "value"]]
    # A hexagon's yearly value is the sum of its published group values; hidden in any group: no value.
    grouped = cells.groupby("cell")["value"]
    hidden = grouped.apply(lambda v: bool(v.isna().any()))
    totals = grouped.sum(min_count=1)
    ids = totals.index.to_numpy(dtype=np.int64)
    values = [None if hidden[c] or pd.isna(totals[c]) else float(totals[c]) for c in ids]
    return {"polygons": list(hexagons.cells_to_polygons(ids)), "values": values, "highlight": [False] * len(ids)}
