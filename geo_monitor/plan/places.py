"""Accommodation and rest capacity: places by type, operator, arrondissement and dates (never an address)."""

from __future__ import annotations

from datetime import date

import psycopg

PLACE_COLUMNS = ("id", "type", "operator", "places", "arrondissement", "opens_on", "closes_on", "action_id")


def save_place(conn: psycopg.Connection, record: dict) -> str:
    """Insert or change one place record; return added/changed/unchanged."""
    row = conn.execute(f"SELECT {', '.join(PLACE_COLUMNS)} FROM plan_places WHERE id = %s", (record["id"],)).fetchone()
    if row is not None and dict(zip(PLACE_COLUMNS, row, strict=True)) == {k: record[k] for k in PLACE_COLUMNS}:
        return "unchanged"
    conn.execute(
        f"INSERT INTO plan_places ({', '.join(PLACE_COLUMNS)}) VALUES ({', '.join(['%s'] * len(PLACE_COLUMNS))}) "
        "ON CONFLICT (id) DO UPDATE SET " + ", ".join(f"{c} = EXCLUDED.{c}" for c in PLACE_COLUMNS[1:]),
        [record[k] for k in PLACE_COLUMNS])
    return "added" if row is None else "changed"


def list_places(conn: psycopg.Connection) -> list[dict]:
    """Return every place record (by arrondissement; no address is ever stored)."""
    cur = conn.execute(f"SELECT {', '.join(PLACE_COLUMNS)} FROM plan_places ORDER BY type, opens_on, id")
    return [dict(zip(PLACE_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def open_places(conn: psycopg.Connection, day: date) -> dict[str, int]:
    """Return the places open on ``day`` per type (opened on or before, not closed by then)."""
    return dict(conn.execute(
        "SELECT type, sum(places)::int FROM plan_places WHERE opens_on <= %(d)s "
        "AND (closes_on IS NULL OR closes_on > %(d)s) GROUP BY type", {"d": day}).fetchall())
