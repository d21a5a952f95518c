"""Hexagon counts for any slice: kinds, categories, time window, resolution, area.

Whole months come from the monthly rollup, the days at the window's edges from the daily
rollup, at every resolution (7-11); only a team's own counts read the events. Parents are
sums of children because every coarser cell is ``h3_parent`` of the stored fine cell.
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
import shapely.errors

from geo_monitor import hexagons
from geo_monitor.calendar import Window
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.grid import ensure_population, study_grid
from geo_monitor.settings import Settings, get_settings
from geo_monitor.store import rollups
from geo_monitor.store.vocabulary import KINDS


def category_ids(conn: psycopg.Connection, kinds: list[str] | None = None,
                 categories: list[str] | None = None) -> list[int]:
    """Return the category ids of a slice, refusing unknown kinds and categories by name."""
    rows = conn.execute("SELECT k.name, c.name, c.id FROM categories c JOIN kinds k ON k.id = c.kind_id").fetchall()
    for kind in kinds or []:
        if kind not in KINDS:
            raise InvalidArgumentError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}", "kind")
    selected = [r for r in rows if not kinds or r[0] in kinds]
    if categories:
        known = {r[1] for r in selected}
        unknown = sorted(set(categories) - known)
        if unknown:
            scope = f" for kind(s) {', '.join(kinds)}" if kinds else ""
            raise InvalidArgumentError(f"unknown category {', '.join(map(repr, unknown))}{scope}; "
                                       f"known: {', '.join(sorted(known))}", "category")
        selected = [r for r in selected if r[1] in categories]
    return sorted(r[2] for r in selected)


def check_resolution(resolution: int, settings: Settings) -> int:
    """Refuse a resolution that is not served."""
    if resolution not in settings.resolutions:
        raise InvalidArgumentError(
            f"resolution {resolution} is not served; choose one of {', '.join(map(str, settings.resolutions))}",
            "resolution",
        )
    return resolution


def area_geometry(conn: psycopg.Connection, area: str | dict | shapely.Geometry | None) -> shapely.Geometry | None:
    """Resolve an area (``arrondissement:75118``, ``quartier:7511803``, GeoJSON, shapely) to a geometry.

    Raises ``InvalidArgumentError`` when it is unknown or does not touch the study area.
    """
    if area is None:
        return None
    if isinstance(area, str):
        kind, _, code = area.partition(":")
        tables = {"arrondissement": "arrondissements", "quartier": "quartiers"}
        if kind not in tables or not code.isdigit():
            raise InvalidArgumentError(f"area {area!r}: expected arrondissement:CODE, quartier:CODE or a polygon", "area")
        row = conn.execute(f"SELECT ST_AsBinary(geom) FROM {tables[kind]} WHERE code = %s", (int(code),)).fetchone()
        if row is None:
            raise InvalidArgumentError(f"area {area!r}: no {kind} with INSEE code {code}", "area")
        geometry = shapely.from_wkb(row[0])
    elif isinstance(area, dict):
        try:
            geometry = shapely.geometry.shape(area.get("geometry", area))
        except (AttributeError, ValueError, TypeError, KeyError, shapely.errors.GeometryTypeError) as exc:
            raise InvalidArgumentError(f"area is not a GeoJSON geometry: {exc}", "area") from None
    else:
        geometry = area
    if geometry.geom_type not in ("Polygon", "MultiPolygon") or not geometry.is_valid:
        raise InvalidArgumentError("area must be a valid Polygon or MultiPolygon in lon/lat (EPSG:4326)", "area")
    inside = conn.execute(
        "SELECT ST_Intersects(geom, ST_GeomFromWKB(%s, 4326)) FROM study_area", (shapely.to_wkb(geometry),)
    ).fetchone()
    if not inside or not inside[0]:
        raise InvalidArgumentError("area lies outside the study area", "area")
    return geometry


def team_sources(conn: psycopg.Connection, team: str) -> list[int]:
    """Return the ids of the sources that belong to a team."""
    return [r[0] for r in conn.execute("SELECT id FROM sources WHERE team = %s", (team,)).fetchall()]


def rollup_ranges(window: Window) -> list[tuple[str, date, date]]:
    """Return the (rollup table, first, end) ranges whose rows add up to a window.

    Whole months come from ``rollup_monthly``, the days at the window's edges from
    ``rollup_daily``; together they cover every day of the window once.
    """
    months = window.whole_months()
    if not months:
        return [("rollup_daily", window.start, window.end)]
    ranges = [("rollup_daily", window.start, months[0]), ("rollup_monthly", *months),
              ("rollup_daily", months[1], window.end)]
    return [(table, a, b) for table, a, b in ranges if a < b]


def count_cells(conn: psycopg.Connection, category: list[int], window: Window, resolution: int, *,
                source_ids: list[int] | None = None) -> pd.Series:
    """Return event counts by cell (int64 index) for categories over a window, at a resolution.

    The counts come from the daily and monthly rollups, so their cost follows the cells and
    days asked for, not the size of the store. With ``source_ids`` only those sources' events
    count (read from the events, as the rollups have no source dimension).
    """
    params: dict = {"r": resolution, "cats": category, "src": source_ids}
    parts = []
    if source_ids is None:
        rollups.ensure_fresh(conn)
        for i, (table, first, end) in enumerate(rollup_ranges(window)):
            period = rollups.TABLES[table]
            parts.append(f"SELECT cell, n FROM {table} WHERE resolution = %(r)s AND {period} >= %(a{i})s "
                         f"AND {period} < %(b{i})s AND category_id = ANY(%(cats)s)")
            params.update({f"a{i}": first, f"b{i}": end})
    else:
        cell = "h3_r11" if resolution == 11 else "h3_parent(h3_r11, %(r)s)"
        parts.append(f"SELECT {cell} AS cell, 1 AS n FROM events WHERE category_id = ANY(%(cats)s) "
                     "AND occurred_at >= %(t0)s AND occurred_at < %(t1)s AND source_id = ANY(%(src)s)")
        params.update(t0=window.instant(window.start), t1=window.instant(window.end))
    sql = f"SELECT cell, sum(n)::bigint FROM ({' UNION ALL '.join(parts)}) AS u GROUP BY cell"
    rows = conn.execute(sql, params).fetchall()
    if not rows:
        return pd.Series(dtype=np.int64, name="count")
    cells, counts = zip(*rows, strict=True)
    return pd.Series(np.array(counts, dtype=np.int64), index=np.array(cells, dtype=np.int64), name="count")


def hex_counts(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int = 9,
               kinds: list[str] | None = None, categories: list[str] | None = None,
               area: str | dict | shapely.Geometry | None = None, include_empty: bool = False,
               team: str | None = None, settings: Settings | None = None) -> gpd.GeoDataFrame:
    """Return counts per hexagon for a slice, with rate per 1,000 residents and share.

    Parameters
    ----------
    start, end
        Paris calendar days, ``end`` exclusive (``2021-01-01``, ``2021-02-01`` is January).
    resolution
        H3 resolution, one of the served ones (7-11 by default).
    kinds, categories
        Restrict to these kinds and/or categories (names from data/categories.csv).
    area
        ``arrondissement:CODE``, ``quartier:CODE`` or a polygon: cells whose centre lies in it.
    include_empty
        Also return the study-area cells with no event (count 0), as hotspot maps need.
    team
        Count only the events of sources that belong to this team.

    Returns
    -------
    GeoDataFrame (EPSG:4326) with ``cell`` (int64), ``h3`` (hex string), ``count``,
    ``population`` (residents, IRIS population spread by area), ``rate_per_1000`` (NaN where
    fewer than 1 resident lives), ``share`` (of the slice's total) and the hexagon geometry.
    """
    settings = settings or get_settings()
    check_resolution(resolution, settings)
    window = Window.of(start, end)
    category = category_ids(conn, kinds, categories)
    geometry = area_geometry(conn, area)
    source_ids = team_sources(conn, team) if team is not None else None
    counts = count_cells(conn, category, window, resolution, source_ids=source_ids)
    grid = study_grid(conn, resolution)
    cells = np.union1d(grid, counts.index.to_numpy()) if include_empty else counts.index.to_numpy()
    frame = pd.DataFrame({"cell": cells, "count": counts.reindex(cells, fill_value=0).to_numpy()})
    if geometry is not None:
        lat, lng = hexagons.cells_to_latlng(frame["cell"].to_numpy())
        frame = frame[shapely.contains_xy(geometry, lng, lat)]
    population = ensure_population(conn, resolution)
    frame["population"] = population.reindex(frame["cell"].to_numpy(), fill_value=0.0).to_numpy()
    frame["rate_per_1000"] = np.where(frame["population"] >= 1, frame["count"] / frame["population"] * 1000, np.nan)
    total = frame["count"].sum()
    frame["share"] = frame["count"] / total if total else 0.0
    frame.insert(1, "h3", [hexagons.cell_to_str(c) for c in frame["cell"]])
    frame = frame.sort_values("cell").reset_index(drop=True)
    return gpd.GeoDataFrame(frame, geometry=hexagons.cells_to_polygons(frame["cell"].to_numpy()), crs="EPSG:4326")
