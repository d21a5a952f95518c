"""Ingest benchmark: our ingest against a geopandas baseline and a bare binary COPY.

Run:  .venv/bin/python bench/ingest.py [--events N] [--repeat R] [--keep-db]

It makes N synthetic events (geo_monitor.store.sample, CSV), creates its own database
``geo_monitor_bench_<pid>`` (migrations + reference layers), then loads the events three ways:

  (a) geo_monitor.store.ingest.ingest_file, end to end from the CSV file (read, validate,
      generalise, H3, dedupe, binary COPY, commit);
  (b) the baseline a geopandas user would write: pandas.read_csv, GeoDataFrame, a per-row
      h3-py loop for resolutions 7..11, GeoDataFrame.to_postgis (GeoAlchemy2) into a table
      with the same kind of indexes. No validation, no generalisation, no dedupe: a lower
      bound of what a correct geopandas pipeline costs;
  (c) a bare binary COPY of rows already prepared by our own code (events.write_events +
      commit only): the physical limit of this server for this table and its indexes.

It also measures the peak memory of (a) in a child process at N and 5N events, and the
vectorised H3 indexing (geo_monitor.hexagons.points_to_cells) against a plain h3-py loop.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import psycopg
from common import code_revision, finish, say  # noqa: E402 (bench/ is the script's folder)

from geo_monitor import db
from geo_monitor.settings import Settings
from geo_monitor.store import events, reference
from geo_monitor.store.ingest import ingest_file, load_context
from geo_monitor.store.readers import read_chunks
from geo_monitor.store.sample import MAX_EVENTS, generate_sample
from geo_monitor.store.validate import validate

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
MEMORY_LIMIT_MB = 1536  # 1.5 GB
MEMORY_GROWTH_LIMIT = 0.20  # "flat": peak at 5N at most 20 % above peak at N
TARGET_VS_GEOPANDAS = 10.0
TARGET_VS_COPY = 0.40

BASELINE_DDL = """
CREATE TABLE events_geopandas (
    kind        text,
    category    text,
    occurred_at timestamptz,
    lon         double precision,
    lat         double precision,
    source      text,
    external_id text,
    ends_at     timestamptz,
    h3_r7       bigint,
    h3_r8       bigint,
    h3_r9       bigint,
    h3_r10      bigint,
    h3_r11      bigint,
    geometry    geometry(Point, 4326)
);
-- The same indexes as events (migrations 002 and 006): category x time covering the fine
-- cell, fine cell, unique external id; no GiST (events has none either).
CREATE INDEX events_geopandas_category_time_idx ON events_geopandas (category, occurred_at) INCLUDE (h3_r11);
CREATE INDEX events_geopandas_h3_r11_idx ON events_geopandas (h3_r11);
CREATE UNIQUE INDEX events_geopandas_external_idx ON events_geopandas (source, external_id);
"""






def reference_dir() -> Path:
    return Path(os.environ.get("GEO_MONITOR_REFERENCE_DIR") or REPO.parent / "shared" / "data")


def make_settings(url: str) -> Settings:
    return Settings(database_url=url, reference_dir=reference_dir())


def proc_status_kb(field: str) -> int:
    """Return a field of /proc/self/status in kB (VmRSS, VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset(conn: psycopg.Connection, *, batches: bool = True) -> None:
    """Empty the store (events; with ``batches`` also batches and rollups) and checkpoint.

    Every timed run then starts from the same server state: empty tables, no dirty pages.
    """
    tables = ["events"]
    if batches:
        tables.append("ingest_batches")
        for table in ("rollup_monthly", "rollup_daily"):
            if conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]:
                tables.append(table)
        conn.execute("UPDATE rollup_state SET last_batch_id = 0, events = 0")
    conn.execute(f"TRUNCATE {', '.join(tables)}")
    conn.commit()
    conn.execute("CHECKPOINT")
    conn.commit()


