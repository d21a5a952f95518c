"""Hexagon rollups: event counts per (resolution, Paris day or month, category, cell).

Definition (the batch path must produce the same rows, row for row). For every stored event
and every resolution r in 7, 8, 9, 10, 11:

- ``rollup_daily``: ``resolution`` = r, ``day`` = the Europe/Paris calendar day of
  ``occurred_at`` (``(occurred_at AT TIME ZONE 'Europe/Paris')::date``), ``category_id``,
  ``cell`` = the event's ``h3_r{r}`` column (``h3_parent(h3_r11, r)``);
- ``rollup_monthly``: the same with ``month`` = the first day of that Paris calendar month;

``n`` is the number of events sharing the four keys. Only rows with n >= 1 exist. Every event
counts once per resolution whatever its kind, source or ``ends_at``; nothing else is filtered.

Ingest adds each batch's counts in its own transaction (``stage`` per chunk, ``add_batch`` at
the end), so the rollups never lag the events; ``ensure_fresh`` rebuilds them before a query
reads them if a batch is missing (events written some other way, a restored dump). Anything
that deletes events must call ``refresh``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from geo_monitor.calendar import LOCAL_TZ
from geo_monitor.store.events import SIGNATURE, TRAILER
from geo_monitor.store.validate import EPOCH_2000_US, STORED_RESOLUTIONS, Prepared

ROLLUP_RESOLUTIONS = STORED_RESOLUTIONS  # 7..11: no count ever needs the events
TABLES = {"rollup_daily": "day", "rollup_monthly": "month"}  # table -> its period column

_DELTA_ROW = np.dtype([("nfields", ">i2"), ("l_res", ">i4"), ("res", ">i2"), ("l_period", ">i4"), ("period", ">i4"),
                       ("l_cat", ">i4"), ("cat", ">i2"), ("l_cell", ">i4"), ("cell", ">i8"), ("l_n", ">i4"), ("n", ">i4")])
_DAY_2000 = np.datetime64("2000-01-01", "D")  # PostgreSQL dates count days from here


def batch_counts(prepared: Prepared) -> dict[str, pd.DataFrame]:
    """Return the rollup rows (resolution, period, category_id, cell, n) of prepared events, per table."""
    return counts_of(prepared.occurred_us, prepared.category_id, prepared.cells)


def counts_of(occurred_us: np.ndarray, category_id: np.ndarray, cells: np.ndarray) -> dict[str, pd.DataFrame]:
    """Return the rollup rows of events given as columns, per table (the one definition above).

    ``occurred_us`` counts microseconds from 2000-01-01 UTC (as PostgreSQL stores them);
    ``cells`` holds one column per resolution of ``STORED_RESOLUTIONS``.
    """
    instants = pd.to_datetime(occurred_us + EPOCH_2000_US, unit="us", utc=True)
    days = instants.tz_convert(LOCAL_TZ).tz_localize(None).values.astype("datetime64[D]")
    cells = {f"c{r}": cells[:, i] for i, r in enumerate(STORED_RESOLUTIONS)}
    # Group once by the fine cell (its parents follow), then sum the few rows per resolution.
    fine = (pd.DataFrame({"day": days, "category_id": category_id, **cells})
            .groupby(["day", "category_id", *cells], sort=False).size().rename("n").reset_index())
    fine["month"] = fine["day"].to_numpy().astype("datetime64[M]").astype("datetime64[D]")
    out = {}
    for table, period in TABLES.items():
        frames = []
        for r in ROLLUP_RESOLUTIONS:
            counts = (fine.groupby([period, "category_id", f"c{r}"], sort=False)["n"].sum().reset_index()
                      .rename(columns={period: "period", f"c{r}": "cell"}))
            counts.insert(0, "resolution", r)
            frames.append(counts)
        out[table] = pd.concat(frames, ignore_index=True)
    return out


def _delta_table(table: str) -> str:
    return f"{table}_delta"


def _create_deltas(conn: psycopg.Connection) -> None:
    for table in TABLES:
        conn.execute(f"CREATE TEMP TABLE IF NOT EXISTS {_delta_table(table)} (LIKE {table}) ON COMMIT DELETE ROWS")


def stage(conn: psycopg.Connection, counts: dict[str, pd.DataFrame]) -> None:
    """Send one chunk's rollup counts to the server; ``add_batch`` sums them at the end.

    Staging per chunk keeps the client's memory flat whatever the file's size; the rows go
    as binary COPY built with numpy.
    """
    _create_deltas(conn)
    for table, frame in counts.items():
        copy_counts(conn, frame, _delta_table(table))


def copy_counts(conn: psycopg.Connection, frame: pd.DataFrame, table: str) -> None:
    """COPY rollup rows (resolution, period, category_id, cell, n) into ``table``: binary, built with numpy."""
    if not len(frame):
        return
    rows = np.zeros(len(frame), dtype=_DELTA_ROW)
    rows["nfields"] = 5
    rows["l_res"], rows["l_period"], rows["l_cat"], rows["l_cell"], rows["l_n"] = 2, 4, 2, 8, 4
    rows["res"] = frame["resolution"].to_numpy()
    rows["period"] = (frame["period"].to_numpy().astype("datetime64[D]") - _DAY_2000).astype(np.int32)
    rows["cat"] = frame["category_id"].to_numpy()
    rows["cell"] = frame["cell"].to_numpy()
    rows["n"] = frame["n"].to_numpy()
    statement = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(sql.Identifier(table))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.write(SIGNATURE + rows.tobytes() + TRAILER)


def add_batch(conn: psycopg.Connection, batch_id: int) -> None:
    """Add the staged counts of a batch to the rollups and mark the batch included.

    Runs inside the ingest transaction, so the rollups never lag the events. Rows go in key
    order, so the primary keys grow page by page instead of at random places.
    """
    _create_deltas(conn)
    delta = _delta_table("rollup_monthly")
    total = conn.execute(f"SELECT coalesce(sum(n), 0) FROM {delta} WHERE resolution = 11").fetchone()[0]
    for table, period in TABLES.items():
        keys = f"resolution, category_id, {period}, cell"  # the primary key's order
        conn.execute(
            f"""INSERT INTO {table} ({keys}, n)
                SELECT {keys}, sum(n) FROM {_delta_table(table)} GROUP BY {keys} ORDER BY {keys}
                ON CONFLICT ({keys}) DO UPDATE SET n = {table}.n + EXCLUDED.n"""
        )
        conn.execute(f"TRUNCATE {_delta_table(table)}")
    conn.execute(
        "UPDATE rollup_state SET last_batch_id = greatest(last_batch_id, %s), events = events + %s, "
        "refreshed_at = now()",
        (batch_id, int(total)),
    )


def refresh(conn: psycopg.Connection) -> int:
    """Rebuild the rollups from the events; return the number of events counted.

    One pass over the events groups them by (day, category, cell at 11 with its parents):
    those rows are the daily rows at resolution 11 as they stand. Each coarser level is
    grouped from the level below it (fewer rows each time), and each month from its level's
    days. The primary keys are dropped for the load and built once at the end: a sorted
    index build costs a fraction of a million index insertions.
    """
    with conn.transaction():
        conn.execute("LOCK TABLE rollup_daily, rollup_monthly IN EXCLUSIVE MODE")
        conn.execute("SET LOCAL work_mem = '256MB'")
        conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
        conn.execute("TRUNCATE rollup_daily, rollup_monthly")
        for table in TABLES:
            conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
        finest = max(ROLLUP_RESOLUTIONS)
        cells = ", ".join(f"h3_r{r}" for r in sorted(ROLLUP_RESOLUTIONS))
        conn.execute(
            f"""CREATE TEMP TABLE rollup_level ON COMMIT DROP AS
                SELECT (occurred_at AT TIME ZONE '{LOCAL_TZ}')::date AS day, category_id, {cells}, count(*) AS n
                FROM events GROUP BY 1, 2, {cells}"""
        )
        total = conn.execute("SELECT coalesce(sum(n), 0) FROM rollup_level").fetchone()[0]
        for r in sorted(ROLLUP_RESOLUTIONS, reverse=True):
            if r < finest:  # this level's rows: the level below, grouped by its parents
                parents = ", ".join(f"h3_r{p}" for p in sorted(ROLLUP_RESOLUTIONS) if p <= r)
                conn.execute(f"""CREATE TEMP TABLE rollup_next ON COMMIT DROP AS
                                 SELECT day, category_id, {parents}, sum(n)::bigint AS n FROM rollup_level
                                 GROUP BY day, category_id, {parents}""")
                conn.execute("DROP TABLE rollup_level")
                conn.execute("ALTER TABLE rollup_next RENAME TO rollup_level")
            conn.execute(f"INSERT INTO rollup_daily (resolution, day, category_id, cell, n) "
                         f"SELECT {r}, day, category_id, h3_r{r}, n FROM rollup_level")
            conn.execute(f"""INSERT INTO rollup_monthly (resolution, month, category_id, cell, n)
                             SELECT {r}, day - extract(day FROM day)::int + 1, category_id, h3_r{r}, sum(n)
                             FROM rollup_level GROUP BY 2, 3, 4""")
        conn.execute("DROP TABLE rollup_level")
        for table, period in TABLES.items():
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey "
                         f"PRIMARY KEY (resolution, category_id, {period}, cell) INCLUDE (n)")  # as migration 011
        conn.execute("ANALYZE rollup_daily, rollup_monthly")  # new tables: the planner needs their statistics
        conn.execute(
            "UPDATE rollup_state SET last_batch_id = (SELECT coalesce(max(id), 0) FROM ingest_batches), "
            "events = %s, refreshed_at = now()",
            (total,),
        )
    return int(total)


def replace(conn: psycopg.Connection, parts: Iterable[dict[str, pd.DataFrame]], *, last_batch_id: int,
            events: int) -> None:
    """Replace the rollups with rows computed elsewhere (the batch path), in one transaction.

    ``parts`` yields rows per table (e.g. one month at a time, so the client holds one month);
    ``last_batch_id`` and ``events`` say what they include: a batch ingested meanwhile leaves
    the rollups stale, and ``ensure_fresh`` rebuilds them before they are served.
    """
    with conn.transaction():
        conn.execute("LOCK TABLE rollup_daily, rollup_monthly IN EXCLUSIVE MODE")
        conn.execute("TRUNCATE rollup_daily, rollup_monthly")
        for part in parts:
            for table, frame in part.items():
                copy_counts(conn, frame, table)
        conn.execute("UPDATE rollup_state SET last_batch_id = %s, events = %s, refreshed_at = now()",
                     (last_batch_id, events))


def is_fresh(conn: psycopg.Connection) -> bool:
    """Whether every ingest batch is included in the rollups."""
    return conn.execute(
        "SELECT (SELECT last_batch_id FROM rollup_state) >= (SELECT coalesce(max(id), 0) FROM ingest_batches)"
    ).fetchone()[0]


def ensure_fresh(conn: psycopg.Connection) -> bool:
    """Rebuild the rollups if they are stale; return True when they had to be rebuilt."""
    if is_fresh(conn):
        return False
    refresh(conn)
    return True
