"""Counts summed from the rollups held in memory: the same as PostgreSQL's, and never from a stale state.

The oracle is a GROUP BY on the stored events; every count here comes from the held levels
(the test checks they are held), then the state changes under them (an ingest on another
connection, deleted events with a rebuild) and the next count must follow.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date, timedelta

import numpy as np
import pandas as pd
import psycopg
import pytest
from builders import ingest_sample

from geo_monitor import db
from geo_monitor.analysis.counts import count_cells, rollup_ranges
from geo_monitor.calendar import Window
from geo_monitor.grid import population_of
from geo_monitor.settings import Settings, get_settings
from geo_monitor.store import rollup_memory, rollups
from geo_monitor.store.ingest import ingest_chunks

SOURCE = "test_rollup_memory"
BUDGET_MB = 64


@pytest.fixture(scope="module")
def memory_db(loaded_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    ingest_sample(loaded_db, tmp_path_factory.mktemp("rollup_memory"), 4_000, seed=4242, source=SOURCE)
    return loaded_db


@pytest.fixture
def aconn(memory_db: Settings) -> Iterator[psycopg.Connection]:
    rollup_memory.clear()
    connection = db.connect(memory_db, autocommit=True)
    try:
        yield connection
    finally:
        connection.close()
        rollup_memory.clear()


def from_events(conn: psycopg.Connection, category: list[int], window: Window, resolution: int) -> dict[int, int]:
    rows = conn.execute(f"SELECT h3_r{resolution}, count(*) FROM events WHERE category_id = ANY(%s) "
                        "AND occurred_at >= %s AND occurred_at < %s GROUP BY 1",
                        (category, window.instant(window.start), window.instant(window.end))).fetchall()
    return dict(rows)


def held(conn: psycopg.Connection, category: list[int], window: Window, resolution: int) -> dict[int, int]:
    answer = rollup_memory.counts(conn, category, rollup_ranges(window), resolution, BUDGET_MB)
    assert answer is not None, "the level should be held"
    cells, counts, residents = answer
    assert np.all(np.diff(cells) > 0) and counts.dtype == np.int64
    np.testing.assert_array_equal(residents, population_of(conn, resolution, cells))
    return dict(zip(cells.tolist(), counts.tolist(), strict=True))


def categories(conn: psycopg.Connection) -> list[int]:
    return [r[0] for r in conn.execute("SELECT id FROM categories ORDER BY id")]


def random_window(rng: random.Random) -> Window:
    start = date(2019, 11, 1) + timedelta(days=rng.randrange(0, 900))
    return Window(start, start + timedelta(days=rng.choice([1, 6, 30, 31, 45, 100, 400])))


def test_held_counts_equal_the_events_and_sql(aconn: psycopg.Connection) -> None:
    rng = random.Random(11)
    ids = categories(aconn)
    for _ in range(60):
        resolution, window = rng.randint(7, 11), random_window(rng)
        chosen = sorted(rng.sample(ids, rng.randint(1, len(ids))))
        expected = from_events(aconn, chosen, window, resolution)
        assert held(aconn, chosen, window, resolution) == expected
        assert count_cells(aconn, chosen, window, resolution).to_dict() == expected
        with pytest.MonkeyPatch.context() as patch:  # PostgreSQL's sums, with no level held
            patch.setenv("GEO_MONITOR_COUNT_MEMORY_MB", "0")
            get_settings.cache_clear()
            assert get_settings().count_memory_mb == 0
            assert count_cells(aconn, chosen, window, resolution).to_dict() == expected
        get_settings.cache_clear()
    assert rollup_memory.held_bytes() > 0
    assert held(aconn, [], Window(date(2020, 1, 1), date(2020, 2, 1)), 9) == {}
    assert held(aconn, [32000], Window(date(2020, 1, 1), date(2020, 2, 1)), 9) == {}  # no such category


def test_an_ingest_on_another_connection_is_counted_next_time(aconn: psycopg.Connection, memory_db: Settings) -> None:
    ids, window = categories(aconn), Window(date(2020, 3, 1), date(2020, 5, 17))
    before = held(aconn, ids, window, 11)
    frame = pd.DataFrame([{"occurred_at": "2020-05-16T10:00:00Z", "lon": "2.3787169", "lat": "48.8849706",
                           "kind": "incident", "category": "dealing", "external_id": f"memory-{i}"}
                          for i in range(3)])
    frame["_record"] = np.arange(2, 5)
    with db.connect(memory_db) as other:
        ingest_chunks(other, [frame], name="more.csv", fmt="csv", source=f"{SOURCE}-more", settings=memory_db)
    after = held(aconn, ids, window, 11)
    assert sum(after.values()) == sum(before.values()) + 3
    assert after == from_events(aconn, ids, window, 11)


def test_deleted_events_are_gone_after_the_rebuild(aconn: psycopg.Connection) -> None:
    ids, window = categories(aconn), Window(date(2019, 1, 1), date(2023, 1, 1))
    before = held(aconn, ids, window, 8)
    batch = aconn.execute("SELECT max(e.batch_id) FROM events e JOIN sources s ON s.id = e.source_id "
                          "WHERE s.name LIKE %s", (f"{SOURCE}%",)).fetchone()[0]  # this module's own rows
    with aconn.transaction():
        gone = aconn.execute("DELETE FROM events WHERE batch_id = %s", (batch,)).rowcount
        rollups.refresh(aconn)  # what anything that deletes events must do
    try:
        after = held(aconn, ids, window, 8)
        assert gone and sum(after.values()) == sum(before.values()) - gone
        assert after == from_events(aconn, ids, window, 8)
    finally:
        aconn.execute("DELETE FROM ingest_batches WHERE id = %s", (batch,))


def test_a_stale_rollup_is_rebuilt_before_it_is_summed(aconn: psycopg.Connection) -> None:
    ids, window = categories(aconn), Window(date(2020, 1, 1), date(2021, 1, 1))
    expected = from_events(aconn, ids, window, 9)
    aconn.execute("UPDATE rollup_state SET last_batch_id = 0")
    aconn.execute("DELETE FROM rollup_monthly WHERE month >= '2020-06-01'")  # a broken rollup, said stale
    assert held(aconn, ids, window, 9) == expected
    assert rollups.is_fresh(aconn)


def test_a_level_over_the_budget_is_left_to_sql(aconn: psycopg.Connection) -> None:
    ids, window = categories(aconn), Window(date(2020, 1, 1), date(2020, 7, 1))
    assert rollup_memory.counts(aconn, ids, rollup_ranges(window), 11, 0.001) is None
    assert rollup_memory.counts(aconn, ids, rollup_ranges(window), 11, 0) is None
    assert rollup_memory.held_bytes() == 0
    assert count_cells(aconn, ids, window, 11).to_dict() == from_events(aconn, ids, window, 11)
