"""What every benchmark script shares: progress lines and its own throw-away database."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_monitor import db
from geo_monitor.settings import Settings

_T0 = time.perf_counter()


def say(message: str) -> None:
    """Print a progress line to stderr, with the seconds since the script started."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def database_url(server: str, dbname: str) -> str:
    """Return the server URL (or key=value conninfo) pointed at ``dbname``."""
    if "://" in server:
        return urlsplit(server)._replace(path=f"/{dbname}").geturl()
    return make_conninfo(server, dbname=dbname)


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
