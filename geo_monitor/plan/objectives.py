"""The plan's fixed vocabulary: its four objectives, action statuses, place types, and the partners."""

from __future__ import annotations

import psycopg

OBJECTIVES = {1: "accompany", 2: "accommodation", 3: "public_space", 4: "knowledge"}
STATUSES = ("planned", "started", "done", "dropped")
DIRECTIONS = ("up", "down")
PLACE_TYPES = ("perennial_accommodation", "hotel_shelter", "specialised_housing", "rest_space")


def objective_id(value: object) -> int | None:
    """Return the objective's number from ``1``..``4`` or its code (``accompany``...); None if unknown."""
    text = str(value).strip().lower()
    if text.isdigit() and int(text) in OBJECTIVES:
        return int(text)
    return next((number for number, code in OBJECTIVES.items() if code == text), None)


def objectives(conn: psycopg.Connection) -> list[dict]:
    """Return the four objectives: id, code, title_fr, title_en."""
    cur = conn.execute("SELECT id, code, title_fr, title_en FROM plan_objectives ORDER BY id")
    return [dict(zip(("id", "code", "title_fr", "title_en"), row, strict=True)) for row in cur.fetchall()]


def partners(conn: psycopg.Connection) -> dict[str, str]:
    """Return every known partner: code -> name."""
    return dict(conn.execute("SELECT code, name FROM plan_partners ORDER BY code").fetchall())
