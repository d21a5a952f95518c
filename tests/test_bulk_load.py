"""Bulk loads (store.bulk_load): a batch large against the store goes in without the events'
secondary indexes. The indexes come back exactly as they were, a failure leaves them in place,
and a reader that holds the tables is waited for, never deadlocked.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pandas as pd
import psycopg
import pytest

from geo_monitor import db
from geo_monitor.settings import Settings
from geo_monitor.store import ingest

LAUMIERE = (2.3787169, 48.8849706)
GAMBETTA = (2.3969128, 48.8649781)


def rows(prefix: str, n: int) -> pd.DataFrame:
    """``n`` valid incidents with external ids ``prefix-i``, as a reader yields them."""
    frame = pd.DataFrame([{"kind": "incident", "category": "dealing", "occurred_at": f"2020-05-{1 + i % 28:02d}T10:00:00Z",
                           "lon": LAUMIERE[0] if i % 2 else GAMBETTA[0], "lat": LAUMIERE[1] if i % 2 else GAMBETTA[1],
                           "external_id": f"{prefix}-{i}"} for i in range(n)]).astype(str)
    frame["_record"] = range(2, 2 + n)
    return frame


def event_indexes(conn: psycopg.Connection) -> dict[str, str]:
    return dict(conn.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'events'"
    ).fetchall())


@pytest.fixture
def bconn(loaded_db: Settings) -> Iterator[psycopg.Connection]:
    with db.connect(loaded_db, autocommit=True) as connection:
        yield connection


def test_a_bulk_load_builds_the_same_indexes_again_and_they_hold(bconn: psycopg.Connection, loaded_db: Settings,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "REBUILD_SHARE", 0.0)
    before = event_indexes(bconn)
    assert {"events_external_unique", "events_category_time_idx"} <= set(before)
    frame = rows("bulk-same", 40)

    report = ingest.ingest_chunks(bconn, [frame.iloc[:25], frame.iloc[15:]], name="bulk.csv", fmt="csv",
                                  source="bulk-same", settings=loaded_db, expected_rows=50)

    assert report.bulk and (report.accepted, report.duplicates_in_file, report.duplicates_in_store) == (40, 10, 0)
    assert event_indexes(bconn) == before
    with pytest.raises(psycopg.errors.UniqueViolation):  # the rebuilt unique constraint refuses a copy
        bconn.execute("INSERT INTO events (kind_id, category_id, occurred_at, geom, h3_r7, h3_r8, h3_r9, h3_r10, "
                      "h3_r11, arrondissement, quartier, source_id, external_hash, batch_id) "
                      "SELECT kind_id, category_id, occurred_at, geom, h3_r7, h3_r8, h3_r9, h3_r10, h3_r11, "
                      "arrondissement, quartier, source_id, external_hash, batch_id FROM events "
                      "WHERE batch_id = %s LIMIT 1", (report.batch_id,))
    assert "bulk load" in "\n".join(report.summary())


def test_a_failed_bulk_load_leaves_the_events_and_their_indexes(bconn: psycopg.Connection, loaded_db: Settings,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ingest, "REBUILD_SHARE", 0.0)
    before = event_indexes(bconn)
    stored = bconn.execute("SELECT count(*) FROM events").fetchone()[0]

    def chunks() -> Iterator[pd.DataFrame]:
        yield rows("bulk-boom", 5)
        raise RuntimeError("the reader broke mid-file")

    with pytest.raises(RuntimeError, match="mid-file"):
        ingest.ingest_chunks(bconn, chunks(), name="boom.csv", fmt="csv", source="bulk-boom", settings=loaded_db,
                             expected_rows=10)
    assert event_indexes(bconn) == before
    assert bconn.execute("SELECT count(*) FROM events").fetchone()[0] == stored


def test_a_bulk_load_waits_for_a_reader_holding_both_tables_without_deadlock(
    bconn: psycopg.Connection, loaded_db: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader that has read the rollups and then reads the events (a team's counts do) holds one
    table while it asks for the other: the load tries briefly and again, so neither is aborted."""
    monkeypatch.setattr(ingest, "REBUILD_SHARE", 0.0)
    reader = db.connect(loaded_db)
    reader.execute("SELECT count(*) FROM rollup_daily").fetchone()
    outcome: dict[str, object] = {}

    def load() -> None:
        try:
            with db.connect(loaded_db, autocommit=True) as conn:
                outcome["report"] = ingest.ingest_chunks(conn, [rows("bulk-wait", 6)], name="wait.csv", fmt="csv",
                                                         source="bulk-wait", settings=loaded_db, expected_rows=6)
        except Exception as exc:  # noqa: BLE001 (handed to the test thread)
            outcome["error"] = exc

    thread = threading.Thread(target=load)
    thread.start()
    time.sleep(1.5)  # the load keeps trying while the reader holds the rollups (past deadlock_timeout)
    assert "report" not in outcome
    reader.execute("SELECT count(*) FROM events").fetchone()  # the reader now wants the events too
    reader.commit()
    reader.close()
    thread.join(timeout=60)
    assert "error" not in outcome, outcome.get("error")
    assert outcome["report"].accepted == 6 and outcome["report"].bulk