def make_sample(path: Path, n: int, settings: Settings) -> None:
    say(f"generating {n:,} synthetic events -> {path}")
    started = time.perf_counter()
    summary = generate_sample(path, n, settings=settings)
    size = path.stat().st_size / 1e6
    say(f"  {summary.events:,} events {dict(summary.by_kind)}, {size:,.0f} MB, {time.perf_counter() - started:.1f} s")


# --- (a) our ingest ---------------------------------------------------------------------------

def run_ours(conn: psycopg.Connection, path: Path, settings: Settings) -> tuple[float, object]:
    reset(conn)
    started = time.perf_counter()
    report = ingest_file(conn, path, source="sample", settings=settings)
    seconds = time.perf_counter() - started
    return seconds, report


# --- (c) bare binary COPY of prepared rows ----------------------------------------------------

def prepare_copy_buffers(conn: psycopg.Connection, path: Path, settings: Settings) -> tuple[list[bytes], int]:
    """Prepare the rows with the project's own code (outside any timer): validate, map, buffer."""
    ctx = load_context(conn, settings, source="sample", crs=None)
    batch_id = conn.execute(
        "INSERT INTO ingest_batches (file_name, format, actor, started_at, finished_at, received, accepted, "
        "duplicates, rejected) VALUES (%s, 'csv', 'bench', now(), now(), 0, 0, 0, 0) RETURNING id",
        (f"{path.name} (bench: bare COPY)",),
    ).fetchone()[0]
    conn.commit()
    buffers, rows = [], 0
    for chunk in read_chunks(path, "csv", settings.ingest_chunk_rows):
        prepared = validate(chunk, ctx).prepared
        names = sorted(set(prepared.source_id))
        ids = events.source_ids(conn, names)
        source_array = np.array([ids[name] for name in prepared.source_id], dtype=np.int32)
        buffers.append(events.copy_buffer(prepared, source_array, batch_id))
        rows += len(prepared)
    conn.commit()
    return buffers, rows


def run_copy(conn: psycopg.Connection, buffers: list[bytes]) -> float:
    reset(conn, batches=False)
    started = time.perf_counter()
    for buffer in buffers:
        events.write_events(conn, buffer)
    conn.commit()
    return time.perf_counter() - started


# --- (b) the geopandas baseline ---------------------------------------------------------------

def run_geopandas(url: str, path: Path, nrows: int | None) -> dict[str, float]:
    """What a geopandas user would write, end to end from the CSV (timed in steps)."""
    import geopandas as gpd
    import h3
    import pandas as pd
    import sqlalchemy

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS events_geopandas")
        conn.execute(BASELINE_DDL)
        conn.execute("CHECKPOINT")
    engine = sqlalchemy.create_engine(sqlalchemy.engine.make_url(url).set(drivername="postgresql+psycopg"))
    steps = {}
    started = time.perf_counter()

    df = pd.read_csv(path, nrows=nrows)
    df["occurred_at"] = pd.to_datetime(df["occurred_at"], utc=True, format="ISO8601")
    df["ends_at"] = pd.to_datetime(df["ends_at"], utc=True, format="ISO8601")
    gdf = gpd.GeoDataFrame(df, geometry=gpd.points_from_xy(df.lon, df.lat), crs=4326)
    steps["read + parse"] = time.perf_counter() - started

    mark = time.perf_counter()
    for r in range(7, 12):
        gdf[f"h3_r{r}"] = [h3.str_to_int(h3.latlng_to_cell(lat, lng, r)) for lat, lng in zip(gdf.lat, gdf.lon, strict=True)]
    steps["h3-py loop"] = time.perf_counter() - mark

    mark = time.perf_counter()
    gdf.to_postgis("events_geopandas", engine, if_exists="append", index=False)
    steps["to_postgis"] = time.perf_counter() - mark
    steps["total"] = time.perf_counter() - started
    engine.dispose()
    with psycopg.connect(url) as conn:
        steps["rows"] = conn.execute("SELECT count(*) FROM events_geopandas").fetchone()[0]
    return steps


# --- H3 micro-benchmark -----------------------------------------------------------------------

