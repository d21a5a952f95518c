"""Daily and monthly rollups on the real PostGIS: kept in step by ingest, rebuilt when stale, never served stale.

The expected rollup is recomputed in Python from the stored events (Europe/Paris month with
zoneinfo, cells with h3-py), over every event of the shared session database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import date
from functools import cache
from zoneinfo import ZoneInfo

import h3
import numpy as np
import pandas as pd
import psycopg
import pytest
from builders import ingest_sample

from geo_monitor import db
from geo_monitor.analysis.counts import hex_counts
from geo_monitor.settings import Settings
from geo_monitor.store import events, rollups
from geo_monitor.store.ingest import ingest_chunks

SOURCE = "test_rollups"
N_EVENTS = 5_000
SEED = 2727
PARIS = ZoneInfo("Europe/Paris")
# Real metro stations of the study area (IDFM), well inside their arrondissement.
GARE_DE_L_EST = (2.3578808, 48.8759911)
LAUMIERE = (2.3787169, 48.8849706)
GAMBETTA = (2.3969128, 48.8649781)


@pytest.fixture(scope="module")
def rollup_db(loaded_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session database with a 5,000-event sample ingested under this module's source."""
    ingest_sample(loaded_db, tmp_path_factory.mktemp("rollups"), N_EVENTS, seed=SEED, source=SOURCE)
    return loaded_db


