"""Monthly hexagon rollups: (resolution 7-10, Paris month, category, cell) -> count.

Ingest adds each batch's counts in its own transaction (``add_batch``), so the rollup
never lags the events; ``ensure_fresh`` rebuilds it before a query reads it if a batch
is missing from it (events written some other way, a restored dump). Anything that
deletes events must call ``refresh``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg

from geo_monitor.calendar import LOCAL_TZ
from geo_monitor.store.events import SIGNATURE, TRAILER
from geo_monitor.store.validate import EPOCH_2000_US, STORED_RESOLUTIONS, Prepared

ROLLUP_RESOLUTIONS = (7, 8, 9, 10)  # resolution 11 is read from the events
KEYS = ["resolution", "month", "category_id", "cell"]


def batch_counts(prepared: Prepared) -> pd.DataFrame:
    """Return the rollup rows (resolution, month, category_id, cell, n) of prepared events."""
    instants = pd.to_datetime(prepared.occurred_us + EPOCH_2000_US, unit="us", utc=True)
    months = instants.tz_convert(LOCAL_TZ).tz_localize(None).values.astype("datetime64[M]")
    frames = []
    for r in ROLLUP_RESOLUTIONS:
        column = STORED_RESOLUTIONS.index(r)
        frame = pd.DataFrame({"month": months, "category_id": prepared.category_id,
                              "cell": prepared.cells[:, column]})
        counts = frame.groupby(KEYS[1:], sort=False).size().rename("n").reset_index()
        counts.insert(0, "resolution", r)
        frames.append(counts)
    return pd.concat(frames, ignore_index=True)


_DELTA_ROW = np.dtype([("nfields", ">i2"), ("l_res", ">i4"), ("res", ">i2"), ("l_month", ">i4"), ("month", ">i4"),
                       ("l_cat", ">i4"), ("cat", ">i2"), ("l_cell", ">i4"), ("cell", ">i8"), ("l_n", ">i4"), ("n", ">i4")])
_DAY_2000 = np.datetime64("2000-01-01", "D")  # PostgreSQL dates count days from here


def stage(conn: psycopg.Connection, counts: pd.DataFrame) -> None:
    """Send one chunk's rollup counts to the server; ``add_batch`` sums them at the end.

    Staging per chunk keeps the client's memory flat whatever the file's size; the rows go
    as binary COPY built with numpy.
    """
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS rollup_delta (LIKE rollup_monthly) ON COMMIT DELETE ROWS")
    if not len(counts):
        return
    rows = np.zeros(len(counts), dtype=_DELTA_ROW)
    rows["nfields"] = 5
    rows["l_res"], rows["l_month"], rows["l_cat"], rows["l_cell"], rows["l_n"] = 2, 4, 2, 8, 4
    rows["res"] = counts["resolution"].to_numpy()
    rows["month"] = (counts["month"].to_numpy().astype("datetime64[D]") - _DAY_2000).astype(np.int32)
    rows["cat"] = counts["category_id"].to_numpy()
    rows["cell"] = counts["cell"].to_numpy()
    rows["n"] = counts["n"].to_numpy()
    with conn.cursor() as cur, cur.copy("COPY rollup_delta FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(SIGNATURE + rows.tobytes() + TRAILER)


def add_batch(conn: psycopg.Connection, batch_id: int) -> None:
    """Add the staged counts of a batch to the rollup and mark the batch included.

    Runs inside the ingest transaction, so the rollup never lags the events.
    """
    conn.execute("CREATE TEMP TABLE IF NOT EXISTS rollup_delta (LIKE rollup_monthly) ON COMMIT DELETE ROWS")
    total = conn.execute(
        "SELECT coalesce(sum(n), 0) FROM rollup_delta WHERE resolution = %s", (ROLLUP_RESOLUTIONS[0],)
    ).fetchone()[0]
    conn.execute(
        """INSERT INTO rollup_monthly (resolution, month, category_id, cell, n)
           SELECT resolution, month, category_id, cell, sum(n) FROM rollup_delta GROUP BY 1, 2, 3, 4
           ON CONFLICT (resolution, month, category_id, cell) DO UPDATE SET n = rollup_monthly.n + EXCLUDED.n"""
    )
    conn.execute("TRUNCATE rollup_delta")
    conn.execute(
        "UPDATE rollup_state SET last_batch_id = greatest(last_batch_id, %s), events = events + %s, "
        "refreshed_at = now()",
        (batch_id, int(total)),
    )


def refresh(conn: psycopg.Connection) -> int:
    """Rebuild the rollup from the events; return the number of events counted."""
    with conn.transaction():
        conn.execute("LOCK TABLE rollup_monthly IN EXCLUSIVE MODE")
        conn.execute("TRUNCATE rollup_monthly")
        for r in ROLLUP_RESOLUTIONS:
            conn.execute(
                f"""INSERT INTO rollup_monthly (resolution, month, category_id, cell, n)
                    SELECT %s, date_trunc('month', occurred_at AT TIME ZONE '{LOCAL_TZ}')::date, category_id,
                           h3_r{r}, count(*)
                    FROM events GROUP BY 2, 3, 4""",
                (r,),
            )
        total = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.execute(
            "UPDATE rollup_state SET last_batch_id = (SELECT coalesce(max(id), 0) FROM ingest_batches), "
            "events = %s, refreshed_at = now()",
            (total,),
        )
    return int(total)


def is_fresh(conn: psycopg.Connection) -> bool:
    """Whether every ingest batch is included in the rollup."""
    return conn.execute(
        "SELECT (SELECT last_batch_id FROM rollup_state) >= (SELECT coalesce(max(id), 0) FROM ingest_batches)"
    ).fetchone()[0]


def ensure_fresh(conn: psycopg.Connection) -> bool:
    """Rebuild the rollup if it is stale; return True when it had to be rebuilt."""
    if is_fresh(conn):
        return False
    refresh(conn)
    return True

