"""Bulk loads: a batch large against the store goes in without the events' secondary indexes.

Inserting into the unique (source, external hash) index costs a random page per event, and
that page is less and less often in memory as the store grows: at 10M events, 500,000 rows
took 9-12 s to insert with the indexes in place and 1.5 s without, while building both
indexes over all 10M rows took 19 s. So a batch that adds more than ``ingest.REBUILD_SHARE``
of the stored events drops those indexes, writes its rows, then removes the duplicates the
index would have refused (in SQL, only when the unique index says there are some) and builds
the indexes again, in the batch's transaction: a failure leaves the store as it was.

The load holds the events and the rollups for its whole transaction (the rollups are rebuilt
at its end anyway): readers wait for it, as they wait for ``geo-monitor aggregate``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

from geo_monitor import db
from geo_monitor.errors import GeoMonitorError

LOCKED = ("events", "rollup_daily", "rollup_monthly")
_LOCK_TRY = "200ms"  # below deadlock_timeout (1 s): a reader is never the one a deadlock aborts
_LOCK_PATIENCE_S = 120.0


@dataclass(frozen=True)
class _Index:
    """One secondary index of events, as its definition reads, to build it again."""

    name: str
    constraint: str | None  # the constraint it backs (UNIQUE), if any
    definition: str  # CREATE INDEX ... or the constraint's definition


def begin(conn: psycopg.Connection) -> list[_Index]:
    """Lock the events and rollups, drop the events' secondary indexes, return how to rebuild them."""
    _lock(conn)
    rows = conn.execute(
        """SELECT c.relname, con.conname, coalesce(pg_get_constraintdef(con.oid), pg_get_indexdef(i.indexrelid))
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
           WHERE i.indrelid = 'events'::regclass AND NOT i.indisprimary ORDER BY c.relname"""
    ).fetchall()
    indexes = [_Index(*row) for row in rows]
    for index in indexes:
        if index.constraint:
            conn.execute(f'ALTER TABLE events DROP CONSTRAINT "{index.constraint}"')
        else:
            conn.execute(f'DROP INDEX "{index.name}"')
    return indexes


def finish(conn: psycopg.Connection, indexes: list[_Index], batch_id: int) -> tuple[int, int]:
    """Drop the batch's duplicate rows, build the indexes again; return (in file, already stored) dropped.

    The unique constraints are tried first: when they hold (the everyday case) the check costs
    nothing beyond building them. A duplicate keeps the row stored by an earlier batch, or
    else the batch's first row, exactly as the probes of a small batch decide.
    """
    unique = [index for index in indexes if index.constraint]
    in_file = in_store = 0
    with db.local_settings(conn, {"maintenance_work_mem": "512MB"}):
        try:
            with conn.transaction():
                _build(conn, unique)
        except psycopg.errors.UniqueViolation:
            in_file, in_store = _drop_duplicates(conn, batch_id)
            _build(conn, unique)
        _build(conn, [index for index in indexes if not index.constraint])
    return in_file, in_store


def _build(conn: psycopg.Connection, indexes: list[_Index]) -> None:
    for index in indexes:
        if index.constraint:
            conn.execute(f'ALTER TABLE events ADD CONSTRAINT "{index.constraint}" {index.definition}')
        else:
            conn.execute(index.definition)


def _drop_duplicates(conn: psycopg.Connection, batch_id: int) -> tuple[int, int]:
    """Delete every row of the batch whose (source, external hash) another kept row has."""
    with db.local_settings(conn, {"work_mem": "256MB"}):
        rows = conn.execute(
            """WITH repeated AS (
                   SELECT source_id, external_hash FROM events GROUP BY source_id, external_hash HAVING count(*) > 1
               ), ranked AS (
                   SELECT e.id, bool_or(e.batch_id <> %(batch)s) OVER same AS stored_before,
                          row_number() OVER (same ORDER BY e.batch_id = %(batch)s, e.id) AS rank
                   FROM events e JOIN repeated USING (source_id, external_hash)
                   WINDOW same AS (PARTITION BY e.source_id, e.external_hash)
               )
               DELETE FROM events USING ranked WHERE events.id = ranked.id AND ranked.rank > 1
               RETURNING ranked.stored_before""",
            {"batch": batch_id},
        ).fetchall()
    in_store = sum(1 for (stored_before,) in rows if stored_before)
    return len(rows) - in_store, in_store


def _lock(conn: psycopg.Connection) -> None:
    """Take the tables in short tries, so a reader that holds one and wants another is never deadlocked."""
    deadline = time.monotonic() + _LOCK_PATIENCE_S
    while True:
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL lock_timeout = '{_LOCK_TRY}'")
                conn.execute(f"LOCK TABLE {', '.join(LOCKED)} IN ACCESS EXCLUSIVE MODE")
            conn.execute("SET LOCAL lock_timeout TO DEFAULT")
            return
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected) as exc:  # a shorter deadlock_timeout
            if time.monotonic() > deadline:
                raise GeoMonitorError(
                    f"the store stayed busy for {_LOCK_PATIENCE_S:.0f} s: a bulk load needs the events to "
                    "itself for a moment; try again when fewer readers are connected"
                ) from exc
            time.sleep(0.1)
