"""Query benchmark: hexagon counts from rollups + covering index against plain PostGIS hexagons.

Run:  .venv/bin/python bench/query.py [--events N] [--queries Q] [--baseline-queries B]
                                      [--keep-db] [--reuse-db NAME] [--seed S]

It creates its own database ``geo_monitor_benchq_<pid>`` on GEO_MONITOR_BENCH_SERVER (default
local postgres): migrations, reference layers, N synthetic events (geo_monitor.store.sample, default
1,000,000 over 2019-2021) ingested with geo_monitor.store.ingest, VACUUM ANALYZE. Then:

  ours      Q seeded random queries (window starting in 2019-2021, 7-730 days clipped to the
            data, non-empty random set of incident/outreach categories, resolution 7-11):
            ``count_cells`` (the core query: whole months from rollup_monthly, edge days and
            resolution 11 from the events' covering index) and the full ``hex_counts`` (vocabulary
            check, residents, rates, shares, hexagon polygons), each timed separately;
  baseline  the first B of the same queries the plain-PostGIS way, without H3: ST_HexagonGrid
            in Lambert-93 (EPSG:2154) over the study area with hexagons of the H3 resolution's
            average area, transformed to EPSG:4326 so ST_Intersects with the raw points can use
            a GiST index on events.geom, events filtered by category and time, GROUP BY hexagon
            (the study area is buffered by 50 m: a stored point is its fine cell's centre and may
            lie just outside; the baseline runs with ``SET jit = off``, its best setting here).
            The store has no spatial index (migration 006), so the bench creates one for the
            baseline on its own database, untimed;
  Gi*       geo_monitor.analysis.hotspots.gi_star over every resolution-10 cell of the study area, counts
            from count_cells for one year (median of 5); the same over every resolution-11 cell (the
            finest grid /hotspots serves, about 12,000 cells);
  emerging  geo_monitor.analysis.emerging.emerging_hotspots on a 36-month x resolution-10 cube built with
            36 count_cells calls (median of 3).

Progress goes to stderr, the report to stdout. The database is dropped at the end unless
--keep-db or --reuse-db is given; --reuse-db NAME skips generation and ingest when NAME
already holds events.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import platform
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta

import h3
import numpy as np
import psycopg
from common import bench_settings, code_revision, fill, say  # noqa: E402 (bench/ is the script's folder)

from geo_monitor import db
from geo_monitor.analysis.counts import category_ids, count_cells, hex_counts
from geo_monitor.calendar import Window
from geo_monitor.grid import study_grid

FIRST_DAY, END_DAY = date(2019, 1, 1), date(2022, 1, 1)
KINDS = ["incident", "outreach"]
TARGET_P50_MS = 30.0
TARGET_RATIO = 20.0
TARGET_GI_S = 1.0
TARGET_EMERGING_S = 10.0

BASELINE_SQL = """
WITH area AS MATERIALIZED (SELECT ST_Buffer(ST_Transform(geom, 2154), 50) AS geom FROM study_area),
hex AS (
    SELECT h.i, h.j, ST_Transform(h.geom, 4326) AS geom
    FROM area, ST_HexagonGrid(%(size)s, area.geom) AS h
    WHERE ST_Intersects(h.geom, area.geom)
)
SELECT hex.i, hex.j, count(*) AS n
FROM hex JOIN events e ON ST_Intersects(hex.geom, e.geom)
WHERE e.category_id = ANY(%(cats)s) AND e.occurred_at >= %(t0)s AND e.occurred_at < %(t1)s
GROUP BY hex.i, hex.j
"""


def ensure_gist(conn: psycopg.Connection) -> str:
    """Give the baseline the spatial index plain PostGIS relies on (the store itself has none)."""
    row = conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'events' "
                       "AND indexdef ILIKE '%%USING gist (geom)%%'").fetchone()
    if row:
        return f"GiST index {row[0]} already on events.geom"
    say("baseline needs a GiST index on events.geom: creating bench_events_geom_idx")
    started = time.perf_counter()
    conn.execute("CREATE INDEX bench_events_geom_idx ON events USING gist (geom)")
    conn.execute("ANALYZE events")
    return f"GiST index bench_events_geom_idx created for the baseline in {time.perf_counter() - started:.1f} s"


def draw_queries(rng: np.random.Generator, names: list[str], count: int) -> list[dict]:
    """Seeded random slices: window, non-empty category subset, resolution."""
    days = (END_DAY - FIRST_DAY).days
    queries = []
    for _ in range(count):
        start = FIRST_DAY + timedelta(days=int(rng.integers(0, days)))
        end = min(start + timedelta(days=int(rng.integers(7, 731))), END_DAY)
        size = int(rng.integers(1, len(names) + 1))
        categories = sorted(rng.choice(names, size=size, replace=False).tolist())
        queries.append({"start": start, "end": end, "categories": categories, "resolution": int(rng.integers(7, 12))})
    return queries


def timed(function, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def hexagon_size(resolution: int) -> float:
    """Edge (= circumradius) in metres of a flat hexagon with the resolution's average H3 area."""
    area = h3.average_hexagon_area(resolution, "m^2")
    return math.sqrt(2 * area / (3 * math.sqrt(3)))


