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

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from geo_monitor import db
from geo_monitor.calendar import LOCAL_TZ
from geo_monitor.hexagons import cells_to_parents
from geo_monitor.store import events
from geo_monitor.store.events import SIGNATURE, TRAILER
from geo_monitor.store.validate import EPOCH_2000_US, STORED_RESOLUTIONS, Prepared

ROLLUP_RESOLUTIONS = STORED_RESOLUTIONS  # 7..11: no count ever needs the events
TABLES = {"rollup_daily": "day", "rollup_monthly": "month"}  # table -> its period column

_DELTA_ROW = np.dtype([("nfields", ">i2"), ("l_res", ">i4"), ("res", ">i2"), ("l_period", ">i4"), ("period", ">i4"),
                       ("l_cat", ">i4"), ("cat", ">i2"), ("l_cell", ">i4"), ("cell", ">i8"), ("l_n", ">i4"), ("n", ">i4")])
_DAY_2000 = np.datetime64("2000-01-01", "D")  # PostgreSQL dates count days from here
_COPY_ROWS = 1 << 20


def batch_counts(prepared: Prepared) -> dict[str, pd.DataFrame]:
    """Return the rollup rows (resolution, period, category_id, cell, n) of prepared events, per table."""
    return counts_of(prepared.occurred_us, prepared.category_id, prepared.cells[:, -1])


# A row's key packed in one int64, in the primary key's order within a resolution: category
# (bits 48-62), Paris day counted from 2000-01-01 plus 2**23 (bits 24-47), the cell's rank among
# the level's cells (bits 0-23).
_CELL_BITS = 24
_CELL_MASK = np.int64((1 << _CELL_BITS) - 1)
_DAY_SHIFT, _DAY_OFFSET, _DAY_MASK = _CELL_BITS, 1 << 23, np.int64((1 << 24) - 1)


