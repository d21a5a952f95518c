"""Connections, database creation and numbered migrations (psycopg 3)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_monitor.errors import DatabaseUnavailableError
from geo_monitor.settings import Settings, get_settings

MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")


# Our queries are many short aggregations over index ranges: at 10M events PostgreSQL's JIT
# starts compiling them (its cost threshold) and spends 60-130 ms doing so, more than it saves
# (bench/growth.py). A URL that sets its own ``options`` keeps them.
SESSION_OPTIONS = "-c jit=off"


def session_kwargs(url: str) -> dict:
    """Return the connection options every geo_monitor session uses, unless the URL sets its own."""
    return {} if "options" in conninfo_to_dict(url) else {"options": SESSION_OPTIONS}


@contextmanager
def local_settings(conn: psycopg.Connection, settings: dict[str, str]) -> Iterator[None]:
    """Change PostgreSQL settings for a block of the current transaction, then put them back.

    ``set_config(..., true)`` lasts until the transaction ends, and a step of a longer one (a
    rollup rebuild inside an ingest) must not hand its settings to the steps after it. If the
    block fails, the transaction (or its savepoint) rolls back, and the settings with it.
    """
    names = list(settings)
    before = conn.execute("SELECT " + ", ".join(["current_setting(%s)"] * len(names)), names).fetchone()
    assign = "SELECT " + ", ".join(["set_config(%s, %s, true)"] * len(names))
    conn.execute(assign, [v for name in names for v in (name, settings[name])])
    yield
    conn.execute(assign, [v for name, value in zip(names, before, strict=True) for v in (name, value)])


def connect(settings: Settings | None = None, **kwargs) -> psycopg.Connection:
    """Open a connection to the configured database, with a clear error when it is down."""
    settings = settings or get_settings()
    try:
        return psycopg.connect(settings.database_url, connect_timeout=5,
                               **{**session_kwargs(settings.database_url), **kwargs})
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"cannot connect to {_safe_url(settings.database_url)}: {str(exc).strip()}. "
            "Is PostgreSQL running? Set GEO_MONITOR_DATABASE_URL to point elsewhere."
        ) from exc


def database_url(server: str, dbname: str) -> str:
    """Return a connection string (URL or key=value conninfo) pointed at database ``dbname``."""
    if "://" in server:
        return urlsplit(server)._replace(path=f"/{dbname}").geturl()
    return make_conninfo(server, dbname=dbname)


@cache
def query_text(name: str) -> str:
    """Return the query kept in ``geo_monitor/sql/<name>.sql`` (read once; values go in as placeholders)."""
    return (resources.files("geo_monitor") / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def _safe_url(url: str) -> str:
    """Describe a connection string without its password."""
    params = conninfo_to_dict(url)
    params.pop("password", None)
    return make_conninfo(**params)


def ensure_database(settings: Settings | None = None) -> bool:
    """Create the configured database if it is missing; return True when it was created."""
    settings = settings or get_settings()
    params = conninfo_to_dict(settings.database_url)
    dbname = params.get("dbname", "postgres")
    maintenance = make_conninfo(**{**params, "dbname": "postgres"})
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
            if exists:
                return False
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
            return True
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(
            f"cannot reach the PostgreSQL server for {_safe_url(settings.database_url)}: "
            f"{str(exc).strip()}"
        ) from exc


def drop_database(settings: Settings) -> None:
    """Drop the configured database (tests use this to clean up after themselves)."""
    params = conninfo_to_dict(settings.database_url)
    maintenance = make_conninfo(**{**params, "dbname": "postgres"})
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(params["dbname"]))
        )


def available_migrations() -> list[tuple[int, str, str]]:
    """Return (version, name, sql) for every migration shipped with the package, in order."""
    found = []
    for entry in resources.files("geo_monitor.migrations").iterdir():
        match = MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), match.group(2), entry.read_text(encoding="utf-8")))
    return sorted(found)


def migrate(conn: psycopg.Connection) -> list[str]:
    """Apply the migrations not yet applied, each in its own transaction; return their names.

    A session lock serialises concurrent `db up` runs: the second waits, then finds the
    work done.
    """
    conn.commit()
    conn.execute("SELECT pg_advisory_lock(7171, 1)")  # a session lock: it outlives the commit
    conn.commit()
    try:
        with conn.transaction():
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
        applied = []
        for version, name, text in available_migrations():
            with conn.transaction():
                done = conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,)).fetchone()
                if done:
                    continue
                conn.execute(text)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied.append(f"{version:03d}_{name}")
        return applied
    finally:
        conn.rollback()
        conn.execute("SELECT pg_advisory_unlock(7171, 1)")
        conn.commit()


def schema_version(conn: psycopg.Connection) -> int:
    """Return the highest applied migration number (0 for an empty database)."""
    row = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()
    if not row[0]:
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]


@dataclass
class UpReport:
    """What `db up` did: the printed summary of an idempotent command."""

    created_database: bool = False
    migrations: list[str] = field(default_factory=list)
    categories_added: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything was changed."""
        return self.created_database or bool(self.migrations or self.categories_added)


def up(settings: Settings | None = None) -> UpReport:
    """Create the database if needed, apply migrations and sync the category vocabulary."""
    from geo_monitor.store.vocabulary import sync_vocabulary

    settings = settings or get_settings()
    report = UpReport(created_database=ensure_database(settings))
    with connect(settings) as conn:
        report.migrations = migrate(conn)
        report.categories_added = sync_vocabulary(conn, settings)
    return report
