"""Hotspot analyses on the store: Gi* for one window, emerging hotspots over time steps.

The statistics live in ``hotspots`` and ``emerging`` (pure arrays); this module fetches
counts for the whole study grid (empty cells included, as Gi* requires) and joins the
results back to hexagons.
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from geo_monitor import hexagons, rollups
from geo_monitor.aggregates import (
    Window,
    area_geometry,
    category_ids,
    check_resolution,
    hex_counts,
    study_grid,
)
from geo_monitor.emerging import emerging_hotspots
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.hotspots import gi_star
from geo_monitor.settings import Settings, get_settings
from geo_monitor.validate import LOCAL_TZ

STEPS = ("month", "week")


def hotspots(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int = 10,
             kinds: list[str] | None = None, categories: list[str] | None = None, k: int = 1,
             fdr: bool = True, permutations: int = 0, seed: int | None = None,
             area: str | dict | None = None, settings: Settings | None = None) -> gpd.GeoDataFrame:
    """Return Getis-Ord Gi* classes for every study-area cell over one window.

    Computed on the whole study grid (an ``area`` only filters the rows returned, so the
    statistic does not change with the view). See ``geo_monitor.hotspots.gi_star``.
    """
    counts = hex_counts(conn, start=start, end=end, resolution=resolution, kinds=kinds, categories=categories,
                        include_empty=True, settings=settings)
    stats = gi_star(counts["cell"].to_numpy(), counts["count"].to_numpy(), k=k, fdr=fdr,
                    permutations=permutations, seed=seed)
    result = counts.merge(stats.drop(columns=["count"]), on="cell", how="left")
    if area is not None:
        geometry = area_geometry(conn, area)
        lat, lng = hexagons.cells_to_latlng(result["cell"].to_numpy())
        result = result[shapely.contains_xy(geometry, lng, lat)].reset_index(drop=True)
    return gpd.GeoDataFrame(result, geometry="geometry", crs="EPSG:4326")


def step_cube(conn: psycopg.Connection, category: list[int], window: Window, resolution: int,
              step: str = "month") -> tuple[list[date], np.ndarray, np.ndarray]:
    """Return (step starts, grid cells, T × n counts) over whole steps of the window.

    Month steps at resolutions 7-10 read the rollup; weeks (Monday starts) and resolution
    11 read the events. Partial steps at the window's edges are left out.
    """
    if step not in STEPS:
        raise InvalidArgumentError(f"step {step!r}: expected one of {', '.join(STEPS)}")
    offset = pd.offsets.MonthBegin(1) if step == "month" else pd.Timedelta(days=7)
    starts = pd.date_range(window.start, window.end, freq="MS" if step == "month" else "W-MON")
    steps = [d.date() for d in starts if (d + offset).date() <= window.end]
    if len(steps) < 2:
        raise InvalidArgumentError(f"the window {window.start} to {window.end} holds fewer than 2 whole {step}s")
    next_step = (pd.Timestamp(steps[-1]) + offset).date()
    grid = study_grid(conn, resolution)
    if step == "month" and resolution in rollups.ROLLUP_RESOLUTIONS:
        rollups.ensure_fresh(conn)
        rows = conn.execute(
            "SELECT month, cell, sum(n) FROM rollup_monthly WHERE resolution = %s AND month >= %s AND month < %s "
            "AND category_id = ANY(%s) GROUP BY 1, 2",
            (resolution, steps[0], next_step, category),
        ).fetchall()
    else:
        cell = "h3_r11" if resolution == 11 else "h3_parent(h3_r11, %(r)s)"
        rows = conn.execute(
            f"SELECT date_trunc(%(step)s, occurred_at AT TIME ZONE '{LOCAL_TZ}')::date, {cell}, count(*) "
            "FROM events WHERE category_id = ANY(%(cats)s) AND occurred_at >= %(t0)s AND occurred_at < %(t1)s "
            "GROUP BY 1, 2",
            {"step": step, "r": resolution, "cats": category, "t0": window.instant(steps[0]),
             "t1": window.instant(next_step)},
        ).fetchall()
    cube = np.zeros((len(steps), len(grid)), dtype=np.int64)
    step_index = {d: i for i, d in enumerate(steps)}
    for day, cell, n in rows:
        j = np.searchsorted(grid, cell)
        if j < len(grid) and grid[j] == cell:
            cube[step_index[day], j] += n
    return steps, grid, cube


def emerging(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int = 10,
             step: str = "month", kinds: list[str] | None = None, categories: list[str] | None = None,
             k: int = 1, time_k: int = 1, settings: Settings | None = None) -> gpd.GeoDataFrame:
    """Return the emerging-hotspot pattern of every study-area cell (ArcGIS Pro's classes)."""
    settings = settings or get_settings()
    check_resolution(resolution, settings)
    window = Window.of(start, end)
    steps, grid, cube = step_cube(conn, category_ids(conn, kinds, categories), window, resolution, step)
    result = emerging_hotspots(grid, cube, k=k, time_k=time_k)
    result.insert(1, "h3", [hexagons.cell_to_str(c) for c in result["cell"]])
    result["total"] = cube.sum(axis=0)
    result.attrs.update(steps=[d.isoformat() for d in steps], step=step)
    return gpd.GeoDataFrame(result, geometry=hexagons.cells_to_polygons(result["cell"].to_numpy()), crs="EPSG:4326")