def _sum_by(keys: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the distinct keys, sorted, and the sum of ``n`` over each."""
    unique, inverse = np.unique(keys, return_inverse=True)
    return unique, np.bincount(inverse, weights=n, minlength=len(unique)).astype(np.int64)  # exact below 2**53


def counts_of(occurred_us: np.ndarray, category_id: np.ndarray, fine_cells: np.ndarray) -> dict[str, pd.DataFrame]:
    """Return the rollup rows of events given as columns, per table (the one definition above).

    ``occurred_us`` counts microseconds from 2000-01-01 UTC (as PostgreSQL stores them);
    ``fine_cells`` are the events' resolution-11 cells, whose parents are the coarser cells.
    The rows come by resolution, each resolution's sorted by (category, period, cell): for
    one category, that is the primary keys' order (category, resolution, period, cell).
    """
    out: dict[str, list[pd.DataFrame]] = {table: [] for table in TABLES}
    for table, frame in level_counts(paris_days(occurred_us), category_id, fine_cells):
        out[table].append(frame)
    return {table: pd.concat(frames, ignore_index=True) for table, frames in out.items()}


def paris_days(occurred_us: np.ndarray) -> np.ndarray:
    """Return the Europe/Paris calendar day of each instant, as days from 2000-01-01 (int32)."""
    instants = pd.to_datetime(np.asarray(occurred_us, dtype=np.int64) + EPOCH_2000_US, unit="us", utc=True)
    return (instants.tz_convert(LOCAL_TZ).tz_localize(None).values.astype("datetime64[D]")
            - _DAY_2000).astype(np.int32)


def level_counts(days: np.ndarray, category_id: np.ndarray,
                 fine_cells: np.ndarray) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield ``counts_of``'s rows one (table, resolution) at a time, so a caller can send each on.

    ``days`` are ``paris_days`` of the events. Each key is packed in one integer, so every
    grouping is a numpy sort. The events' columns are dropped once packed: a caller that
    passes them without keeping a reference gets that memory back.
    """
    codes, distinct = pd.factorize(np.asarray(fine_cells, dtype=np.int64))  # hashing: no sort of every event
    order = np.argsort(distinct)
    fine, rank_of_code = distinct[order], np.empty(len(order), dtype=np.int64)
    rank_of_code[order] = np.arange(len(order))
    rank = rank_of_code[codes]
    del codes
    if len(fine) > _CELL_MASK:
        raise ValueError(f"{len(fine):,} distinct cells in one count; at most {int(_CELL_MASK):,}")
    packed = np.asarray(category_id, dtype=np.int64) << 48
    packed |= (np.asarray(days, dtype=np.int64) + _DAY_OFFSET) << _DAY_SHIFT
    packed |= rank
    del days, category_id, fine_cells, rank
    fine_keys, fine_n = np.unique(packed, return_counts=True)  # the daily rows at the finest resolution
    del packed
    for r in sorted(ROLLUP_RESOLUTIONS):
        if r == max(ROLLUP_RESOLUTIONS):
            cells, daily = fine, (fine_keys, fine_n)
        else:
            cells, parent_rank = np.unique(cells_to_parents(fine, r), return_inverse=True)
            daily = _sum_by((fine_keys & ~_CELL_MASK) | parent_rank.reshape(-1)[fine_keys & _CELL_MASK], fine_n)
        day = (daily[0] >> _DAY_SHIFT & _DAY_MASK) - _DAY_OFFSET
        month = ((_DAY_2000 + day).astype("datetime64[M]").astype("datetime64[D]") - _DAY_2000).astype(np.int64)
        monthly = _sum_by((daily[0] & ~(_DAY_MASK << _DAY_SHIFT)) | ((month + _DAY_OFFSET) << _DAY_SHIFT), daily[1])
        del day, month
        for table, (packed_keys, sums) in (("rollup_daily", daily), ("rollup_monthly", monthly)):
            yield table, pd.DataFrame({
                "resolution": np.full(len(packed_keys), r, dtype=np.int16),
                "period": _DAY_2000 + ((packed_keys >> _DAY_SHIFT & _DAY_MASK) - _DAY_OFFSET),
                "category_id": (packed_keys >> 48).astype(np.int16), "cell": cells[packed_keys & _CELL_MASK],
                "n": sums})


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
    statement = sql.SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(sql.Identifier(table))
    with conn.cursor() as cur, cur.copy(statement) as copy:
        copy.write(SIGNATURE)
        for first in range(0, len(frame), _COPY_ROWS):  # a slice at a time: the client never holds it all twice
            part = frame.iloc[first:first + _COPY_ROWS]
            rows = np.zeros(len(part), dtype=_DELTA_ROW)
            rows["nfields"] = 5
            rows["l_res"], rows["l_period"], rows["l_cat"], rows["l_cell"], rows["l_n"] = 2, 4, 2, 8, 4
            rows["res"] = part["resolution"].to_numpy()
            rows["period"] = (part["period"].to_numpy().astype("datetime64[D]") - _DAY_2000).astype(np.int32)
            rows["cat"] = part["category_id"].to_numpy()
            rows["cell"] = part["cell"].to_numpy()
            rows["n"] = part["n"].to_numpy()
            copy.write(rows.tobytes())
        copy.write(TRAILER)


def add_batch(conn: psycopg.Connection, batch_id: int) -> None:
    """Add the staged counts of a batch to the rollups and mark the batch included.

    Runs inside the ingest transaction, so the rollups never lag the events. Rows go in key
    order, so the primary keys grow page by page instead of at random places.
    """
    _create_deltas(conn)
    delta = _delta_table("rollup_monthly")
    total = conn.execute(f"SELECT coalesce(sum(n), 0) FROM {delta} WHERE resolution = 11").fetchone()[0]
    for table, period in TABLES.items():
        keys = f"category_id, resolution, {period}, cell"  # the primary key's order
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


@contextmanager
def _rewriting(conn: psycopg.Connection) -> Iterator[None]:
    """Empty both rollups for a rewrite within the caller's transaction, then build their keys.

    The primary keys are dropped for the load and built once at the end: a sorted index build
    costs a fraction of millions of index insertions (the batch path's 19 M rows at 10M events
    went in at 70,000 rows/s with the keys in place).
    """
    conn.execute("LOCK TABLE rollup_daily, rollup_monthly IN EXCLUSIVE MODE")
    conn.execute("TRUNCATE rollup_daily, rollup_monthly")
    for table in TABLES:
        conn.execute(f"ALTER TABLE {table} DROP CONSTRAINT {table}_pkey")
    yield
    with db.local_settings(conn, {"maintenance_work_mem": "512MB"}):
        for table, period in TABLES.items():
            conn.execute(f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey "
                         f"PRIMARY KEY (category_id, resolution, {period}, cell) INCLUDE (n)")  # as migration 014
    conn.execute("ANALYZE rollup_daily, rollup_monthly")  # new tables: the planner needs their statistics


def refresh(conn: psycopg.Connection) -> int:
    """Rebuild the rollups from the events; return the number of events counted.

    Category by category, the server sends each Paris day's resolution-11 cells
    (``events.copy_groups``: one row per day) and ``level_counts``, the definition ingest
    and the batch path use, counts them; the rows go back with binary COPY, in the keys' order,
    so building the keys at the end sorts rows already sorted. At 10M events
    PostgreSQL's own GROUP BYs took 70 s on 2 cores; the client holds one category's events at
    a time (about 90 bytes each while they are counted). The batch path
    (``geo_monitor.batch.rollups``) counts month by month on a cluster.
    """
    with conn.transaction(), _rewriting(conn):
        # One category at a time (every key starts with it), read from its index: the client
        # holds one category's events, not the store's.
        total = 0
        read_by_category = {"enable_seqscan": "off", "enable_bitmapscan": "off", "jit": "off", "work_mem": "256MB"}
        with db.local_settings(conn, read_by_category):
            for (category,) in conn.execute("SELECT id FROM categories ORDER BY id").fetchall():
                days, cells = events.copy_groups(
                    conn, f"SELECT (occurred_at AT TIME ZONE '{LOCAL_TZ}')::date, string_agg(int8send(h3_r11), '') "
                    f"FROM events WHERE category_id = {int(category)} GROUP BY 1", keys=(">i4",), packed=(">i8",))
                total += len(cells)
                levels = level_counts(days, np.full(len(cells), category, dtype=np.int16), cells)
                del days, cells  # level_counts frees the events' columns once it has packed them
                for table, frame in levels:
                    copy_counts(conn, frame, table)
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
    with conn.transaction(), _rewriting(conn):
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