def run_ours(conn: psycopg.Connection, queries: list[dict]) -> tuple[list[float], list[float], list[int]]:
    core, full, totals = [], [], []
    for i, q in enumerate(queries):
        ids = category_ids(conn, KINDS, q["categories"])
        ms, counts = timed(count_cells, conn, ids, Window.of(q["start"], q["end"]), q["resolution"])
        core.append(ms)
        totals.append(int(counts.sum()))
        ms, frame = timed(hex_counts, conn, start=q["start"], end=q["end"], resolution=q["resolution"],
                          kinds=KINDS, categories=q["categories"])
        full.append(ms)
        assert int(frame["count"].sum()) == totals[-1]
        if (i + 1) % 50 == 0:
            say(f"  {i + 1}/{len(queries)} queries")
    return core, full, totals


def run_baseline(conn: psycopg.Connection, queries: list[dict]) -> tuple[list[float], list[int]]:
    times, totals = [], []
    conn.execute("SET jit = off")  # JIT compiles for ~100 ms per query here: spare the baseline that
    for i, q in enumerate(queries):
        window = Window.of(q["start"], q["end"])
        params = {"size": hexagon_size(q["resolution"]), "cats": category_ids(conn, KINDS, q["categories"]),
                  "t0": window.instant(window.start), "t1": window.instant(window.end)}
        ms, rows = timed(lambda p=params: conn.execute(BASELINE_SQL, p).fetchall())
        times.append(ms)
        totals.append(sum(r[2] for r in rows))
        say(f"  baseline {i + 1}/{len(queries)}: r{q['resolution']}, {(q['end'] - q['start']).days} days, "
            f"{len(q['categories'])} categories: {ms:,.0f} ms")
    return times, totals