def h3_bench(path: Path, n: int, repeat: int) -> dict[str, float]:
    import h3
    import pyarrow.csv as pacsv

    from geo_monitor.hexagons import points_to_cells

    table = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(include_columns=["lon", "lat"]))
    lon = table["lon"].to_numpy()[:n].astype(np.float64)
    lat = table["lat"].to_numpy()[:n].astype(np.float64)
    h3_int = h3.api.basic_int

    def ours() -> np.ndarray:
        return points_to_cells(lat, lon, 11)

    def loop_int() -> np.ndarray:
        return np.array([h3_int.latlng_to_cell(a, b, 11) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)],
                        dtype=np.uint64).view(np.int64)

    def loop_str() -> np.ndarray:
        return np.array([h3.str_to_int(h3.latlng_to_cell(a, b, 11)) for a, b in zip(lat.tolist(), lon.tolist(), strict=True)],
                        dtype=np.uint64).view(np.int64)

    out: dict[str, float] = {"points": float(len(lat))}
    results = {}
    for name, fn in (("h3ronpy", ours), ("h3-py int API loop", loop_int), ("h3-py str API loop + str_to_int", loop_str)):
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            results[name] = fn()
            times.append(time.perf_counter() - started)
        out[name] = statistics.median(times)
        say(f"  H3 {name}: {len(lat) / out[name]:,.0f} cells/s (median of {repeat})")
    first = results["h3ronpy"]
    out["identical"] = float(all(np.array_equal(first, other) for other in results.values()))
    return out


# --- peak memory of (a), in a child process ---------------------------------------------------

def child_ingest(path: Path, url: str) -> None:
    """Run (a) once in this (fresh) process and print time and memory as JSON on stdout."""
    settings = make_settings(url)
    db.up(settings)  # a no-op, unless migrations were added to the working tree since the bench started
    rss_before = proc_status_kb("VmRSS")
    with db.connect(settings) as conn:
        started = time.perf_counter()
        report = ingest_file(conn, path, source="sample", settings=settings)
        seconds = time.perf_counter() - started
    print(json.dumps({"received": report.received, "accepted": report.accepted, "seconds": seconds,
                      "rss_before_kb": rss_before, "peak_kb": proc_status_kb("VmHWM")}))


