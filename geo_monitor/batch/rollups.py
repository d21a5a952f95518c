"""The rollups computed on Dask distributed from the event lake, then loaded into PostGIS.

A lake partition is one Paris calendar month, so a month's counts need no shuffle: one task
per month reads that month's files (category, time and fine cell only), takes the parents of
the resolution-11 cell (``hexagons.cells_to_parents``, as ingest does) and counts the rows of
every rollup table with ``store.rollups.counts_of`` — the definition ingest uses. The client
streams each month's rows into PostgreSQL as it arrives (binary COPY, one transaction), so
it holds one month at a time. The result equals ``store.rollups.refresh`` row for row.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow.parquet as pq
from distributed import Client, as_completed

from geo_monitor.errors import InputFileError
from geo_monitor.store import lake as event_lake
from geo_monitor.store import rollups
from geo_monitor.store.validate import EPOCH_2000_US


@dataclass
class BatchRollups:
    """What the batch path counted and loaded."""

    events: int
    last_batch_id: int
    months: int
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows loaded
    seconds: float = 0.0  # the whole job, from submitting the tasks to the commit
    copy_seconds: float = 0.0  # of which the client spent writing rows into PostgreSQL


def month_counts(paths: list[str]) -> tuple[dict[str, pd.DataFrame], int]:
    """Return the rollup rows of one month's lake files, per table, and the number of events read."""
    table = pq.read_table(paths, columns=["category_id", "occurred_at", "h3_r11"], partitioning=None)
    occurred_us = table["occurred_at"].cast("int64").to_numpy() - EPOCH_2000_US
    return rollups.counts_of(occurred_us, table["category_id"].to_numpy(), table["h3_r11"].to_numpy()), table.num_rows


def rollups_from_lake(conn: psycopg.Connection, client: Client, lake: Path) -> BatchRollups:
    """Count every rollup table from the lake on the cluster and replace PostgreSQL's with them.

    One transaction: if the lake's files do not hold the events its manifest lists, nothing
    is replaced.
    """
    started = time.perf_counter()
    manifest = event_lake.read_manifest(lake)
    months = event_lake.lake_files(lake, manifest)
    result = BatchRollups(0, max(manifest["batches"], default=0), len(months),
                          dict.fromkeys(rollups.TABLES, 0))
    missing = [str(p) for paths in months.values() for p in paths if not p.exists()]
    if missing:
        raise InputFileError(f"the lake {lake} lost {len(missing)} file(s) its manifest lists, e.g. {missing[0]}; "
                             "write it again (geo-monitor export --lake NEW_DIR)")
    futures = [client.submit(month_counts, [str(p) for p in paths], pure=False) for paths in months.values()]

    def parts() -> Iterator[dict[str, pd.DataFrame]]:
        for future, (counts, events) in as_completed(futures, with_results=True):
            future.release()
            result.events += events
            for table, frame in counts.items():
                result.rows[table] += len(frame)
            handed = time.perf_counter()
            yield counts  # the caller copies them into PostgreSQL before asking for the next month
            result.copy_seconds += time.perf_counter() - handed
        if result.events != manifest["events"]:
            raise InputFileError(f"the lake {lake} is inconsistent: its files hold {result.events:,} events, its "
                                 f"manifest {manifest['events']:,}; write it again (geo-monitor export --lake NEW_DIR)")

    rollups.replace(conn, parts(), last_batch_id=result.last_batch_id, events=manifest["events"])
    result.seconds = time.perf_counter() - started
    return result
