"""Map benchmark: the planner map's compact time slider against one GeoJson layer per step.

Run:  .venv/bin/python bench/maps.py [--events N] [--resolution R] [--repeat K] [--keep-db] [--reuse-db NAME]

It creates its own database ``geo_monitor_benchm_<pid>`` on GEO_MONITOR_BENCH_SERVER (default
local postgres): migrations, reference layers, N synthetic events (default 300,000 over
2019-2021), ingested. Then, on every cell of the study grid at resolution R (default 9) and
the 36 months of 2019-2021, each timed (median of K) and measured (HTML bytes):

  ours, full          ``maps.build_planner``: step cube, residents, Gi*, emerging hot spots,
                      reference layers, heat, slider, legend; then ``maps.render`` (inlined
                      Leaflet). Also split into "library + SQL" and "map + render".
  ours, choropleth    ``maps.planner_map`` with the counts only (no analysis or reference layers).
  naive, choropleth   the same counts as 36 ``folium.GeoJson`` layers (one per month, hexagon
                      polygons repeated in each, ``style_function`` + ``GeoJsonTooltip``, one
                      shown), rendered with ``maps.render`` too.
  TimestampedGeoJson  folium's time plugin on the same counts (geometry repeated per step); its
                      CDN plugins have no local copy, so it is rendered by folium as is (size and
                      time only: that page would not work offline).
  public              ``maps.public_map`` of one month's release-shaped counts (every group).

Targets from the issue: the full planner map under 3 s and 5 MB, the public map under 1 MB.
"""

# ruff: noqa: E402  (sys.path is fixed before ``maps`` is imported)
from __future__ import annotations

import sys
from pathlib import Path

# This script is named like the maps package: drop its own folder from the path, or
# ``import maps`` would import this file.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))
sys.path.append(str(_HERE))  # last: bench/common.py, never before the maps package
sys.modules.pop("maps", None)

import argparse
import os
from datetime import date

import folium
import geopandas as gpd
import psycopg
from common import bench_settings, fill, say, timed  # noqa: E402 (bench/ is the script's folder)
from folium.plugins import TimestampedGeoJson

from geo_monitor import db, hexagons
from geo_monitor.analysis.counts import category_ids, count_cells
from geo_monitor.analysis.cubes import step_cube
from geo_monitor.calendar import Window
from geo_monitor.grid import ensure_population, study_grid
from geo_monitor.settings import Settings
from geo_monitor.store.vocabulary import public_groups
from maps import StepCounts, build_planner, planner_map, public_map, render
from maps.data import arrondissements
from maps.styles import fixed_scale

START, END = date(2019, 1, 1), date(2022, 1, 1)
TARGET_S, TARGET_MB, TARGET_PUBLIC_MB = 3.0, 5.0, 1.0


def naive_map(counts: StepCounts) -> folium.Map:
    """One GeoJson layer per step, hexagons repeated in each (the straightforward folium build)."""
    m = folium.Map(location=[48.875, 2.37], zoom_start=13, tiles=None)
    scale = fixed_scale(counts.counts)
    polygons = hexagons.cells_to_polygons(counts.cells)
    h3 = [hexagons.cell_to_str(c) for c in counts.cells]
    for t, frame in enumerate(counts.frames()):
        gdf = gpd.GeoDataFrame({"h3": h3, "count": counts.counts[t]}, geometry=polygons, crs="EPSG:4326")
        folium.GeoJson(
            gdf, name=frame["label"]["en"], show=t == len(counts.steps) - 1,
            style_function=lambda f: {"fillColor": scale.colour(f["properties"]["count"]), "color": "#ffffff",
                                      "weight": 0.5, "fillOpacity": 0.78},
            tooltip=folium.GeoJsonTooltip(["h3", "count"]),
        ).add_to(m)
    folium.LayerControl().add_to(m)
    return m


def timestamped_map(counts: StepCounts) -> folium.Map:
    """folium's TimestampedGeoJson: one feature per cell and step."""
    scale = fixed_scale(counts.counts)
    polygons = hexagons.cells_to_polygons(counts.cells)
    features = []
    for t, start in enumerate(counts.steps):
        for i, polygon in enumerate(polygons):
            features.append({"type": "Feature",
                             "geometry": {"type": "Polygon", "coordinates": [[list(c) for c in polygon.exterior.coords]]},
                             "properties": {"times": [start.isoformat()], "style": {
                                 "fillColor": scale.colour(int(counts.counts[t, i])), "fillOpacity": 0.78,
                                 "weight": 0.5, "color": "#ffffff"}}})
    m = folium.Map(location=[48.875, 2.37], zoom_start=13, tiles=None)
    TimestampedGeoJson({"type": "FeatureCollection", "features": features}, period="P1M",
                       duration="P1M").add_to(m)
    return m


