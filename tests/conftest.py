"""Shared fixtures: a real PostgreSQL/PostGIS database per test session, never a mock.

The server comes from ``GEO_MONITOR_TEST_SERVER_URL`` (default: local postgres, trust auth);
each database is named ``geo_monitor_test_<pid>_<random>`` and dropped at teardown.
Reference files come from ``GEO_MONITOR_REFERENCE_DIR`` or ``../shared/data``.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NoReturn

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_monitor import db
from geo_monitor.errors import DatabaseUnavailableError
from geo_monitor.settings import Settings
from geo_monitor.store import reference

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


def server_url() -> str:
    """Return the maintenance URL of the PostgreSQL server the tests may create databases on."""
    return os.environ.get("GEO_MONITOR_TEST_SERVER_URL") or DEFAULT_SERVER_URL


def _reference_dir() -> Path:
    return Path(os.environ.get("GEO_MONITOR_REFERENCE_DIR") or SHARED_DATA_DIR)


def new_database_name() -> str:
    """Return a database name no other test session uses: ``geo_monitor_test_<pid>_<random>``."""
    return f"geo_monitor_test_{os.getpid()}_{secrets.token_hex(4)}"


def _without_password(url: str) -> str:
    params = conninfo_to_dict(url)
    params.pop("password", None)
    return make_conninfo(**params)


def _fail_unreachable(url: str, exc: Exception) -> NoReturn:
    pytest.fail(
        f"PostgreSQL test server unreachable at {_without_password(url)}: {str(exc).strip()}\n"
        "Start it (bash .ci/setup.sh) or set GEO_MONITOR_TEST_SERVER_URL to a server where "
        "the tests may create and drop databases.",
        pytrace=False,
    )


def require_server() -> None:
    """Fail (never skip) the calling test when the PostgreSQL server cannot be reached."""
    url = server_url()
    try:
        with psycopg.connect(url, connect_timeout=5):
            return
    except psycopg.OperationalError as exc:
        error = exc
    _fail_unreachable(url, error)  # outside `except`: no chained traceback in the report


def make_settings(dbname: str, cache_dir: Path, **overrides: object) -> Settings:
    """Return test settings for database ``dbname`` on the test server (nothing is created)."""
    values: dict[str, object] = {
        "environment": "test",
        "database_url": db.database_url(server_url(), dbname),
        "reference_dir": _reference_dir(),
        "cache_dir": cache_dir,
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The folder holding the official reference files (GEO_MONITOR_REFERENCE_DIR or ../shared/data)."""
    return _reference_dir()


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Settings of this session's database, created with ``db.up`` (migrated, vocabulary synced)."""
    require_server()
    test_settings = make_settings(new_database_name(), tmp_path_factory.mktemp("cache"))
    try:
        try:
            db.up(test_settings)
        except DatabaseUnavailableError as exc:
            _fail_unreachable(test_settings.database_url, exc)
        yield test_settings
    finally:  # also when db.up failed half-way
        db.drop_database(test_settings)


@pytest.fixture(scope="session")
def loaded_db(settings: Settings) -> Settings:
    """The session database with every reference layer loaded; returns its settings."""
    with db.connect(settings) as conn:  # commits on exit
        reference.load_reference(conn, settings)
    return settings


@pytest.fixture
def conn(settings: Settings) -> Iterator[psycopg.Connection]:
    """A connection to the session database; uncommitted work is rolled back when closed."""
    connection = db.connect(settings)
    try:
        yield connection
    finally:
        connection.close()


@pytest.fixture(scope="module")
def mconn(loaded_db: Settings) -> Iterator[psycopg.Connection]:
    """One autocommit connection to the loaded session database for the whole module (each write commits)."""
    with db.connect(loaded_db, autocommit=True) as connection:
        yield connection


@pytest.fixture
def settings_factory(tmp_path: Path) -> Iterator[Callable[..., Settings]]:
    """Return ``make(**overrides) -> Settings`` naming a new database that does not exist yet.

    Every database made through it is dropped after the test (if it was created at all).
    """
    require_server()
    made: list[Settings] = []

    def make(**overrides: object) -> Settings:
        made.append(make_settings(new_database_name(), tmp_path / f"cache{len(made)}", **overrides))
        return made[-1]

    yield make
    for each in made:
        db.drop_database(each)


@pytest.fixture
def fresh_settings(settings_factory: Callable[..., Settings]) -> Settings:
    """Settings of a new, empty database (created, but no PostGIS, migrations or data)."""
    empty = settings_factory()
    db.ensure_database(empty)
    return empty
