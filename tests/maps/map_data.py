"""Test data of the map tests: the sample's windows, a release-shaped fixture, demo zones."""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import pandas as pd
import shapely

from geo_monitor import hexagons
from geo_monitor.analysis.counts import category_ids, count_cells
from geo_monitor.calendar import Window
from geo_monitor.grid import study_grid
from geo_monitor.settings import Settings
from geo_monitor.store.vocabulary import public_groups

SOURCE = "test-maps"
EVENTS = 30_000
PLANNER_END = date(2022, 1, 1)  # the sample covers 2019-2021: 36 whole months
COORDINATION_END = date(2021, 12, 27)  # a Monday: the last 4 whole weeks of the sample
RELEASE_MONTH = "2021-06"
RELEASE_K = 5  # low, so that the small sample shows enough numbers


def fake_release(conn, settings: Settings, month: str = RELEASE_MONTH, k: int = RELEASE_K) -> dict:
    """Return a release-shaped FeatureCollection from the month's true counts (tests only).

    The shape of ``get_release(conn, month).to_geojson()``: one feature per public group and
    hexagon of the fixed grid, ``value`` None when suppressed (here: fewer than k, plus every
    seventh shown cell as a stand-in for secondary suppression). The numbers are not noisy:
    this tests the drawing, not the privacy mechanism.
    """
    start = date.fromisoformat(month + "-01")
    end = (pd.Timestamp(start) + pd.offsets.MonthBegin(1)).date()
    grid = study_grid(conn, settings.release_resolution)
    polygons = hexagons.cells_to_polygons(grid)
    by_group: dict[str, list[str]] = {}
    for (kind, category), group in public_groups(settings).items():
        if kind == "incident":
            by_group.setdefault(group, []).append(category)
    features = []
    for group, categories in by_group.items():
        counts = count_cells(conn, category_ids(conn, ["incident"], categories), Window.of(start, end),
                             settings.release_resolution).reindex(grid, fill_value=0).to_numpy()
        for i, (cell, polygon) in enumerate(zip(grid, polygons, strict=True)):
            suppressed = bool(counts[i] < k or i % 7 == 0)
            features.append({"type": "Feature",
                             "geometry": {"type": "Polygon", "coordinates": [list(map(list, polygon.exterior.coords))]},
                             "properties": {"h3": hexagons.cell_to_str(cell), "group": group,
                                            "value": None if suppressed else int(counts[i]), "suppressed": suppressed}})
    return {"type": "FeatureCollection", "features": features,
            "metadata": {"month": month, "k": k, "tau": k + 3, "epsilon": 1.0}}


def demo_zones(conn) -> gpd.GeoDataFrame:
    """Return three coordination zones drawn on real quartiers, with teams and weekly schedules."""
    rows = conn.execute(
        "SELECT name, ST_AsBinary(geom) FROM quartiers WHERE code IN (7511803, 7511901, 7511802) ORDER BY code"
    ).fetchall()
    teams = [("Maraude Nord", ["RATP", "Police 18e"]), ("Équipe Stalingrad", ["Police 19e"]),
             ("Maraude Chapelle <b>&</b>", [])]
    schedules = [
        [{"day": "monday", "start": "18:00", "end": "23:00", "team": "Maraude Nord"},
         {"day": 4, "start": "20:00", "end": "02:00", "team": "Police 18e"}],
        [{"day": "mercredi", "start": "09:00", "end": "12:00", "team": "Équipe Stalingrad"}],
        [],
    ]
    return gpd.GeoDataFrame({
        "name": [f"Zone {r[0]}" for r in rows],
        "owner_team": [t[0] for t in teams[:len(rows)]],
        "partner_teams": [t[1] for t in teams[:len(rows)]],
        "schedule": schedules[:len(rows)],
    }, geometry=[shapely.from_wkb(bytes(r[1])) for r in rows], crs="EPSG:4326")