def optional(module: str, name: str):
    """Return ``module.name`` or None when it is not there (yet)."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        say(f"{module}.{name} unavailable: {exc}")
        return None


def run_gi(conn: psycopg.Connection, resolution: int = 10, repeat: int = 5) -> dict | None:
    gi_star = optional("geo_monitor.analysis.hotspots", "gi_star")
    if gi_star is None:
        return None
    cells = study_grid(conn, resolution)
    ids = category_ids(conn, ["incident"])
    window = Window.of("2021-01-01", "2022-01-01")
    count_ms, gi_ms = [], []
    for _ in range(repeat):
        ms, counts = timed(count_cells, conn, ids, window, resolution)
        x = counts.reindex(cells, fill_value=0).to_numpy()
        count_ms.append(ms)
        ms, table = timed(gi_star, cells, x, k=1)
        gi_ms.append(ms)
    hot = int((table["gi_bin"] > 0).sum())
    return {"resolution": resolution, "cells": len(cells), "events": int(x.sum()),
            "count_ms": statistics.median(count_ms), "gi_ms": statistics.median(gi_ms), "hot": hot, "repeat": repeat}


def run_emerging(conn: psycopg.Connection, repeat: int = 3) -> dict | None:
    emerging = optional("geo_monitor.analysis.emerging", "emerging_hotspots") or optional("geo_monitor.analysis.hotspots",
                                                                               "emerging_hotspots")
    if emerging is None:
        return None
    cells = study_grid(conn, 10)
    ids = category_ids(conn, ["incident"])
    months = [date(2019 + m // 12, m % 12 + 1, 1) for m in range(37)]

    def cube() -> np.ndarray:
        return np.vstack([count_cells(conn, ids, Window(a, b), 10).reindex(cells, fill_value=0).to_numpy()
                          for a, b in zip(months[:-1], months[1:], strict=True)])

    cube_ms, run_ms = [], []
    for _ in range(repeat):
        ms, values = timed(cube)
        cube_ms.append(ms)
        ms, table = timed(emerging, cells, values, k=1)
        run_ms.append(ms)
    patterns = table["pattern"].value_counts().head(4).to_dict()
    return {"cells": len(cells), "steps": values.shape[0], "cube_ms": statistics.median(cube_ms),
            "run_ms": statistics.median(run_ms), "patterns": patterns, "repeat": repeat}


def pct(values: list[float]) -> tuple[float, float]:
    p50, p95 = np.percentile(values, [50, 95])
    return float(p50), float(p95)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="N synthetic events (default 1,000,000)")
    parser.add_argument("--queries", type=int, default=200, help="random hex-count queries (default 200)")
    parser.add_argument("--baseline-queries", type=int, default=20,
                        help="how many of the same queries run the slow plain-PostGIS baseline (default 20)")
    parser.add_argument("--seed", type=int, default=2019, help="seed of the random queries")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database (and say its name)")
    parser.add_argument("--reuse-db", metavar="NAME",
                        help="use database NAME; skip generation and ingest when it already holds events; kept")
    args = parser.parse_args()

    dbname = args.reuse_db or f"geo_monitor_benchq_{os.getpid()}"
    settings = bench_settings(dbname)
    keep = args.keep_db or bool(args.reuse_db)
    revision = code_revision()
    load_before = os.getloadavg()
    say(f"bench database {dbname}, code {revision}")
    try:
        events, ingested = fill(settings, args.events, reuse=bool(args.reuse_db))
        ingest_s = ingested.seconds if ingested else None
        with db.connect(settings, autocommit=True) as conn:
            server_version = conn.execute("SHOW server_version").fetchone()[0]
            jit = conn.execute("SHOW jit").fetchone()[0]
            gist = ensure_gist(conn) if args.baseline_queries else "no baseline"
            names = [r[0] for r in conn.execute(
                "SELECT c.name FROM categories c JOIN kinds k ON k.id = c.kind_id WHERE k.name = ANY(%s) "
                "ORDER BY c.id", (KINDS,))]
            queries = draw_queries(np.random.default_rng(args.seed), names, args.queries)
            say("warm-up: first hex_counts per resolution (builds residents per hexagon once)")
            first_ms = {}
            for r in range(7, 12):
                first_ms[r], _ = timed(hex_counts, conn, start="2020-01-01", end="2020-02-01", resolution=r)
            for q in queries[:5]:
                count_cells(conn, category_ids(conn, KINDS, q["categories"]), Window.of(q["start"], q["end"]),
                            q["resolution"])
            say(f"ours: {len(queries)} queries (count_cells, then hex_counts)")
            core, full, totals = run_ours(conn, queries)
            subset = queries[:args.baseline_queries]
            say(f"baseline: the first {len(subset)} queries, ST_HexagonGrid x ST_Intersects")
            base, base_totals = run_baseline(conn, subset)
            say("Gi* on the resolution-10 and resolution-11 grids")
            gi = [run_gi(conn, resolution) for resolution in (10, 11)]
            say("emerging hot spots, 36 monthly steps at resolution 10")
            emerging = run_emerging(conn)
    finally:
        if keep:
            say(f"kept database {dbname}")
        else:
            say(f"dropping database {dbname}")
            db.drop_database(settings)

    load_after = os.getloadavg()
    m = len(base)
    print(f"geo_monitor query bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"PostgreSQL {server_version} (jit {jit}); load average (1 min) {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after (other work on the machine skews every figure)")
    print(f"code: {revision}")
    ingest = f"ingested in {ingest_s:.1f} s" if ingest_s is not None else f"reused database {dbname}"
    print(f"data: {events:,} synthetic events 2019-2021 ({ingest}); {len(queries)} random queries, seed {args.seed}")
    print("first hex_counts per resolution (incl. residents per hexagon, once): "
          + ", ".join(f"r{r} {ms:,.0f} ms" for r, ms in first_ms.items()))
    print()
    print(f"{'measure':<52} {'n':>4} {'p50 ms':>9} {'p95 ms':>9}  {'target':<16} verdict")
    rows = [("count_cells (core query: rollup + covering index)", core, True),
            ("hex_counts (+ residents, rates, shares, polygons)", full, True)]
    if m:
        rows += [(f"  count_cells, same {m} queries as the baseline", core[:m], False),
                 (f"  hex_counts, same {m} queries as the baseline", full[:m], False),
                 ("baseline ST_HexagonGrid(2154)->4326 x ST_Intersects", base, False)]
    for name, values, target in rows:
        p50, p95 = pct(values)
        goal = f"p50 < {TARGET_P50_MS:.0f} ms" if target else ""
        print(f"{name:<52} {len(values):>4} {p50:>9.1f} {p95:>9.1f}  {goal:<16} "
              f"{verdict(p50 < TARGET_P50_MS) if target else ''}")
    if m:
        base50 = pct(base)[0]
        for name, values in (("count_cells", core[:m]), ("hex_counts", full[:m])):
            ratio = base50 / pct(values)[0]
            print(f"ratio baseline p50 / {name} p50 on the same {m} queries: {ratio:,.1f}x  "
                  f"(target >= {TARGET_RATIO:.0f}x) {verdict(ratio >= TARGET_RATIO)}")
        same = sum(t == b for t, b in zip(totals[:m], base_totals, strict=True))
        diffs = [b - t for t, b in zip(totals[:m], base_totals, strict=True)]
        print(f"baseline sanity: {same}/{m} queries count the same events in total as ours "
              f"(baseline minus ours: min {min(diffs):+,}, max {max(diffs):+,}; a point on a shared "
              "hexagon edge counts twice with ST_Intersects)")
        print("baseline: hexagon grid built in EPSG:2154 over the study area (+50 m) and transformed to "
              "EPSG:4326 so ST_Intersects with the stored points can use a GiST index on events.geom; "
              "baseline session runs with jit = off (ours with the server's setting)")
        print(f"baseline index: {gist} (not counted in any timing; our queries do not use it)")
    print()
    print("per resolution, p50 ms (n)    " + "".join(f"{f'r{r}':>14}" for r in range(7, 12)))
    for name, values, subset_queries in (("count_cells", core, queries), ("hex_counts", full, queries),
                                         ("baseline", base, queries[:m])):
        cells = []
        for r in range(7, 12):
            picked = [v for v, q in zip(values, subset_queries, strict=False) if q["resolution"] == r]
            cells.append(f"{statistics.median(picked):,.1f} ({len(picked)})" if picked else "-")
        print(f"  {name:<28}" + "".join(f"{c:>14}" for c in cells))
    print()
    for one in filter(None, gi):
        total_s = (one["count_ms"] + one["gi_ms"]) / 1000
        goal = (f"(target < {TARGET_GI_S:.0f} s) {verdict(total_s < TARGET_GI_S)}" if one["resolution"] == 10
                else "(no target: the finest grid served)")
        print(f"Gi* (k=1) over every resolution-{one['resolution']} cell ({one['cells']:,} cells, "
              f"{one['events']:,} incidents in 2021), median of {one['repeat']}: count_cells {one['count_ms']:.1f} ms "
              f"+ gi_star {one['gi_ms']:.1f} ms = {total_s:.3f} s  {goal}; {one['hot']} hot cells")
    if not any(gi):
        print("Gi*: skipped (geo_monitor.analysis.hotspots.gi_star not available)")
    if emerging:
        total_s = (emerging["cube_ms"] + emerging["run_ms"]) / 1000
        print(f"emerging hot spots ({emerging['steps']} monthly steps x {emerging['cells']:,} resolution-10 cells), "
              f"median of {emerging['repeat']}: cube from 36 count_cells {emerging['cube_ms']:.0f} ms + "
              f"emerging_hotspots {emerging['run_ms']:.0f} ms = {total_s:.2f} s  "
              f"(target < {TARGET_EMERGING_S:.0f} s) {verdict(total_s < TARGET_EMERGING_S)}")
        print(f"  most frequent patterns: {emerging['patterns']}")
    else:
        print("emerging hot spots: skipped (emerging_hotspots not available)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
