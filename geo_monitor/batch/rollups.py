"""Monthly rollups computed on Dask distributed from the event lake, then loaded into PostGIS.

A lake partition is one Paris calendar month, so a month's counts need no shuffle: one task
per month reads that month's files (category and fine cell only), takes the parents of the
resolution-11 cell (``hexagons.cells_to_parents``, as ingest does) and counts
(resolution, category, cell). The result equals ``store.rollups.refresh`` row for row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow.parquet as pq
from distributed import Client

from geo_monitor.errors import InputFileError
from geo_monitor.hexagons import cells_to_parents
from geo_monitor.store import lake as event_lake
from geo_monitor.store import rollups
from geo_monitor.store.rollups import KEYS, ROLLUP_RESOLUTIONS


@dataclass
class BatchRollups:
    """Rollup rows computed by the batch path, and what they include."""

    counts: pd.DataFrame  # resolution, month (datetime64[D]), category_id, cell, n
    events: int
    last_batch_id: int
    months: int
    seconds: float


def month_counts(paths: list[str], month: str) -> tuple[pd.DataFrame, int]:
    """Return one month's rollup rows from its lake files, and the number of events read."""
    table = pq.read_table(paths, columns=["category_id", "h3_r11"], partitioning=None)
    category = table["category_id"].to_numpy()
    fine = table["h3_r11"].to_numpy()
    frames = []
    for r in ROLLUP_RESOLUTIONS:
        frame = pd.DataFrame({"category_id": category, "cell": cells_to_parents(fine, r)})
        counts = frame.groupby(["category_id", "cell"], sort=False).size().rename("n").reset_index()
        counts.insert(0, "resolution", np.int16(r))
        frames.append(counts)
    out = pd.concat(frames, ignore_index=True)
    out.insert(1, "month", np.datetime64(f"{month}-01", "D"))
    return out[[*KEYS, "n"]], table.num_rows


def lake_rollups(client: Client, lake: Path) -> BatchRollups:
    """Compute the monthly rollups of every served resolution from the lake on the cluster."""
    started = time.perf_counter()
    manifest = event_lake.read_manifest(lake)
    months = event_lake.lake_files(lake, manifest)
    futures = [client.submit(month_counts, [str(p) for p in paths], month, pure=False)
               for month, paths in months.items()]
    results = client.gather(futures)
    frames = [frame for frame, _ in results]
    counts = (pd.concat(frames, ignore_index=True) if frames
              else pd.DataFrame({k: pd.Series(dtype="int64") for k in [*KEYS, "n"]}))
    events = sum(n for _, n in results)
    if events != manifest["events"]:
        raise InputFileError(f"the lake {lake} is inconsistent: its files hold {events:,} events, its manifest "
                             f"{manifest['events']:,}; write it again (geo-monitor export --lake NEW_DIR)")
    return BatchRollups(counts, events, max(manifest["batches"], default=0), len(months),
                        time.perf_counter() - started)


def load_rollups(conn: psycopg.Connection, result: BatchRollups) -> None:
    """Replace the PostGIS rollup with the batch path's rows (one transaction, binary COPY)."""
    rollups.replace(conn, result.counts, last_batch_id=result.last_batch_id, events=result.events)
