"""`db up`: database creation, numbered migrations, vocabulary sync, clear outage errors."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_monitor import db
from geo_monitor.errors import DatabaseUnavailableError
from geo_monitor.settings import Settings
from geo_monitor.store.vocabulary import vocabulary

ALL_MIGRATIONS = [f"{v:03d}_{name}" for v, name, _ in db.available_migrations()]
LATEST = db.available_migrations()[-1][0]

T = TypeVar("T")


def _expected_categories(settings: Settings) -> set[str]:
    return {f"{kind}/{name}" for kind, names in vocabulary(settings).items() for name in names}


def _database_exists(settings: Settings, server: psycopg.Connection) -> bool:
    dbname = conninfo_to_dict(settings.database_url)["dbname"]
    return server.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is not None


def test_up_creates_database_schema_and_vocabulary(settings_factory: Callable[..., Settings]) -> None:
    new = settings_factory()

    report = db.up(new)

    assert report.created_database is True
    assert report.migrations == ALL_MIGRATIONS
    expected = _expected_categories(new)
    assert sorted(report.categories_added) == sorted(expected)  # data/categories.csv, once each
    assert report.changed is True
    with db.connect(new) as conn:
        assert db.schema_version(conn) == LATEST
        assert conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'").fetchone()
        assert conn.execute("SELECT count(*) FROM categories").fetchone()[0] == len(expected)
        kinds = [r[0] for r in conn.execute("SELECT name FROM kinds ORDER BY id")]
        assert kinds == ["incident", "outreach", "works"]


def test_second_up_changes_nothing(settings: Settings) -> None:
    # The session database already went through `db up` once.
    report = db.up(settings)

    assert report.changed is False
    assert report.created_database is False
    assert report.migrations == []
    assert report.categories_added == []


def test_up_adds_categories_configured_later(settings_factory: Callable[..., Settings]) -> None:
    plain = settings_factory()
    db.up(plain)
    extended = plain.model_copy(update={"extra_categories": {"incident": ["noise"]}})

    report = db.up(extended)

    assert report.categories_added == ["incident/noise"]
    assert report.migrations == []
    assert db.up(extended).changed is False


def test_schema_version(conn: psycopg.Connection, fresh_settings: Settings) -> None:
    assert db.schema_version(conn) == LATEST
    with db.connect(fresh_settings) as empty:
        assert db.schema_version(empty) == 0


def _run_concurrently(work: Callable[[], T], threads: int = 2) -> list[T]:
    """Run ``work`` in several threads released together; re-raise the first error."""
    barrier = threading.Barrier(threads)
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait(timeout=10)
            results.append(work())
        except BaseException as exc:  # re-raised in the main thread below
            errors.append(exc)

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
    if errors:
        raise errors[0]
    assert len(results) == threads
    return results


def test_concurrent_migrations_apply_once(fresh_settings: Settings) -> None:
    def migrate() -> list[str]:
        with db.connect(fresh_settings) as conn:
            return db.migrate(conn)

    results = _run_concurrently(migrate)

    assert sorted(results) == [[], ALL_MIGRATIONS]
    with db.connect(fresh_settings) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    assert [f"{v:03d}_{n}" for v, n in rows] == ALL_MIGRATIONS


def test_concurrent_up_on_existing_database_applies_once(fresh_settings: Settings) -> None:
    reports = _run_concurrently(lambda: db.up(fresh_settings))

    assert sorted(r.migrations for r in reports) == [[], ALL_MIGRATIONS]
    added = [name for r in reports for name in r.categories_added]
    assert sorted(added) == sorted(_expected_categories(fresh_settings))  # each exactly once


@pytest.mark.parametrize("call", [db.up, db.connect, db.ensure_database])
def test_unreachable_server_gives_clear_error_without_password(
    call: Callable[[Settings], object], tmp_path: Path
) -> None:
    bad = Settings(
        database_url="postgresql://postgres:s3cret@127.0.0.1:1/geo_monitor_unreachable",
        cache_dir=tmp_path,
    )

    with pytest.raises(DatabaseUnavailableError) as info:
        call(bad)

    message = str(info.value)
    assert "s3cret" not in message
    assert "127.0.0.1" in message and "port=1" in message
    assert "geo_monitor_unreachable" in message


def test_drop_database_removes_it(settings_factory: Callable[..., Settings]) -> None:
    doomed = settings_factory()
    db.ensure_database(doomed)
    with psycopg.connect(make_conninfo(doomed.database_url, dbname="postgres"), autocommit=True) as server:
        assert _database_exists(doomed, server)
        db.drop_database(doomed)
        assert not _database_exists(doomed, server)


def test_local_settings_last_for_their_block_only(conn: psycopg.Connection) -> None:
    def work_mem() -> str:
        return conn.execute("SELECT current_setting('work_mem')").fetchone()[0]

    with conn.transaction():
        conn.execute("SET LOCAL work_mem = '8MB'")  # a caller's own setting, which the block must give back
        with db.local_settings(conn, {"work_mem": "64MB", "enable_seqscan": "off"}):
            assert work_mem() == "64MB"
            assert conn.execute("SELECT current_setting('enable_seqscan')").fetchone()[0] == "off"
        assert work_mem() == "8MB"
        assert conn.execute("SELECT current_setting('enable_seqscan')").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction(), \
                db.local_settings(conn, {"work_mem": "64MB"}):
            conn.execute("SELECT 1 / 0")
        assert work_mem() == "8MB"  # the failed block's savepoint took its setting back with it
