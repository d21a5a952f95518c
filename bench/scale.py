"""Scale benchmark: monthly rollups by PostgreSQL against the batch path on Dask (1 and 2 workers).

Run:  .venv/bin/python bench/scale.py [--events 10000000] [--repeat 3] [--lake DIR] [--reuse-lake DIR] [--keep-db]
      (--events 50000000 for the large run)

1. Writes N synthetic events straight into an event lake, in parallel on a 2-worker
   LocalCluster: each task draws a chunk (geo_monitor.store.sample.synthetic_events) and
   generalises it exactly as ingest does (store.validate: cell centre, hour, parents,
   quartier) before writing its monthly GeoParquet files. Bytes per event on disk are printed.
2. Loads the same events into the bench database ``geo_monitor_bench_scale_<pid>`` (binary
   COPY, as ingest writes them), then times ``store.rollups.refresh`` — the baseline, what
   ``geo-monitor aggregate`` runs — and the Dask path (``batch.rollups.lake_rollups``) on a
   fresh LocalCluster of 1 and of 2 worker processes (1 thread each), checking that the Dask
   rows equal PostgreSQL's. Both engines write every rollup table (daily and monthly,
   resolutions 7-11) into the database, so the times compare like with like. Medians of ``--repeat`` runs, the peak memory of each worker, the
   events per second per worker and the scaling curve go to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from common import bench_settings, code_revision, finish, say  # noqa: E402 (bench/ is the script's folder)

from geo_monitor import db
from geo_monitor.batch.cluster import dask_client, worker_peak_rss
from geo_monitor.batch.rollups import rollups_from_lake
from geo_monitor.hexagons import cells_to_parents
from geo_monitor.settings import Settings
from geo_monitor.store import lake as event_lake
from geo_monitor.store import rollups
from geo_monitor.store.events import copy_buffer, write_events
from geo_monitor.store.ingest import load_context
from geo_monitor.store.reference import load_reference
from geo_monitor.store.sample import synthetic_events
from geo_monitor.store.validate import EPOCH_2000_US, STORED_RESOLUTIONS, Prepared, validate

CHUNK = 500_000
SEED = 1414
_contexts: dict = {}


def write_chunk(index: int, rows: int, first_row: int, settings: Settings, lake: Path) -> tuple[list[str], int]:
    """Draw one chunk, generalise it as ingest does, write one sorted file per month; return files, events."""
    if "ctx" not in _contexts:
        with db.connect(settings) as conn:
            _contexts["ctx"] = load_context(conn, settings, source=None, crs=None)
    ctx = _contexts["ctx"]
    frame = synthetic_events(rows, seed=SEED, chunk=index, first_row=first_row, settings=settings).to_pandas()
    frame["_record"] = np.arange(len(frame))
    prepared = validate(frame, ctx).prepared
    ids = first_row + prepared.record.astype(np.int64) + 1
    occurred = prepared.occurred_us + EPOCH_2000_US
    months = (pd.DatetimeIndex(pd.to_datetime(occurred, unit="us", utc=True)).tz_convert("Europe/Paris")
              .strftime("%Y-%m").to_numpy())
    files = []
    for month in np.unique(months):
        at = np.flatnonzero(months == month)
        at = at[event_lake.sort_order(prepared.cells[at, -1], occurred[at], ids[at])]
        table = event_lake.events_table(
            id=ids[at], batch_id=np.full(len(at), index + 1), kind_id=prepared.kind_id[at],
            category_id=prepared.category_id[at], occurred_us=occurred[at], ends_us=np.full(len(at), -1),
            lon=prepared.lon[at], lat=prepared.lat[at], h3_r11=prepared.cells[at, -1],
            arrondissement=prepared.arrondissement[at], quartier=prepared.quartier[at],
            source_id=np.ones(len(at), dtype=np.int32))
        path = event_lake.write_month(lake, month, table, f"part-s{index:05d}")
        files.append(str(path.relative_to(lake)))
    return files, len(prepared)


def build_lake(settings: Settings, lake: Path, n_events: int) -> tuple[int, float]:
    """Write the synthetic lake on a 2-worker cluster; return events written and seconds."""
    started = time.perf_counter()
    manifest = event_lake.read_manifest(lake)  # a new, empty lake
    chunks = [(i, min(CHUNK, n_events - i * CHUNK), i * CHUNK) for i in range(-(-n_events // CHUNK))]
    with dask_client(workers=2) as client:
        futures = [client.submit(write_chunk, i, rows, first, settings, lake, pure=False) for i, rows, first in chunks]
        results = client.gather(futures)
    for (i, _, _), (files, events) in zip(chunks, results, strict=True):
        manifest["exports"].append({"at": "bench", "batches": [i + 1], "events": events, "files": files})
        manifest["batches"].append(i + 1)
        manifest["events"] += events
    event_lake.write_manifest(lake, manifest)
    return manifest["events"], time.perf_counter() - started


def load_postgres(settings: Settings, lake: Path) -> float:
    """COPY the lake's events into the bench database as ingest would have stored them; return seconds."""
    import pyarrow.parquet as pq

    started = time.perf_counter()
    manifest = event_lake.read_manifest(lake)
    with db.connect(settings) as conn:
        conn.execute("INSERT INTO sources (name) VALUES ('sample') ON CONFLICT DO NOTHING")
        for export in manifest["exports"]:
            batch = export["batches"][0]
            conn.execute(
                "INSERT INTO ingest_batches (id, file_name, format, actor, started_at, finished_at, received, "
                "accepted, duplicates, rejected) OVERRIDING SYSTEM VALUE "
                "VALUES (%s, 'bench', 'lake', 'bench', now(), now(), %s, %s, 0, 0)",
                (batch, export["events"], export["events"]))
            for name in export["files"]:
                t = pq.read_table(lake / name, partitioning=None)
                fine = t["h3_r11"].to_numpy()
                ids = t["id"].to_numpy()
                n = len(ids)
                cells = np.column_stack([cells_to_parents(fine, r) for r in STORED_RESOLUTIONS[:-1]] + [fine])
                occurred = t["occurred_at"].cast("int64").to_numpy() - EPOCH_2000_US
                p = Prepared(record=ids, kind_id=t["kind_id"].to_numpy(), category_id=t["category_id"].to_numpy(),
                             occurred_us=occurred, ends_us=np.full(n, -1), lon=t["bbox"].combine_chunks().field("xmin").to_numpy(),
                             lat=t["bbox"].combine_chunks().field("ymin").to_numpy(), cells=cells,
                             arrondissement=t["arrondissement"].to_numpy(), quartier=t["quartier"].to_numpy(),
                             source_id=t["source_id"].to_numpy(),
                             external_hash=np.column_stack([ids.astype(np.uint64), np.zeros(n, np.uint64)]))
                write_events(conn, copy_buffer(p, np.ones(n, dtype=np.int32), batch))
            conn.commit()
        conn.execute("ANALYZE events")
    return time.perf_counter() - started