def release_like(conn: psycopg.Connection, settings: Settings, month: date, k: int) -> dict:
    """One month's counts per public group on the release grid, cells under k suppressed."""
    end = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    grid = study_grid(conn, settings.release_resolution)
    groups: dict[str, list[str]] = {}
    for (kind, category), group in public_groups(settings).items():
        if kind == "incident":
            groups.setdefault(group, []).append(category)
    features = []
    for group, categories in groups.items():
        counts = count_cells(conn, category_ids(conn, ["incident"], categories), Window.of(month, end),
                             settings.release_resolution).reindex(grid, fill_value=0).to_numpy()
        for cell, n in zip(grid, counts, strict=True):
            features.append({"type": "Feature", "geometry": None, "properties": {
                "h3": hexagons.cell_to_str(cell), "group": group, "value": None if n < k else int(n),
                "suppressed": bool(n < k)}})
    return {"type": "FeatureCollection", "features": features,
            "metadata": {"month": month.isoformat()[:7], "k": k, "epsilon": settings.release_epsilon}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--resolution", type=int, default=9)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse-db")
    args = parser.parse_args()
    name = args.reuse_db or f"geo_monitor_benchm_{os.getpid()}"
    settings = bench_settings(name)
    try:
        events, _ = fill(settings, args.events, reuse=args.reuse_db is not None)
        report(settings, events, args)
    finally:
        if not (args.keep_db or args.reuse_db):
            db.drop_database(settings)


def report(settings: Settings, events: int, args: argparse.Namespace) -> None:
    r, k = args.resolution, args.repeat
    with db.connect(settings) as conn:
        say("warming up (population, rollups)")
        ensure_population(conn, r)
        steps, grid, cube = step_cube(conn, category_ids(conn, ["incident"]), Window.of(START, END), r)
        population = ensure_population(conn, r).reindex(grid, fill_value=0.0).to_numpy()
        counts = StepCounts(steps, "month", grid, cube, population)
        say("ours, full planner map")
        t_full, page = timed(k, lambda: render(build_planner(conn, end=END, resolution=r, settings=settings)))
        t_lib, planner = timed(k, build_planner, conn, end=END, resolution=r, settings=settings)
        t_render, _ = timed(k, render, planner)
        say("ours, choropleth only")
        t_ours, ours = timed(k, lambda: render(planner_map(counts, heat=False)))
        say("naive, one GeoJson layer per step")
        t_naive, naive = timed(k, lambda: render(naive_map(counts)))
        say("TimestampedGeoJson")
        t_ts, stamped = timed(k, lambda: timestamped_map(counts).get_root().render())
        say("public map")
        release = release_like(conn, settings, date(2021, 6, 1), settings.release_k)
        t_public, public = timed(k, lambda: render(public_map(release, boundaries=arrondissements(conn))))
    mb = 1_000_000
    rows = [
        ("ours, full planner map (build_planner + render)", t_full, len(page), f"< {TARGET_S:g} s, < {TARGET_MB:g} MB",
         t_full < TARGET_S and len(page) < TARGET_MB * mb),
        ("  of which library + SQL (build_planner)", t_lib, None, "", None),
        ("  of which render (HTML, Leaflet inlined)", t_render, None, "", None),
        ("ours, choropleth + slider only", t_ours, len(ours), "", None),
        ("naive: 36 GeoJson layers", t_naive, len(naive), "baseline", None),
        ("folium TimestampedGeoJson (not offline)", t_ts, len(stamped), "", None),
        ("public map (one month, all groups)", t_public, len(public), f"< {TARGET_PUBLIC_MB:g} MB",
         len(public) < TARGET_PUBLIC_MB * mb),
    ]
    print(f"\nmaps benchmark: {events:,} events, {len(grid):,} resolution-{r} cells x {len(steps)} months, "
          f"median of {k}\n")
    print("| build | seconds | HTML MB | target | |\n|---|---:|---:|---|---|")
    for label, seconds, size, target, ok in rows:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        print(f"| {label} | {seconds:.2f} | {'' if size is None else f'{size / mb:.2f}'} | {target} | {verdict} |")
    print(f"\nnaive / ours (choropleth only): {len(naive) / len(ours):.1f}x the bytes, "
          f"{t_naive / t_ours:.1f}x the time")
    print(f"TimestampedGeoJson / ours: {len(stamped) / len(ours):.1f}x the bytes, {t_ts / t_ours:.1f}x the time")


if __name__ == "__main__":
    main()
