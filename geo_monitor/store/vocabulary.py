"""The closed vocabulary of event kinds and categories (data/categories.csv + settings)."""

from __future__ import annotations

import csv

import psycopg

from geo_monitor.settings import Settings, get_settings

KINDS = {"incident": 1, "outreach": 2, "works": 3}


def vocabulary(settings: Settings | None = None) -> dict[str, list[str]]:
    """Return {kind: [category, ...]} from data/categories.csv extended by the settings."""
    settings = settings or get_settings()
    vocab: dict[str, list[str]] = {kind: [] for kind in KINDS}
    with open(settings.data_dir / "categories.csv", encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            vocab[row["kind"]].append(row["category"])
    for kind, extra in settings.extra_categories.items():
        if kind not in KINDS:
            raise ValueError(f"extra_categories names an unknown kind {kind!r}; kinds: {sorted(KINDS)}")
        vocab[kind].extend(c for c in extra if c not in vocab[kind])
    return vocab


def sync_vocabulary(conn: psycopg.Connection, settings: Settings | None = None) -> list[str]:
    """Insert missing categories into the database; return the ``kind/category`` names added."""
    added = []
    with conn.transaction():
        for kind, categories in vocabulary(settings).items():
            for category in categories:
                row = conn.execute(
                    "INSERT INTO categories (kind_id, name) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    (KINDS[kind], category),
                ).fetchone()
                if row:
                    added.append(f"{kind}/{category}")
    return added


def category_ids(conn: psycopg.Connection) -> dict[tuple[str, str], int]:
    """Return {(kind, category): id} as stored."""
    rows = conn.execute(
        "SELECT k.name, c.name, c.id FROM categories c JOIN kinds k ON k.id = c.kind_id"
    ).fetchall()
    return {(kind, name): cid for kind, name, cid in rows}


def public_groups(settings: Settings | None = None) -> dict[tuple[str, str], str]:
    """Return {(kind, category): public group}: the coarse groups the public release shows.

    Categories added through settings fall into their kind's group ("incident" for incidents).
    """
    settings = settings or get_settings()
    with open(settings.data_dir / "categories.csv", encoding="utf-8", newline="") as handle:
        groups = {(row["kind"], row["category"]): row["public_group"] for row in csv.DictReader(handle)}
    for kind, categories in vocabulary(settings).items():
        for category in categories:
            groups.setdefault((kind, category), kind)
    return groups
