"""What every benchmark script shares: progress lines and its own throw-away database, filled with a sample."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_monitor import db
from geo_monitor.settings import Settings
from geo_monitor.store import reference
from geo_monitor.store.ingest import IngestReport, ingest_file
from geo_monitor.store.sample import generate_sample

_T0 = time.perf_counter()
REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def say(message: str) -> None:
    """Print a progress line to stderr, with the seconds since the script started."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def bench_settings(dbname: str) -> Settings:
    """Return the settings of bench database ``dbname`` on GEO_MONITOR_BENCH_SERVER (default: local postgres)."""
    server = os.environ.get("GEO_MONITOR_BENCH_SERVER") or DEFAULT_SERVER
    refs = Path(os.environ.get("GEO_MONITOR_REFERENCE_DIR") or REPO.parent / "shared" / "data")
    return Settings(database_url=db.database_url(server, dbname), reference_dir=refs)


def fill(settings: Settings, n: int, *, reuse: bool) -> tuple[int, IngestReport | None]:
    """Create, migrate and fill the bench database with ``n`` synthetic events, then VACUUM ANALYZE it.

    With ``reuse``, a database that already holds events is only migrated. Returns the events
    stored and the ingest report (None when reused).
    """
    if reuse and (have := stored_events(settings.database_url)):
        say(f"reusing {have:,} events already stored")
        db.up(settings)  # migrations another branch may have added
        return have, None
    say("db up + reference layers")
    db.up(settings)
    with db.connect(settings) as conn:
        reference.load_reference(conn, settings)
    with tempfile.TemporaryDirectory(prefix="geo_monitor_bench_") as work:
        path = Path(work) / f"sample-{n}.parquet"
        say(f"generating {n:,} synthetic events -> {path.name}")
        summary = generate_sample(path, n, settings=settings)
        say(f"  {summary.events:,} events {summary.by_kind} in {summary.seconds:.1f} s")
        say("ingesting")
        marks = iter(range(200_000, 10**12, 200_000))
        mark = [next(marks)]

        def progress(received: int) -> None:
            if received >= mark[0]:
                say(f"  {received:,} rows read")
                mark[0] = next(marks)

        with db.connect(settings) as conn:
            report = ingest_file(conn, path, settings=settings, progress=progress)
    say(f"  ingest: {report.accepted:,} accepted of {report.received:,} in {report.seconds:.1f} s "
        f"({report.received / max(report.seconds, 1e-9):,.0f} rows/s)")
    with db.connect(settings, autocommit=True) as conn:
        say("VACUUM ANALYZE events and the rollups")
        for table in ("events", "rollup_monthly", "rollup_daily"):
            conn.execute(f"VACUUM ANALYZE {table}")
    return report.accepted, report


def stored_events(url: str) -> int:
    """Return the events in the database at ``url`` (0 when it or its tables do not exist)."""
    params = conninfo_to_dict(url)
    with psycopg.connect(make_conninfo(**{**params, "dbname": "postgres"}), autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (params["dbname"],)).fetchone():
            return 0
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('events') IS NOT NULL").fetchone()[0]:
            return 0
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def code_revision() -> str:
    """Return the git commit of the code under test, flagging uncommitted changes to geo_monitor/."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "geo_monitor"], cwd=repo, capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" + uncommitted changes in geo_monitor/" if dirty else "")


def finish(settings: Settings, dbname: str, url: str, keep: bool) -> None:
    """Drop the bench database, or say where it was kept."""
    if keep:
        say(f"kept database {dbname} ({url})")
    else:
        say(f"dropping database {dbname}")
        db.drop_database(settings)


def timed(repeat: int, function, *args, **kwargs) -> tuple[float, object]:
    """Return (median seconds, last result) of ``repeat`` calls."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return statistics.median(times), result
