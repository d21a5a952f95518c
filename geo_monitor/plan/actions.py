"""The plan's actions: write one (insert or change, unchanged when equal) and read them with their status."""

from __future__ import annotations

from datetime import date

import psycopg

ACTION_COLUMNS = ("id", "objective_id", "title", "lead_partner", "starts_on", "ends_on", "source")


def _stored(conn: psycopg.Connection, action_id: str) -> dict | None:
    row = conn.execute(f"SELECT {', '.join(ACTION_COLUMNS)} FROM plan_actions WHERE id = %s", (action_id,)).fetchone()
    if row is None:
        return None
    record = dict(zip(ACTION_COLUMNS, row, strict=True))
    record["partners"] = [r[0] for r in conn.execute(
        "SELECT partner FROM plan_action_partners WHERE action_id = %s ORDER BY partner", (action_id,))]
    record["budget"] = sorted(({"partner": p, "year": y, "amount": a} for p, y, a in conn.execute(
        "SELECT partner, year, amount FROM plan_budgets WHERE action_id = %s", (action_id,))),
        key=lambda b: (b["partner"], b["year"]))
    record["indicators"] = sorted(({"code": c, "label": lab, "unit": u, "target": t, "direction": d}
                                   for c, lab, u, t, d in conn.execute(
        "SELECT code, label, unit, target, direction FROM plan_indicators WHERE action_id = %s", (action_id,))),
        key=lambda i: i["code"])
    return record


def _same(stored: dict, record: dict) -> bool:
    norm = dict(record, budget=sorted(record["budget"], key=lambda b: (b["partner"], b["year"])),
                indicators=sorted(record["indicators"], key=lambda i: i["code"]))
    return all(stored[k] == norm[k] for k in (*ACTION_COLUMNS, "partners", "budget", "indicators"))


def save_action(conn: psycopg.Connection, record: dict) -> str:
    """Insert or change one action with its partners, budget and indicators; return added/changed/unchanged.

    An action is the plan's definition, not its history: changing it replaces the old
    definition (what happened is recorded by the append-only updates).
    """
    stored = _stored(conn, record["id"])
    if stored is not None and _same(stored, record):
        return "unchanged"
    values = [record[k] for k in ACTION_COLUMNS]
    conn.execute(
        f"INSERT INTO plan_actions ({', '.join(ACTION_COLUMNS)}) VALUES ({', '.join(['%s'] * len(values))}) "
        "ON CONFLICT (id) DO UPDATE SET objective_id = EXCLUDED.objective_id, title = EXCLUDED.title, "
        "lead_partner = EXCLUDED.lead_partner, starts_on = EXCLUDED.starts_on, ends_on = EXCLUDED.ends_on, "
        "source = EXCLUDED.source, loaded_at = now()", values)
    for table in ("plan_action_partners", "plan_budgets", "plan_indicators"):
        conn.execute(f"DELETE FROM {table} WHERE action_id = %s", (record["id"],))
    for partner in record["partners"]:
        conn.execute("INSERT INTO plan_action_partners (action_id, partner) VALUES (%s, %s)", (record["id"], partner))
    for line in record["budget"]:
        conn.execute("INSERT INTO plan_budgets (action_id, partner, year, amount) VALUES (%s, %s, %s, %s)",
                     (record["id"], line["partner"], line["year"], line["amount"]))
    for ind in record["indicators"]:
        conn.execute("INSERT INTO plan_indicators (action_id, code, label, unit, target, direction) "
                     "VALUES (%s, %s, %s, %s, %s, %s)",
                     (record["id"], ind["code"], ind["label"], ind["unit"], ind["target"], ind["direction"]))
    return "added" if stored is None else "changed"


def list_actions(conn: psycopg.Connection, *, as_of: date | None = None) -> list[dict]:
    """Return every action with its partners, budget, indicators and its latest status as of a day.

    The status is that of the latest update dated on or before ``as_of`` (every update when
    None); an action without one is ``planned``.
    """
    rows = conn.execute(
        f"SELECT {', '.join('a.' + c for c in ACTION_COLUMNS)}, o.code, "
        "(SELECT u.status FROM plan_updates u WHERE u.action_id = a.id AND (%(d)s::date IS NULL OR u.on_date <= %(d)s) "
        " ORDER BY u.on_date DESC, u.id DESC LIMIT 1) "
        "FROM plan_actions a JOIN plan_objectives o ON o.id = a.objective_id ORDER BY a.objective_id, a.id",
        {"d": as_of}).fetchall()
    out = []
    for row in rows:
        record = _stored(conn, row[0])
        record["objective"] = row[len(ACTION_COLUMNS)]
        record["status"] = row[-1] or "planned"
        out.append(record)
    return out