@pytest.fixture
def aconn(rollup_db: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection: what a test breaks is visible to every other session."""
    connection = db.connect(rollup_db, autocommit=True)
    try:
        yield connection
    finally:
        try:  # leave a consistent rollup behind, whatever the test did
            rollups.refresh(connection)
        finally:
            connection.close()


@cache
def _fine_cell(lon: float, lat: float) -> str:
    return h3.latlng_to_cell(lat, lon, 11)


def expected_rollup(conn: psycopg.Connection, table: str = "rollup_monthly") -> dict[tuple[int, date, int, int], int]:
    """(resolution, Paris month or day, category, cell) -> n, from every stored event, in Python."""
    rows = conn.execute("SELECT ST_X(geom), ST_Y(geom), occurred_at, category_id FROM events").fetchall()
    counts: Counter = Counter()
    for lon, lat, occurred_at, category in rows:
        day = occurred_at.astimezone(PARIS).date()
        period = day.replace(day=1) if table == "rollup_monthly" else day
        fine = _fine_cell(lon, lat)
        for r in (7, 8, 9, 10, 11):
            counts[(r, period, category, h3.str_to_int(h3.cell_to_parent(fine, r)))] += 1
    return dict(counts)


def stored_rollup(conn: psycopg.Connection, table: str = "rollup_monthly") -> dict[tuple[int, date, int, int], int]:
    period = rollups.TABLES[table]
    rows = conn.execute(f"SELECT resolution, {period}, category_id, cell, n FROM {table}").fetchall()
    return {(r, m, c, cell): n for r, m, c, cell, n in rows}


def stored_rollups(conn: psycopg.Connection) -> dict[str, dict]:
    return {table: stored_rollup(conn, table) for table in rollups.TABLES}


def expected_counts(conn: psycopg.Connection, start: str, end: str, resolution: int,
                    kinds: list[str] | None = None) -> dict[int, int]:
    """Brute-force hexagon counts of a window (Paris days, end exclusive) from the stored points."""
    rows = conn.execute(
        "SELECT ST_X(e.geom), ST_Y(e.geom) FROM events e JOIN kinds k ON k.id = e.kind_id "
        "WHERE (e.occurred_at AT TIME ZONE 'Europe/Paris')::date >= %s "
        "AND (e.occurred_at AT TIME ZONE 'Europe/Paris')::date < %s "
        "AND (%s::text[] IS NULL OR k.name = ANY(%s))",
        (date.fromisoformat(start), date.fromisoformat(end), kinds, kinds),
    ).fetchall()
    counts: Counter = Counter()
    for lon, lat in rows:
        counts[h3.str_to_int(h3.cell_to_parent(_fine_cell(lon, lat), resolution))] += 1
    return dict(counts)


def as_dict(frame: pd.DataFrame) -> dict[int, int]:
    return {int(c): int(n) for c, n in zip(frame["cell"], frame["count"], strict=True)}


def state(conn: psycopg.Connection) -> tuple[int, int, int, int]:
    """(last batch in the rollup, its event count, newest batch, stored events)."""
    return conn.execute(
        "SELECT last_batch_id, events, (SELECT coalesce(max(id), 0) FROM ingest_batches), "
        "(SELECT count(*) FROM events) FROM rollup_state"
    ).fetchone()


def ingest_rows(conn: psycopg.Connection, settings: Settings, rows: list[dict], source: str) -> int:
    frame = pd.DataFrame(rows).astype(str)
    frame["_record"] = np.arange(2, 2 + len(frame))
    report = ingest_chunks(conn, [frame], name=f"{source}.csv", fmt="csv", source=source, settings=settings)
    assert report.accepted == len(rows), report.summary()
    return report.batch_id


# --- the incremental path --------------------------------------------------------------------


def test_ingest_keeps_the_rollup_equal_to_the_events(aconn: psycopg.Connection) -> None:
    last_batch, events, newest, stored = state(aconn)
    assert last_batch == newest and events == stored  # no rebuild needed after ingest
    assert rollups.is_fresh(aconn)
    for table in rollups.TABLES:
        assert stored_rollup(aconn, table) == expected_rollup(aconn, table)
        served = {r for (r,) in aconn.execute(f"SELECT DISTINCT resolution FROM {table}")}
        assert served == {7, 8, 9, 10, 11}  # every resolution: no count reads the events


def test_refresh_rebuilds_exactly_what_ingest_maintained(aconn: psycopg.Connection) -> None:
    incremental = stored_rollups(aconn)
    assert rollups.refresh(aconn) == state(aconn)[3]
    assert stored_rollups(aconn) == incremental
    last_batch, events, newest, stored = state(aconn)
    assert (last_batch, events) == (newest, stored)
    assert rollups.ensure_fresh(aconn) is False


def test_a_new_ingest_is_counted_at_once(aconn: psycopg.Connection, rollup_db: Settings) -> None:
    window = {"start": "2020-03-01", "end": "2020-05-01", "kinds": ["incident"]}  # whole months: rollup
    before = {r: as_dict(hex_counts(aconn, resolution=r, **window)) for r in (8, 10, 11)}
    rows = [  # times at the edges of Paris months; one falls outside the window
        {"occurred_at": "2020-02-29T23:30:00Z", "lon": GARE_DE_L_EST[0], "lat": GARE_DE_L_EST[1]},  # 1 March
        {"occurred_at": "2020-03-31T21:30:00Z", "lon": LAUMIERE[0], "lat": LAUMIERE[1]},  # 31 March 23:30
        {"occurred_at": "2020-03-31T22:30:00Z", "lon": LAUMIERE[0], "lat": LAUMIERE[1]},  # 1 April 00:30
        {"occurred_at": "2020-04-30T21:59:00Z", "lon": GAMBETTA[0], "lat": GAMBETTA[1]},  # 30 April 23:59
        {"occurred_at": "2020-04-30T22:00:00Z", "lon": GAMBETTA[0], "lat": GAMBETTA[1]},  # 1 May: outside
        {"occurred_at": "2020-02-29T22:59:00Z", "lon": GAMBETTA[0], "lat": GAMBETTA[1]},  # 29 Feb: outside
    ]
    for i, row in enumerate(rows):
        row.update(kind="incident", category="dealing", external_id=f"fresh-{i}")
    ingest_rows(aconn, rollup_db, rows, f"{SOURCE}-fresh")
    assert rollups.is_fresh(aconn)
    for r in (8, 10, 11):
        after = as_dict(hex_counts(aconn, resolution=r, **window))
        added = Counter(after)
        added.subtract(before[r])
        # the stored point is its fine cell's centre; coarser cells are that cell's parents
        cell = {place: h3.str_to_int(h3.cell_to_parent(_fine_cell(*place), r))
                for place in (GARE_DE_L_EST, LAUMIERE, GAMBETTA)}
        assert +added == Counter({cell[GARE_DE_L_EST]: 1, cell[LAUMIERE]: 2, cell[GAMBETTA]: 1})
        assert after == expected_counts(aconn, resolution=r, **window)
    for table in rollups.TABLES:
        assert stored_rollup(aconn, table) == expected_rollup(aconn, table)


# --- a stale rollup is rebuilt before it is served -------------------------------------------


def test_a_stale_rollup_is_rebuilt_before_it_is_served(aconn: psycopg.Connection) -> None:
    good = stored_rollups(aconn)
    aconn.execute("UPDATE rollup_state SET last_batch_id = 0")
    aconn.execute("DELETE FROM rollup_monthly WHERE month >= '2020-06-01' AND month < '2020-09-01'")
    aconn.execute("UPDATE rollup_monthly SET n = n + 1000 WHERE month = '2021-01-01'")
    aconn.execute("DELETE FROM rollup_daily WHERE day >= '2020-05-02' AND day < '2020-05-09'")
    assert not rollups.is_fresh(aconn)
    window = {"start": "2020-05-03", "end": "2021-02-01"}
    for r in (9, 7, 11):
        assert as_dict(hex_counts(aconn, resolution=r, **window)) == expected_counts(aconn, resolution=r, **window)
    assert rollups.is_fresh(aconn)
    assert stored_rollups(aconn) == good
    assert rollups.ensure_fresh(aconn) is False


def test_events_written_outside_ingest_are_seen(aconn: psycopg.Connection) -> None:
    """A restored dump or a hand-written batch: a batch the rollup has not included."""
    batch = aconn.execute(
        "INSERT INTO ingest_batches (file_name, format, actor, started_at, finished_at, received, accepted, "
        "duplicates, rejected) VALUES ('restore.sql', 'sql', 'test', now(), now(), 0, 0, 0, 0) RETURNING id"
    ).fetchone()[0]
    aconn.execute(
        """INSERT INTO events (kind_id, category_id, occurred_at, ends_at, geom, h3_r7, h3_r8, h3_r9, h3_r10,
                               h3_r11, arrondissement, quartier, source_id, external_hash, batch_id)
           SELECT e.kind_id, e.category_id, e.occurred_at, e.ends_at, e.geom, e.h3_r7, e.h3_r8, e.h3_r9,
                  e.h3_r10, e.h3_r11, e.arrondissement, e.quartier, e.source_id,
                  e.external_hash || '\\x01'::bytea, %s
           FROM events e JOIN sources s ON s.id = e.source_id
           WHERE s.name = %s AND e.occurred_at >= '2021-02-01' AND e.occurred_at < '2021-05-01'""",
        (batch, SOURCE),
    )
    assert not rollups.is_fresh(aconn)
    window = {"start": "2021-01-01", "end": "2021-07-01"}  # whole months only: all from the rollup
    got = as_dict(hex_counts(aconn, resolution=10, **window))
    assert got == expected_counts(aconn, resolution=10, **window)
    for table in rollups.TABLES:
        assert stored_rollup(aconn, table) == expected_rollup(aconn, table)
    aconn.execute("DELETE FROM events WHERE batch_id = %s", (batch,))
    assert rollups.refresh(aconn) == state(aconn)[3]  # deleting events requires a refresh


def test_edge_days_read_the_daily_rollup_and_whole_months_the_monthly(aconn: psycopg.Connection) -> None:
    aconn.execute("UPDATE rollup_monthly SET n = n + 1000")  # corrupt, but marked fresh
    assert rollups.is_fresh(aconn)
    window = {"start": "2020-06-03", "end": "2020-06-27"}  # no whole month: days only
    for r in (7, 9, 10, 11):
        assert as_dict(hex_counts(aconn, resolution=r, **window)) == expected_counts(aconn, resolution=r, **window)
    rollups.refresh(aconn)
    aconn.execute("UPDATE rollup_daily SET n = n + 1000")
    whole = {"start": "2019-01-01", "end": "2022-01-01"}  # whole months only
    for r in (8, 11):
        assert as_dict(hex_counts(aconn, resolution=r, **whole)) == expected_counts(aconn, resolution=r, **whole)


def test_a_failed_ingest_leaves_the_rollup_untouched(aconn: psycopg.Connection, rollup_db: Settings) -> None:
    before, before_state = stored_rollups(aconn), state(aconn)

    def chunks() -> Iterator[pd.DataFrame]:
        yield pd.DataFrame([{"kind": "incident", "category": "dealing", "occurred_at": "2020-03-10T10:00:00Z",
                             "lon": str(LAUMIERE[0]), "lat": str(LAUMIERE[1]), "external_id": "boom-1",
                             "_record": 2}]).astype({"lon": str, "lat": str})
        raise RuntimeError("the reader broke mid-file")

    with pytest.raises(RuntimeError, match="mid-file"):
        ingest_chunks(aconn, chunks(), name="boom.csv", fmt="csv", source=f"{SOURCE}-boom", settings=rollup_db)
    assert stored_rollups(aconn) == before
    assert state(aconn)[:2] == before_state[:2] and rollups.is_fresh(aconn)


def test_rollup_months_are_first_days_and_counts_positive(aconn: psycopg.Connection) -> None:
    assert aconn.execute("SELECT count(*) FROM rollup_monthly WHERE extract(day FROM month) <> 1 OR n <= 0"
                         ).fetchone()[0] == 0
    assert aconn.execute("SELECT count(*) FROM rollup_daily WHERE n <= 0").fetchone()[0] == 0


@pytest.mark.parametrize("share, path, bulk", [(1e9, "merged", False), (0.0, "rebuilt", False), (0.0, "rebuilt", True)])
def test_a_batch_merges_or_rebuilds_and_the_rollups_equal_the_events(aconn: psycopg.Connection, rollup_db: Settings,
                                                                     monkeypatch: pytest.MonkeyPatch, share: float,
                                                                     path: str, bulk: bool) -> None:
    """A batch large against the store rebuilds the rollups instead of merging (and, when its size
    is known beforehand, is a bulk load): the same rows every way."""
    from geo_monitor.store import ingest

    monkeypatch.setattr(ingest, "REBUILD_SHARE", share)
    frame = pd.DataFrame([{"occurred_at": f"2020-06-{day:02d}T10:00:00Z", "lon": LAUMIERE[0], "lat": LAUMIERE[1],
                           "kind": "incident", "category": "dealing", "external_id": f"{path}-{day}"}
                          for day in range(1, 29)]).astype(str)
    frame["_record"] = np.arange(2, 2 + len(frame))
    report = ingest_chunks(aconn, [frame], name=f"{path}.csv", fmt="csv", source=f"{SOURCE}-{path}-{bulk}",
                           settings=rollup_db, expected_rows=len(frame) if bulk else None)
    assert report.accepted == 28 and report.rollups == path and report.bulk == bulk
    assert ("rebuilt" in "\n".join(report.summary())) == (path == "rebuilt")
    last_batch, events, newest, stored = state(aconn)
    assert (last_batch, events) == (newest, stored)
    for table in rollups.TABLES:
        assert stored_rollup(aconn, table) == expected_rollup(aconn, table)


GROUPED = """SELECT (g %% 3)::int2 AS k, (g %% 5)::int4 AS day, string_agg(int8send(g::int8 * 1000003), ''),
                    string_agg(int4send((g * 2)::int4), '') FROM generate_series(1, %s) AS g GROUP BY 1, 2"""


@pytest.mark.parametrize("block", [events._COPY_BLOCK, 7])  # whole, and rows split across reads
def test_grouped_copy_gives_every_element_with_its_keys(conn: psycopg.Connection, block: int,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(events, "_COPY_BLOCK", block)
    k, day, big, twice = events.copy_groups(conn, GROUPED % 10_000, keys=(">i2", ">i4"), packed=(">i8", ">i4"))
    assert [a.dtype for a in (k, day, big, twice)] == [np.int16, np.int32, np.int64, np.int32]
    g = big // 1000003
    assert sorted(g.tolist()) == list(range(1, 10_001))
    assert (k == g % 3).all() and (day == g % 5).all() and (twice == g * 2).all()


def test_grouped_copy_of_nothing_nulls_and_unequal_groups(conn: psycopg.Connection) -> None:
    empty = events.copy_groups(conn, GROUPED % 0, keys=(">i2", ">i4"), packed=(">i8", ">i4"))
    assert [len(a) for a in empty] == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="NULL key"):
        events.copy_groups(conn, "SELECT NULL::int4, int8send(1)", keys=(">i4",), packed=(">i8",))
    with pytest.raises(ValueError, match="a NULL, a partial value"):
        events.copy_groups(conn, "SELECT 1::int4, NULL::bytea", keys=(">i4",), packed=(">i8",))
    with pytest.raises(ValueError, match="unequal lengths in one row"):
        events.copy_groups(conn, "SELECT 1::int4, int8send(1) || int8send(2), int8send(3)", keys=(">i4",),
                           packed=(">i8", ">i8"))