def column_bytes(lake: Path, columns: tuple[str, ...]) -> int:
    """Return the compressed bytes of some columns over every lake file (from the Parquet footers)."""
    import pyarrow.parquet as pq

    total = 0
    for files in event_lake.lake_files(lake).values():
        for path in files:
            meta = pq.ParquetFile(path).metadata
            for g in range(meta.num_row_groups):
                group = meta.row_group(g)
                total += sum(group.column(c).total_compressed_size for c in range(group.num_columns)
                             if group.column(c).path_in_schema in columns)
    return total


def differing_rows(conn: psycopg.Connection) -> int:
    """Return the rows that differ between each rollup table and PostgreSQL's copy of it (both ways)."""
    total = 0
    for table in rollups.TABLES:
        total += conn.execute(f"SELECT count(*) FROM ((TABLE {table} EXCEPT ALL TABLE bench_{table}) UNION ALL "
                              f"(TABLE bench_{table} EXCEPT ALL TABLE {table})) AS d").fetchone()[0]
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--lake", type=Path, help="keep the lake here (default: a temporary folder, removed)")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse-lake", type=Path, help="a lake an earlier run kept with --lake: skip writing one")
    args = parser.parse_args()
    dbname = f"geo_monitor_bench_scale_{os.getpid()}"
    settings = bench_settings(dbname)
    url = settings.database_url
    lake = args.reuse_lake or args.lake or Path(tempfile.mkdtemp(prefix="gm-lake-")) / "events"
    if not args.reuse_lake and lake.exists() and any(lake.iterdir()):
        sys.exit(f"{lake} is not empty: give a new folder")
    load = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()
    print(f"geo_monitor scale bench  code {code_revision()}  {os.cpu_count()} cores  load: {load}")
    try:
        say(f"database {dbname}: migrations and reference layers")
        db.up(settings)
        with db.connect(settings) as conn:
            load_reference(conn, settings)
        if args.reuse_lake:
            events, lake_s = event_lake.read_manifest(lake)["events"], None
        else:
            say(f"writing {args.events:,} synthetic events into the lake {lake} (2 workers)")
            events, lake_s = build_lake(settings, lake, args.events)
        size = event_lake.lake_bytes(lake)
        files = sum(len(v) for v in event_lake.lake_files(lake).values())
        written = (f"written in {lake_s:.1f} s ({events / lake_s:,.0f} events/s on 2 workers, generation + "
                   "generalisation)" if lake_s else f"reused from {lake}")
        print(f"lake: {events:,} events in {files} files, {size / 1e6:,.1f} MB, {size / events:.1f} bytes per event, "
              + written)
        read = column_bytes(lake, ("category_id", "h3_r11"))
        print(f"lake: the rollups read {read / 1e6:,.1f} MB (category_id, h3_r11), {read / events:.1f} bytes per event")
        say("loading the same events into PostgreSQL (binary COPY)")
        load_s = load_postgres(settings, lake)
        with db.connect(settings) as conn:
            table_bytes = conn.execute("SELECT pg_total_relation_size('events')").fetchone()[0]
        print(f"postgres: events loaded in {load_s:.1f} s; events table with indexes {table_bytes / 1e6:,.1f} MB, "
              f"{table_bytes / events:.1f} bytes per event")
        timings: dict[str, list[float]] = {"postgres": [], "dask 1 worker": [], "dask 2 workers": []}
        peaks: dict[str, int] = {}
        copies: dict[str, list[float]] = {"dask 1 worker": [], "dask 2 workers": []}
        with db.connect(settings) as conn:
            for i in range(args.repeat):
                say(f"postgres refresh {i + 1}/{args.repeat}")
                t = time.perf_counter()
                rollups.refresh(conn)
                timings["postgres"].append(time.perf_counter() - t)
            rows = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in rollups.TABLES}
            for table in rollups.TABLES:
                conn.execute(f"CREATE TABLE bench_{table} AS TABLE {table}")
            conn.commit()
        for workers in (1, 2):
            label = f"dask {workers} worker{'s' if workers > 1 else ''}"
            for i in range(args.repeat):
                say(f"{label} {i + 1}/{args.repeat}")
                with dask_client(workers=workers) as client, db.connect(settings) as conn:
                    t = time.perf_counter()
                    result = rollups_from_lake(conn, client, lake)
                    timings[label].append(time.perf_counter() - t)
                    copies[label].append(result.copy_seconds)
                    peaks[label] = max(peaks.get(label, 0), *worker_peak_rss(client).values())
                    wrong = differing_rows(conn)
                if wrong:
                    raise SystemExit(f"{label}: {wrong:,} rollup rows differ from PostgreSQL's")
        print(f"\nrollups of {events:,} events ({', '.join(f'{t} {n:,} rows' for t, n in rows.items())}; resolutions "
              f"{rollups.ROLLUP_RESOLUTIONS}), written into PostgreSQL by each engine; median of {args.repeat}; "
              "Dask rows equal PostgreSQL's: yes")
        base = statistics.median(timings["postgres"])
        print(f"{'engine':<16}{'median s':>10}{'runs':>28}{'events/s':>14}{'per worker':>14}{'vs postgres':>13}"
              f"{'peak MB/worker':>16}")
        for label, runs in timings.items():
            med = statistics.median(runs)
            workers = 1 if label == "postgres" else int(label.split()[1])
            peak = f"{peaks[label] / 1e6:,.0f}" if label in peaks else "-"
            print(f"{label:<16}{med:>10.2f}{' '.join(f'{r:.2f}' for r in runs):>28}{events / med:>14,.0f}"
                  f"{events / med / workers:>14,.0f}{base / med:>12.2f}x{peak:>16}")
        for label, runs in copies.items():
            copy = statistics.median(runs)
            total = statistics.median(timings[label])
            print(f"{label}: of {total:.2f} s, the client spent {copy:.2f} s writing {sum(rows.values()):,} rows into "
                  f"PostgreSQL ({sum(rows.values()) / copy:,.0f} rows/s, serial) and waited {total - copy:.2f} s for "
                  f"the counts ({events / max(total - copy, 1e-9):,.0f} events/s)")
        one, two = statistics.median(timings["dask 1 worker"]), statistics.median(timings["dask 2 workers"])
        print(f"\nscaling curve (Dask): 1 worker {events / one:,.0f} events/s -> 2 workers {events / two:,.0f} events/s "
              f"(speed-up {one / two:.2f}x, efficiency {one / two / 2:.0%}) on {os.cpu_count()} shared cores")
        copy_one = statistics.median(copies["dask 1 worker"])
        per_worker = events / max(one - copy_one, 1e-9)  # counting only: the COPY is the client's, serial
        efficiency = min(1.0, one / two / 2)
        rate = per_worker * 80 * efficiency
        rows_per_event, copy_rate = sum(rows.values()) / events, sum(rows.values()) / max(copy_one, 1e-9)
        print(f"projection, 10 nodes x 8 workers: counting at the measured {per_worker:,.0f} events/s per worker and "
              f"{efficiency:.0%} efficiency = {rate:,.0f} events/s; 10^8 events: {1e8 / rate:.0f} s counting + "
              f"{1e8 * rows_per_event / copy_rate:.0f} s writing {rows_per_event:.1f} rollup rows per event into one "
              f"PostgreSQL at the measured {copy_rate:,.0f} rows/s (grows with cells x days, not with workers)")
        print(f"load after: {subprocess.run(['uptime'], capture_output=True, text=True, check=False).stdout.strip()}")
    finally:
        finish(settings, dbname, url, args.keep_db)
        if args.lake is None and args.reuse_lake is None:
            shutil.rmtree(lake.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
