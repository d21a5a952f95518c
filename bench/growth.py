"""Growth benchmark: do ingest, memory and hex counts stay flat as the store grows?

Run:  .venv/bin/python bench/growth.py [--steps 1000000,5000000,10000000] [--queries Q]
                                       [--sample FILE] [--keep-db] [--no-rebuild]

It creates its own database ``geo_monitor_growth_<pid>`` on GEO_MONITOR_BENCH_SERVER (default
local postgres): migrations, reference layers. It generates one synthetic stream of as many
events as the last step (geo_monitor.store.sample, seed 42, GeoParquet; or reads --sample) and
loads it in steps: the events from the previous step's total up to this step's total, as one
file and one ``ingest_file`` batch, in a child process (so its peak RSS is that ingest's own).
After each step (and VACUUM ANALYZE, which autovacuum would do on a server) it prints:

  - the ingest rate of that step (events received / seconds) and the child's peak RSS;
  - the p50/p95 of the same Q random ``hex_counts`` queries as bench/query.py (same drawing
    function and seed: windows of 7-730 days in 2019-2021, random categories, resolution 7-11),
    and of ``count_cells`` alone, after one warm-up query per resolution (timed: it reads the
    rollups the process holds in memory, store.rollup_memory) and the memory they take;
  - the database size, and a check of the first queries against a direct count on the events.

After the last step it times the rollup rebuild (``rollups.refresh``, what ``geo-monitor
aggregate`` runs), then prints the two ratios, last step against the first:
``ingest rate at 10M / at 1M = 85%`` and ``query p50 at 10M / at 1M = 1.4x``.
Progress goes to stderr, the report to stdout. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from common import bench_settings, code_revision, finish, say  # noqa: E402 (bench/ is the script's folder)
from query import KINDS, draw_queries, pct, timed  # noqa: E402

from geo_monitor import db
from geo_monitor.analysis.counts import category_ids, count_cells, hex_counts
from geo_monitor.calendar import Window
from geo_monitor.settings import Settings
from geo_monitor.store import reference, rollup_memory, rollups
from geo_monitor.store.ingest import ingest_file
from geo_monitor.store.sample import generate_sample

REPO = Path(__file__).resolve().parents[1]
DEFAULT_STEPS = "1000000,5000000,10000000"
CHECKED_QUERIES = 10
TARGET_INGEST = 0.80  # ingest rate of the last step / first step
TARGET_RSS_GROWTH = 0.20  # peak RSS of the second step / first step - 1
TARGET_P50 = 2.0  # hex_counts p50 of the last step / first step
TARGET_P95_MS = 200.0
TARGET_REBUILD_S = 60.0

DIRECT_SQL = """
SELECT h3_parent(h3_r11, %(r)s) AS cell, count(*) FROM events
WHERE category_id = ANY(%(cats)s) AND occurred_at >= %(t0)s AND occurred_at < %(t1)s GROUP BY 1
"""


def make_settings(url: str) -> Settings:
    refs = Path(os.environ.get("GEO_MONITOR_REFERENCE_DIR") or REPO.parent / "shared" / "data")
    return Settings(database_url=url, reference_dir=refs)


def label(n: int) -> str:
    """Return 1M, 5M, 200k, 1.5M for a number of events."""
    if n >= 1_000_000:
        return f"{n / 1_000_000:g}M"
    return f"{n / 1000:g}k" if n >= 1000 else str(n)


def split_stream(sample: Path, steps: list[int], workdir: Path) -> list[Path]:
    """Write the rows of each step ([previous total, this total)) to their own GeoParquet file."""
    source = pq.ParquetFile(sample)
    if source.metadata.num_rows < steps[-1]:
        raise SystemExit(f"{sample} holds {source.metadata.num_rows:,} events, fewer than the last step {steps[-1]:,}")
    paths, writer, row, step = [], None, 0, 0
    for batch in source.iter_batches(batch_size=250_000):
        offset = 0
        while offset < batch.num_rows and step < len(steps):
            if writer is None:
                paths.append(workdir / f"step-{step + 1}-{label(steps[step])}.parquet")
                writer = pq.ParquetWriter(paths[-1], source.schema_arrow)
            take = min(batch.num_rows - offset, steps[step] - row)
            writer.write_batch(batch.slice(offset, take))
            offset, row = offset + take, row + take
            if row == steps[step]:
                writer.close()
                writer, step = None, step + 1
        if step == len(steps):
            break
    for path in paths:  # the GeoParquet metadata of the whole stream holds for every part
        table = pq.read_metadata(path)
        assert table.num_rows > 0, path
    return paths


def child_ingest(path: Path, url: str) -> None:
    """Ingest one file in this fresh process; print seconds, counts and peak RSS as JSON."""
    settings = make_settings(url)
    with db.connect(settings) as conn:
        started = time.perf_counter()
        report = ingest_file(conn, path, settings=settings)
        seconds = time.perf_counter() - started
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    print(json.dumps({"received": report.received, "accepted": report.accepted, "seconds": seconds,
                      "peak_kb": int(status["VmHWM"].split()[0])}))


def run_child(path: Path, url: str) -> dict:
    command = [sys.executable, str(Path(__file__).resolve()), "--_child-ingest", str(path), "--_child-db", url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"child ingest failed ({done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_queries(conn, queries: list[dict]) -> tuple[list[float], list[float]]:
    core, full = [], []
    for q in queries:
        ids = category_ids(conn, KINDS, q["categories"])
        ms, _ = timed(count_cells, conn, ids, Window.of(q["start"], q["end"]), q["resolution"])
        core.append(ms)
        ms, _ = timed(hex_counts, conn, start=q["start"], end=q["end"], resolution=q["resolution"],
                      kinds=KINDS, categories=q["categories"])
        full.append(ms)
    return core, full


def check_queries(conn, queries: list[dict]) -> int:
    """Count how many of the queries give exactly the counts of a direct query on the events."""
    same = 0
    for q in queries:
        ids = category_ids(conn, KINDS, q["categories"])
        window = Window.of(q["start"], q["end"])
        ours = count_cells(conn, ids, window, q["resolution"])
        rows = conn.execute(DIRECT_SQL, {"r": q["resolution"], "cats": ids, "t0": window.instant(window.start),
                                         "t1": window.instant(window.end)}).fetchall()
        same += dict(zip(ours.index.tolist(), ours.tolist(), strict=True)) == dict(rows)
    return same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default=DEFAULT_STEPS, help=f"cumulative events after each step (default {DEFAULT_STEPS})")
    parser.add_argument("--queries", type=int, default=200, help="random hex_counts queries after each step (default 200)")
    parser.add_argument("--seed", type=int, default=2019, help="seed of the random queries (bench/query.py's default)")
    parser.add_argument("--sample", type=Path, help="a GeoParquet sample with at least the last step's events "
                        "(default: generate one, seed 42)")
    parser.add_argument("--no-rebuild", dest="rebuild", action="store_false", help="skip timing the rollup rebuild")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database (and say its name)")
    parser.add_argument("--_child-ingest", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--_child-db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._child_ingest:
        child_ingest(args._child_ingest, args._child_db)
        return 0
    steps = sorted({int(s.replace("_", "")) for s in args.steps.split(",") if s.strip()})
    if len(steps) < 2:
        parser.error("--steps needs at least two totals, e.g. 200000,1000000")

    dbname = f"geo_monitor_growth_{os.getpid()}"
    settings = bench_settings(dbname)
    url = settings.database_url
    revision = code_revision()
    load_before = os.getloadavg()
    say(f"bench database {dbname}, code {revision}, steps {', '.join(map(label, steps))}")
    results, rebuild = [], None
    with tempfile.TemporaryDirectory(prefix="geo_monitor_growth_") as work:
        workdir = Path(work)
        try:
            say("db up + reference layers")
            db.up(settings)
            with db.connect(settings) as conn:
                reference.load_reference(conn, settings)
                conn.commit()
                server_version = conn.execute("SHOW server_version").fetchone()[0]
                server_settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                                   for name in ("shared_buffers", "max_wal_size", "checkpoint_timeout", "work_mem")}
            sample = args.sample
            if sample is None:
                sample = workdir / "stream.parquet"
                say(f"generating {steps[-1]:,} synthetic events -> {sample.name}")
                generate_sample(sample, steps[-1], settings=settings)
            paths = split_stream(sample, steps, workdir)
            with db.connect(settings, autocommit=True) as conn:
                names = [r[0] for r in conn.execute(
                    "SELECT c.name FROM categories c JOIN kinds k ON k.id = c.kind_id WHERE k.name = ANY(%s) "
                    "ORDER BY c.id", (KINDS,))]
            queries = draw_queries(np.random.default_rng(args.seed), names, args.queries)
            for total, path in zip(steps, paths, strict=True):
                say(f"step to {label(total)}: ingesting {path.name} in a child process")
                child = run_child(path, url)
                rate = child["received"] / child["seconds"]
                say(f"  {child['received']:,} events in {child['seconds']:.1f} s ({rate:,.0f}/s), "
                    f"peak RSS {child['peak_kb'] / 1024:,.0f} MB")
                with db.connect(settings, autocommit=True) as conn:
                    say("  VACUUM ANALYZE")
                    for table in ("events", *getattr(rollups, "TABLES", ["rollup_monthly"])):
                        conn.execute(f"VACUUM ANALYZE {table}")
                    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
                    started = time.perf_counter()
                    for r in range(7, 12):  # warm-up: residents per hexagon and the held rollups, per resolution
                        hex_counts(conn, start="2020-01-01", end="2020-02-01", resolution=r)
                    warm = time.perf_counter() - started
                    say(f"  warm-up {warm:.1f} s, rollups held in memory {rollup_memory.held_bytes() / 2**20:,.0f} MB")
                    say(f"  {len(queries)} queries")
                    core, full = run_queries(conn, queries)
                    checked = queries[:CHECKED_QUERIES]
                    same = check_queries(conn, checked)
                    if total == steps[-1] and args.rebuild:
                        say("  rollup rebuild (rollups.refresh, as geo-monitor aggregate)")
                        started = time.perf_counter()
                        rollups.refresh(conn)
                        rebuild = time.perf_counter() - started
                        say(f"  {rebuild:.1f} s")
                results.append({"total": total, "step": child["received"], "seconds": child["seconds"], "rate": rate,
                                "peak_mb": child["peak_kb"] / 1024, "core": pct(core), "full": pct(full),
                                "size_gb": size / 1e9, "same": same, "checked": len(checked), "warm": warm,
                                "held_mb": rollup_memory.held_bytes() / 2**20,
                                "load": os.getloadavg()[0]})
                say(f"  hex_counts p50 {results[-1]['full'][0]:.1f} ms, p95 {results[-1]['full'][1]:.1f} ms")
        finally:
            finish(settings, dbname, url, args.keep_db)

    load_after = os.getloadavg()
    first, last = results[0], results[-1]
    print(f"geo_monitor growth bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"PostgreSQL {server_version} ({', '.join(f'{k} {v}' for k, v in server_settings.items())}); "
          f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after "
          "(other work on the machine skews every figure)")
    print(f"code: {revision}; stream: {steps[-1]:,} synthetic events 2019-2021 "
          f"({'file ' + str(args.sample) if args.sample else 'generated, seed 42'}); {len(queries)} random "
          f"queries, seed {args.seed}, after VACUUM ANALYZE")
    print()
    print(f"{'store':>6} {'step events':>12} {'ingest s':>9} {'events/s':>9} {'peak RSS':>9} "
          f"{'hex_counts p50/p95 ms':>22} {'count_cells p50/p95 ms':>23} {'db GB':>6} {'checked':>8} {'load':>5} "
          f"{'warm-up s':>9} {'held MB':>8}")
    for r in results:
        print(f"{label(r['total']):>6} {r['step']:>12,} {r['seconds']:>9.1f} {r['rate']:>9,.0f} {r['peak_mb']:>6,.0f} MB "
              f"{r['full'][0]:>12.1f} / {r['full'][1]:>7.1f} {r['core'][0]:>13.1f} / {r['core'][1]:>7.1f} "
              f"{r['size_gb']:>6.2f} {r['same']:>4}/{r['checked']:<3} {r['load']:>5.2f} {r['warm']:>9.1f} "
              f"{r['held_mb']:>8,.0f}")
    print("(checked: of the first queries, how many gave exactly the counts of a direct GROUP BY on the events; "
          "warm-up: one query per resolution, which reads the rollups this process holds (store.rollup_memory), "
          "as the first count after each ingest does)")
    print()
    second = results[1]
    growth = second["peak_mb"] / first["peak_mb"] - 1
    p50_ratio = last["full"][0] / first["full"][0]
    verdict = {True: "PASS", False: "MISS"}
    print(f"peak RSS at {label(second['total'])} / at {label(first['total'])} = {growth:+.0%}  "
          f"(target <= +{TARGET_RSS_GROWTH:.0%}) {verdict[growth <= TARGET_RSS_GROWTH]}")
    print(f"hex_counts p95 at {label(last['total'])} = {last['full'][1]:.0f} ms  (target < {TARGET_P95_MS:.0f} ms) "
          f"{verdict[last['full'][1] < TARGET_P95_MS]}")
    if rebuild is not None:
        print(f"rollup rebuild at {label(last['total'])} = {rebuild:.1f} s  (target < {TARGET_REBUILD_S:.0f} s) "
              f"{verdict[rebuild < TARGET_REBUILD_S]}")
    print(f"ingest rate at {label(last['total'])} / at {label(first['total'])} = {last['rate'] / first['rate']:.0%}")
    print(f"query p50 at {label(last['total'])} / at {label(first['total'])} = {p50_ratio:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
