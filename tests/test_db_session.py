"""Every geo_monitor session runs with the options the library sets (JIT off), unless the URL sets its own."""

from __future__ import annotations

import psycopg

from geo_monitor import db
from geo_monitor.settings import Settings


def test_library_sessions_run_without_jit(loaded_db: Settings) -> None:
    with db.connect(loaded_db) as conn:
        assert conn.execute("SHOW jit").fetchone()[0] == "off"


def test_a_url_with_its_own_options_keeps_them(loaded_db: Settings) -> None:
    url = loaded_db.database_url
    own = f"{url}{'&' if '?' in url else '?'}options=-c%20statement_timeout%3D4321" if "://" in url \
        else f"{url} options='-c statement_timeout=4321'"
    with psycopg.connect(own, **db.session_kwargs(own)) as conn:
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "4321ms"
