"""Hexagon counts for any slice: kinds, categories, time window, resolution, area.

Whole months come from the monthly rollup, the days at the window's edges from the daily
rollup, at every resolution (7-11), summed in memory where the process holds that level
(``store.rollup_memory``) and by PostgreSQL otherwise; only a team's own counts read the
events. Parents are sums of children because every coarser cell is ``h3_parent`` of the
stored fine cell.
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
from geo_monitor.grid import population_of, study_grid
from geo_monitor.settings import Settings, get_settings
from geo_monitor.store import rollup_memory, rollups
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


def _count_query(conn: psycopg.Connection, category: list[int], window: Window, resolution: int,
                 source_ids: list[int] | None) -> tuple[str, dict]:
    """Return the SQL (cell, n) of a slice's counts and its parameters (see ``count_cells``)."""
    params: dict = {"r": resolution, "cats": "{" + ",".join(map(str, category)) + "}", "src": source_ids}
    parts = []
    if source_ids is None:
        rollups.ensure_fresh(conn)
        for i, (table, first, end) in enumerate(rollup_ranges(window)):
            period = rollups.TABLES[table]
            parts.append(f"SELECT cell, n FROM {table} WHERE resolution = %(r)s AND {period} >= %(a{i})s "
                         f"AND {period} < %(b{i})s AND category_id = ANY(%(cats)s::smallint[])")
            params.update({f"a{i}": first, f"b{i}": end})
    else:
        cell = "h3_r11" if resolution == 11 else "h3_parent(h3_r11, %(r)s)"
        parts.append(f"SELECT {cell} AS cell, 1 AS n FROM events WHERE category_id = ANY(%(cats)s::smallint[]) "
                     "AND occurred_at >= %(t0)s AND occurred_at < %(t1)s AND source_id = ANY(%(src)s)")
        params.update(t0=window.instant(window.start), t1=window.instant(window.end))
    return f"SELECT cell, sum(n)::bigint AS n FROM ({' UNION ALL '.join(parts)}) AS u GROUP BY cell", params


def count_cells(conn: psycopg.Connection, category: list[int], window: Window, resolution: int, *,
                source_ids: list[int] | None = None) -> pd.Series:
    """Return event counts by cell (int64 index) for categories over a window, at a resolution.

    The counts come from the daily and monthly rollups, so their cost follows the cells and
    days asked for, not the size of the store. With ``source_ids`` only those sources' events
    count (read from the events, as the rollups have no source dimension).
    """
    held = _held_counts(conn, category, window, resolution, source_ids)
    if held is not None:
        return pd.Series(held[1], index=held[0], name="count")
    rows = conn.execute(*_count_query(conn, category, window, resolution, source_ids)).fetchall()
    if not rows:
        return pd.Series(dtype=np.int64, name="count")
    cells, counts = zip(*rows, strict=True)
    return pd.Series(np.array(counts, dtype=np.int64), index=np.array(cells, dtype=np.int64), name="count")


def _held_counts(conn: psycopg.Connection, category: list[int], window: Window, resolution: int,
                 source_ids: list[int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Return (cells sorted, counts, residents) from the rollups held in memory, or None to ask SQL."""
    if source_ids is not None:
        return None
    return rollup_memory.counts(conn, category, rollup_ranges(window), resolution,
                                get_settings().count_memory_mb)


def _counts_and_residents(conn: psycopg.Connection, category: list[int], window: Window, resolution: int,
                          source_ids: list[int] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (cells sorted, counts, residents) of a slice's non-empty cells (one round trip from SQL)."""
    held = _held_counts(conn, category, window, resolution, source_ids)
    if held is not None:
        return held
    sql, params = _count_query(conn, category, window, resolution, source_ids)
    rows = conn.execute(f"SELECT c.cell, c.n, p.population FROM ({sql}) AS c LEFT JOIN hex_population p "
                        "ON p.resolution = %(r)s AND p.cell = c.cell ORDER BY c.cell", params).fetchall()
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    cells, counts, residents = zip(*rows, strict=True)
    if all(r is None for r in residents):  # not computed yet at this resolution (every study cell has a row)
        cells = np.array(cells, dtype=np.int64)
        return cells, np.array(counts, dtype=np.int64), population_of(conn, resolution, cells)
    residents = np.array([0.0 if r is None else r for r in residents], dtype=np.float64)
    return np.array(cells, dtype=np.int64), np.array(counts, dtype=np.int64), residents


def hex_counts(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int = 9,
               kinds: list[str] | None = None, categories: list[str] | None = None,
               area: str | dict | shapely.Geometry | None = None, include_empty: bool = False,
               team: str | None = None, settings: Settings | None = None,
               geometry: bool = True) -> gpd.GeoDataFrame | pd.DataFrame:
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
    geometry
        False leaves the hexagon polygons out (a plain DataFrame): a caller that encodes the
        cells itself (``hexagons.cells_geojson``) need not draw them.

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
    shape = area_geometry(conn, area)
    source_ids = team_sources(conn, team) if team is not None else None
    cells, counts, residents = _counts_and_residents(conn, category, window, resolution, source_ids)
    if include_empty:
        grid = study_grid(conn, resolution)
        empty = np.setdiff1d(grid, cells)
        order = np.argsort(np.concatenate([cells, empty]), kind="stable")
        cells = np.concatenate([cells, empty])[order]
        counts = np.concatenate([counts, np.zeros(len(empty), np.int64)])[order]
        residents = np.concatenate([residents, population_of(conn, resolution, empty)])[order]
    if shape is not None:
        lat, lng = hexagons.cells_to_latlng(cells)
        inside = shapely.contains_xy(shape, lng, lat)
        cells, counts, residents = cells[inside], counts[inside], residents[inside]
    total = counts.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(residents >= 1, counts / residents * 1000, np.nan)
        share = counts / total if total else np.zeros(len(cells))
    frame = pd.DataFrame({"cell": cells, "h3": pd.Series(hexagons.cells_to_str(cells), dtype=object),
                          "count": counts, "population": residents, "rate_per_1000": rate, "share": share})
    if not geometry:
        return frame
    return gpd.GeoDataFrame(frame, geometry=hexagons.cells_to_polygons(cells), crs="EPSG:4326")
