"""Test-data builders shared by the test modules: events, samples, databases of a module's own, tokens."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import h3
import numpy as np
import pandas as pd
import psycopg
from psycopg.conninfo import conninfo_to_dict

from geo_monitor import db, hexagons
from geo_monitor.privacy.tokens import create_token
from geo_monitor.settings import Settings
from geo_monitor.store import reference
from geo_monitor.store.ingest import IngestReport, ingest_chunks, ingest_file
from geo_monitor.store.sample import generate_sample

FINE = 11  # the resolution ingest stores a point at (its cell's centre)


def ingest_all(conn: psycopg.Connection, settings: Settings, records: pd.DataFrame | list[dict], source: str, *,
               team: str | None = None) -> pd.DataFrame:
    """Ingest planted canonical records as one batch, check every one was accepted, return them."""
    frame = pd.DataFrame(records).copy()
    if "_record" not in frame:
        frame["_record"] = np.arange(1, len(frame) + 1)
    report = ingest_chunks(conn, [frame], name=source, fmt="test", source=source, settings=settings, team=team)
    assert (report.accepted, report.rejected) == (len(frame), 0), report.summary()
    return frame


def ingest_frame(settings: Settings, frame: pd.DataFrame, *, team: str | None = None) -> pd.DataFrame:
    """Ingest planted records under their own source and commit them; check every one was accepted."""
    with db.connect(settings) as conn:
        return ingest_all(conn, settings, frame, frame["source"].iloc[0], team=team)


def fine_centre(lon: float, lat: float) -> tuple[float, float]:
    """Return the centre (lon, lat) of the resolution-11 cell of a point: where ingest stores it."""
    lat11, lon11 = h3.cell_to_latlng(h3.latlng_to_cell(lat, lon, FINE))
    return lon11, lat11


def records_at(points: Sequence[tuple[float, float]], *, kind: str, category: str, day: str, source: str,
               prefix: str | None = None, snap: bool = False) -> pd.DataFrame:
    """Return canonical records at (lon, lat) points, at noon (Paris) of ``day``.

    External ids are ``<prefix>-<i>`` (prefix: the source); ``snap`` moves each point to the
    centre of its fine cell first, so that counts at any resolution are known exactly.
    """
    points = [fine_centre(*p) for p in points] if snap else list(points)
    return pd.DataFrame({"kind": kind, "category": category, "occurred_at": f"{day}T12:00:00+01:00",
                         "lon": [str(p[0]) for p in points], "lat": [str(p[1]) for p in points], "source": source,
                         "external_id": [f"{prefix or source}-{i}" for i in range(len(points))],
                         "_record": np.arange(1, len(points) + 1)})


def records_in_cells(cells: Sequence[int], *, kind: str | Sequence[str], category: str | Sequence[str],
                     occurred_at: str | Sequence[str], ids: Sequence[str], source: str | None = None) -> pd.DataFrame:
    """Return canonical records at the centres of H3 cells, one per entry of ``cells``.

    ``kind``, ``category`` and ``occurred_at`` are one value for all or one per record.
    """
    lat, lng = hexagons.cells_to_latlng(np.asarray(cells, dtype=np.int64))
    frame = pd.DataFrame({"kind": kind, "category": category, "occurred_at": occurred_at,
                          "lon": [repr(float(x)) for x in lng], "lat": [repr(float(y)) for y in lat],
                          "external_id": list(ids)})
    if source is not None:
        frame["source"] = source
    frame["_record"] = np.arange(1, len(frame) + 1)
    return frame


def in_month(month: str, n: int) -> list[str]:
    """Return ``n`` instants spread over a month ``YYYY-MM``: day 1 + i % 28 at hour i % 24, Paris time."""
    return [f"{month}-{1 + i % 28:02d}T{i % 24:02d}:00:00+01:00" for i in range(n)]


def ingest_sample(settings: Settings, folder: Path, events: int, *, seed: int, source: str,
                  at_least: float = 0.95) -> IngestReport:
    """Ingest a synthetic sample under a source of its own; check that most of it was accepted.

    Other modules may ingest the same generator's ids: their own source keeps them apart.
    """
    path = folder / "sample.csv"
    generate_sample(path, events, seed=seed, settings=settings)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["source"] = source
    frame.to_csv(path, index=False)
    with db.connect(settings) as conn:
        report = ingest_file(conn, path, source=source, settings=settings)
    assert report.accepted >= at_least * events, report.summary()
    return report


@contextmanager
def own_database(settings: Settings, suffix: str, cache_dir: Path, **overrides: object) -> Iterator[Settings]:
    """Yield the settings of a database next to the session's, migrated with the reference layers loaded.

    For modules whose state is global (zones: the gap report reads every zone). Dropped at the end.
    """
    name = f"{conninfo_to_dict(settings.database_url)['dbname']}_{suffix}"
    own = settings.model_copy(update={"database_url": db.database_url(settings.database_url, name),
                                      "cache_dir": cache_dir, **overrides})
    try:
        db.up(own)
        with db.connect(own) as conn:
            reference.load_reference(conn, own)
        yield own
    finally:
        db.drop_database(own)


def make_tokens(settings: Settings, who: dict[str, tuple[str, str]], **options: object) -> dict[str, tuple[int, str]]:
    """Create a token per key of ``who`` (key -> (role, team)); return key -> (token id, token)."""
    with db.connect(settings) as conn:
        return {key: create_token(conn, role=role, team=team, **options) for key, (role, team) in who.items()}


def bearer(token: str | None) -> dict[str, str]:
    """Return the Authorization header of a token (none for the public)."""
    return {"Authorization": f"Bearer {token}"} if token else {}