def measure_memory(conn: psycopg.Connection, path: Path, url: str) -> dict:
    reset(conn)
    command = [sys.executable, str(Path(__file__).resolve()), "--_child-ingest", str(path), "--_child-db", url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child ingest failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- output -----------------------------------------------------------------------------------

def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    names = ("numpy", "pandas", "pyarrow", "shapely", "h3", "h3ronpy", "psycopg", "geopandas", "GeoAlchemy2", "SQLAlchemy")
    parts = []
    for name in names:
        try:
            parts.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            parts.append(f"{name} -")
    return ", ".join(parts)




def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="N synthetic events (default 1,000,000)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of (a), (c) and the H3 bench; medians are quoted")
    parser.add_argument("--baseline-events", type=int, default=None,
                        help="run (b) on the first M events only (it is slow); its events/s is M / seconds")
    parser.add_argument("--memory", dest="memory", action="store_true", default=True,
                        help="measure peak RSS of (a) at N and 5N events in a child process (default)")
    parser.add_argument("--no-memory", dest="memory", action="store_false", help="skip the memory runs")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database (and say its name)")
    parser.add_argument("--_child-ingest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_child-db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child_ingest:
        child_ingest(args._child_ingest, args._child_db)
        return 0

    n = args.events
    repeat = max(1, args.repeat)
    server = os.environ.get("GEO_MONITOR_BENCH_SERVER") or DEFAULT_SERVER
    dbname = f"geo_monitor_bench_{os.getpid()}"
    url = db.database_url(server, dbname)
    settings = make_settings(url)
    baseline_n = min(args.baseline_events or n, n)
    big_n = min(5 * n, MAX_EVENTS)
    workdir = Path(tempfile.mkdtemp(prefix="geo_monitor_bench_"))
    csv_path = workdir / f"sample-{n}.csv"
    load_before = os.getloadavg()
    revision = code_revision()
    say(f"bench database {dbname}, work dir {workdir}, code {revision}")
    try:
        say("db up + reference layers")
        db.up(settings)
        with db.connect(settings) as conn:
            reference.load_reference(conn, settings)
            conn.commit()
            server_version = conn.execute("SHOW server_version").fetchone()[0]
        make_sample(csv_path, n, settings)

        with db.connect(settings) as conn:
            say("(c) preparing rows for the bare COPY with validate + copy_buffer (not timed)")
            buffers, copy_rows = prepare_copy_buffers(conn, csv_path, settings)
            say(f"  {copy_rows:,} rows, {sum(map(len, buffers)) / 1e6:,.0f} MB of binary COPY")
            ours_times, copy_times, report = [], [], None
            for i in range(repeat):
                say(f"(a) ingest_file, run {i + 1}/{repeat}")
                seconds, report = run_ours(conn, csv_path, settings)
                ours_times.append(seconds)
                say(f"  {seconds:.2f} s, {report.received / seconds:,.0f} events/s "
                    f"(accepted {report.accepted:,}, rejected {report.rejected:,}, duplicates {report.duplicates:,})")
                say(f"(c) bare binary COPY, run {i + 1}/{repeat}")
                seconds = run_copy(conn, buffers)
                copy_times.append(seconds)
                say(f"  {seconds:.2f} s, {copy_rows / seconds:,.0f} rows/s")
            del buffers
            reset(conn)

        say(f"(b) geopandas baseline on {baseline_n:,} events (once)")
        geo = run_geopandas(url, csv_path, None if baseline_n == n else baseline_n)
        say(f"  {geo['total']:.1f} s: " + ", ".join(f"{k} {v:.1f} s" for k, v in geo.items() if k not in ("total", "rows")))

        say(f"H3 indexing micro-bench on {n:,} points")
        h3r = h3_bench(csv_path, n, repeat)

        memory = {}
        if args.memory:
            with db.connect(settings) as conn:
                say(f"peak memory of (a) at {n:,} events (child process)")
                memory[n] = measure_memory(conn, csv_path, url)
                say(f"  peak {memory[n]['peak_kb'] / 1024:,.0f} MB")
                big_path = workdir / f"sample-{big_n}.csv"
                make_sample(big_path, big_n, settings)
                say(f"peak memory of (a) at {big_n:,} events (child process)")
                memory[big_n] = measure_memory(conn, big_path, url)
                say(f"  peak {memory[big_n]['peak_kb'] / 1024:,.0f} MB")
                big_path.unlink()
                reset(conn)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        finish(settings, dbname, url, args.keep_db)

    # --- report ---
    load_after = os.getloadavg()
    a_s, c_s = statistics.median(ours_times), statistics.median(copy_times)
    a_rate = report.received / a_s
    b_rate = baseline_n / geo["total"]
    c_rate = copy_rows / c_s
    print(f"geo_monitor ingest bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"PostgreSQL {server_version} on {urlsplit(server).hostname or server}; "
          f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          f"(other work on the machine skews every figure)")
    print(f"code: {revision}; libraries: {versions()}")
    print(f"input: {n:,} synthetic events (geo_monitor.store.sample, seed 42), CSV {csv_path.name}; "
          f"ingest chunk {settings.ingest_chunk_rows:,} rows; medians of {repeat} run(s) unless stated")
    print()
    print(f"{'method':<58} {'events':>10} {'seconds':>9} {'events/s':>11} {'vs (a)':>8}")
    rows = [
        (f"(a) geo_monitor ingest_file, end to end from CSV [median {repeat}]", report.received, a_s, a_rate),
        ("(b) read_csv + h3-py loop + GeoDataFrame.to_postgis [1 run]", baseline_n, geo["total"], b_rate),
        (f"(c) bare binary COPY of prepared rows + commit [median {repeat}]", copy_rows, c_s, c_rate),
    ]
    for name, count, seconds, rate in rows:
        print(f"{name:<58} {count:>10,} {seconds:>9.2f} {rate:>11,.0f} {rate / a_rate:>7.2f}x")
    print()
    print(f"(a) runs: {', '.join(f'{t:.2f}' for t in ours_times)} s; accepted {report.accepted:,} of "
          f"{report.received:,} (rejected {report.rejected:,}, duplicates {report.duplicates:,})")
    print(f"(c) runs: {', '.join(f'{t:.2f}' for t in copy_times)} s; rows prepared by validate() + "
          "events.copy_buffer() beforehand (untimed); timed: events.write_events() + commit only")
    scaled = "" if baseline_n == n else f"; measured on the first {baseline_n:,} of {n:,} events, events/s scaled from that"
    print("(b) steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in geo.items() if k not in ("total", "rows"))
          + f"; {int(geo['rows']):,} rows stored{scaled}")
    print("(b) is the code a geopandas user would write: pd.read_csv, pd.to_datetime, GeoDataFrame(points_from_xy),")
    print("    [h3.str_to_int(h3.latlng_to_cell(lat, lng, r)) ...] for r in 7..11, to_postgis(if_exists='append')")
    print("    (GeoAlchemy2, SQLAlchemy postgresql+psycopg) into a table with the same kind of indexes.")
    print("    It does NO validation, NO generalisation (cell centre, hour), NO dedupe, NO quartier lookup:")
    print("    a lower bound of what a correct geopandas pipeline costs.")
    print("(c) is the physical limit here: the same events table and indexes, the server only parses binary tuples.")
    print()
    print(f"(a)/(b) = {a_rate / b_rate:.1f}x  (target >= {TARGET_VS_GEOPANDAS:.0f}x)  "
          f"{verdict(a_rate / b_rate >= TARGET_VS_GEOPANDAS)}")
    print(f"(a)/(c) = {a_rate / c_rate:.0%}  (target >= {TARGET_VS_COPY:.0%})  {verdict(a_rate / c_rate >= TARGET_VS_COPY)}")
    if memory:
        small, big = memory[n], memory[big_n]
        peak_small, peak_big = small["peak_kb"] / 1024, big["peak_kb"] / 1024
        growth = peak_big / peak_small - 1
        ok = peak_small < MEMORY_LIMIT_MB and peak_big < MEMORY_LIMIT_MB and growth <= MEMORY_GROWTH_LIMIT
        print(f"peak RSS of (a): {n:,} events = {peak_small:,.0f} MB, {big_n:,} events = {peak_big:,.0f} MB "
              f"(growth {growth:+.0%}; target < {MEMORY_LIMIT_MB / 1024:.1f} GB, flat = growth <= "
              f"{MEMORY_GROWTH_LIMIT:.0%})  {verdict(ok)}")
        print(f"    child process VmHWM; RSS after imports, before ingest: {small['rss_before_kb'] / 1024:,.0f} MB. "
              f"(a) in the child: {n:,} in {small['seconds']:.1f} s ({small['received'] / small['seconds']:,.0f}/s), "
              f"{big_n:,} in {big['seconds']:.1f} s ({big['received'] / big['seconds']:,.0f}/s)")
    else:
        print("peak RSS of (a): not measured (--no-memory)")
    points = h3r["points"]
    ours_rate = points / h3r["h3ronpy"]
    loop_rate = points / h3r["h3-py int API loop"]
    str_rate = points / h3r["h3-py str API loop + str_to_int"]
    print(f"H3 indexing, {int(points):,} points at resolution 11 [median {repeat}]: "
          f"points_to_cells (h3ronpy) {ours_rate:,.0f} cells/s; plain h3-py loop {loop_rate:,.0f} cells/s (int API), "
          f"{str_rate:,.0f} cells/s (str API + str_to_int)")
    print(f"    vectorised / h3-py loop = {ours_rate / loop_rate:.1f}x (vs the int-API loop, the faster of the two); "
          f"{ours_rate / str_rate:.1f}x vs the str-API loop; identical cells: {'yes' if h3r['identical'] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
