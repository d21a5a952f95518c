"""Test-data builders shared by the test modules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg

from geo_monitor.settings import Settings
from geo_monitor.store.ingest import ingest_chunks


def ingest_all(conn: psycopg.Connection, settings: Settings, records: pd.DataFrame | list[dict], source: str, *,
               team: str | None = None) -> pd.DataFrame:
    """Ingest planted canonical records as one batch, check every one was accepted, return them."""
    frame = pd.DataFrame(records).copy()
    if "_record" not in frame:
        frame["_record"] = np.arange(1, len(frame) + 1)
    report = ingest_chunks(conn, [frame], name=source, fmt="test", source=source, settings=settings, team=team)
    assert (report.accepted, report.rejected) == (len(frame), 0), report.summary()
    return frame
