"""Action updates: append-only (the database refuses UPDATE and DELETE); a correction is a new row."""

from __future__ import annotations

import hashlib
import json
from datetime import date

import psycopg
from psycopg.types.json import Jsonb

from geo_monitor.errors import InvalidArgumentError, NotFoundError
from geo_monitor.plan.objectives import STATUSES

UPDATE_COLUMNS = ("id", "action_id", "on_date", "status", "committed", "spent", "payer", "indicator_values",
                  "note", "author", "recorded_at")


def fingerprint(record: dict) -> bytes:
    """Return the hash identifying an update's content (the same update sent twice is stored once)."""
    keys = ("action_id", "on_date", "status", "committed", "spent", "payer", "indicator_values", "note", "author")
    return hashlib.sha256(json.dumps([str(record.get(k)) if k != "indicator_values" else record.get(k) or {}
                                      for k in keys], sort_keys=True).encode()).digest()


def add_update(conn: psycopg.Connection, record: dict) -> bool:
    """Append one update; return False when the very same update is already recorded."""
    if record["status"] not in STATUSES:
        raise InvalidArgumentError(f"unknown status {record['status']!r} ({', '.join(STATUSES)})", "status")
    if conn.execute("SELECT 1 FROM plan_actions WHERE id = %s", (record["action_id"],)).fetchone() is None:
        raise NotFoundError(f"no action {record['action_id']!r} in the plan")
    row = conn.execute(
        "INSERT INTO plan_updates (action_id, on_date, status, committed, spent, payer, indicator_values, note, "
        "author, fingerprint) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "ON CONFLICT (fingerprint) DO NOTHING RETURNING id",
        (record["action_id"], record["on_date"], record["status"], record.get("committed"), record.get("spent"),
         record.get("payer"), Jsonb(record.get("indicator_values") or {}), record.get("note"), record["author"],
         fingerprint(record))).fetchone()
    return row is not None


def list_updates(conn: psycopg.Connection, *, action_id: str | None = None, start: date | None = None,
                 end: date | None = None) -> list[dict]:
    """Return the updates (oldest first), of one action or all, dated in [start, end)."""
    cur = conn.execute(
        f"SELECT {', '.join(UPDATE_COLUMNS)} FROM plan_updates WHERE (%(a)s::text IS NULL OR action_id = %(a)s) "
        "AND (%(s)s::date IS NULL OR on_date >= %(s)s) AND (%(e)s::date IS NULL OR on_date < %(e)s) "
        "ORDER BY on_date, id", {"a": action_id, "s": start, "e": end})
    return [dict(zip(UPDATE_COLUMNS, row, strict=True)) for row in cur.fetchall()]


def spent_by_partner(conn: psycopg.Connection, as_of: date) -> dict[str, float]:
    """Return what each paying partner had spent by ``as_of`` (exclusive), from each action's latest figure.

    An update's ``spent`` is the amount spent on the action by its payer to date, so the
    latest one of each (action, payer) counts.
    """
    return {p: float(v) for p, v in conn.execute(
        "SELECT payer, sum(spent) FROM (SELECT DISTINCT ON (action_id, payer) payer, spent FROM plan_updates "
        "WHERE spent IS NOT NULL AND payer IS NOT NULL AND on_date < %s ORDER BY action_id, payer, on_date DESC, id DESC) s "
        "GROUP BY payer", (as_of,)).fetchall()}
