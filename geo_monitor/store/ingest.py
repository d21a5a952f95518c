"""Ingest: files (or frames) in, anonymised events in the store, a report out.

One file is one batch and one transaction: a failure anywhere leaves nothing behind.
Duplicates (inside the file or already stored) are skipped and counted; a re-sent
file adds nothing. Invalid rows are refused with a reason and written to a rejects
file the user can fix and send again; the valid rest is kept.
"""

from __future__ import annotations

import csv
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import shapely

from geo_monitor.errors import InputFileError, InvalidArgumentError
from geo_monitor.settings import Settings, get_settings
from geo_monitor.store import adapters, bulk_load, events, rollups
from geo_monitor.store.readers import RECORD, detect_format, estimate_rows, read_chunks
from geo_monitor.store.reference import require_loaded, sha256_file
from geo_monitor.store.validate import (
    CANONICAL,
    Checked,
    Context,
    Prepared,
    check_columns,
    validate,
)
from geo_monitor.store.vocabulary import category_ids

INGEST_LOCK = (7171, 2)


@dataclass
class IngestReport:
    """What one ingest did, for people (``summary``) and machines (the fields)."""

    batch_id: int
    name: str
    format: str
    received: int = 0
    accepted: int = 0
    duplicates_in_file: int = 0
    duplicates_in_store: int = 0
    rejected_by_reason: Counter = field(default_factory=Counter)
    naive_times: int = 0
    rejects_path: Path | None = None
    seconds: float = 0.0
    rollups: str = "merged"  # or "rebuilt": a batch large against the store rebuilds them (REBUILD_SHARE)
    bulk: bool = False  # written without the events' secondary indexes, built again at the end (bulk_load)

    @property
    def rejected(self) -> int:
        """Number of refused rows."""
        return sum(self.rejected_by_reason.values())

    @property
    def duplicates(self) -> int:
        """Rows skipped because the same event is already in the file or the store."""
        return self.duplicates_in_file + self.duplicates_in_store

    def summary(self) -> list[str]:
        """Return the human-readable report lines."""
        rate = self.received / self.seconds if self.seconds else 0.0
        lines = [
            f"batch {self.batch_id}: {self.name} ({self.format})",
            f"  received   {self.received:>10,}",
            f"  accepted   {self.accepted:>10,}",
            f"  duplicates {self.duplicates:>10,}  (in file {self.duplicates_in_file:,}, already stored {self.duplicates_in_store:,})",
            f"  rejected   {self.rejected:>10,}",
        ]
        lines += [f"    {count:>8,}  {reason}" for reason, count in self.rejected_by_reason.most_common()]
        if self.naive_times:
            lines.append(f"  {self.naive_times:,} valid rows gave times without a UTC offset: read as Europe/Paris")
        if self.rejects_path:
            lines.append(f"  rejected rows with their reasons: {self.rejects_path} (fix and send again)")
        if self.bulk:
            lines.append("  bulk load: the events' indexes were built again after the rows went in")
        if self.rollups == "rebuilt":
            lines.append("  rollups rebuilt from every stored event (a batch this large merges slower)")
        lines.append(f"  time       {self.seconds:>10.2f} s  ({rate:,.0f} rows/s)")
        return lines


def load_context(conn: psycopg.Connection, settings: Settings, *, source: str | None, crs: str | None) -> Context:
    """Read what validation needs from the store (vocabulary, study area, quartiers)."""
    require_loaded(conn)
    area = conn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0]
    rows = conn.execute(
        "SELECT q.code, q.arrondissement, ST_AsBinary(q.geom) FROM quartiers q, study_area s "
        "WHERE q.arrondissement = ANY(s.codes) ORDER BY q.code"
    ).fetchall()
    return Context(
        categories=category_ids(conn),
        source_ids={},
        study_area=shapely.from_wkb(area),
        quartiers=shapely.STRtree(shapely.from_wkb([r[2] for r in rows])),
        quartier_codes=np.array([r[0] for r in rows], dtype=np.int32),
        quartier_arrondissements=np.array([r[1] for r in rows], dtype=np.int32),
        now=pd.Timestamp.now(tz="UTC"),
        future_tolerance=pd.Timedelta(minutes=settings.future_tolerance_minutes),
        point_resolution=settings.point_resolution,
        hash_key=settings.id_hash_key,
        default_source=source,
        crs=crs,
    )


class _Rejects:
    """Appends refused rows to a CSV file, created only when the first one comes."""

    def __init__(self, path: Path | None) -> None:
        self.path, self._handle, self._writer = path, None, None
        if path is not None:
            path.unlink(missing_ok=True)  # a stale file from an earlier run would mislead

    def add(self, frame: pd.DataFrame) -> None:
        if self.path is None or frame.empty:
            return
        if self._writer is None:
            self._handle = open(self.path, "w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._handle)
            self._writer.writerow([RECORD, "_reason", *CANONICAL])
        columns = [RECORD, "_reason", *CANONICAL]
        self._writer.writerows(frame.reindex(columns=columns).astype(object).fillna("").itertuples(index=False))

    def close(self, keep: bool) -> Path | None:
        if self._handle:
            self._handle.close()
            if not keep:
                self.path.unlink(missing_ok=True)
                return None
            return self.path
        return None


# A batch that adds more than this share of the events already stored rebuilds the rollups
# instead of merging its counts into them: at 10M events, merging 5M took 89 s (staging and
# INSERT ... ON CONFLICT of ~20 M daily rows), rebuilding all 10M about 30 s (bench/growth.py).
# When the file says beforehand that it is that large (``expected_rows``), it is also a bulk
# load (store.bulk_load): its rows go in without the events' secondary indexes. Both hold the
# tables until the batch commits, so readers wait for it; everyday batches are small and merge.
REBUILD_SHARE = 0.25


def ingest_chunks(conn: psycopg.Connection, chunks: Iterable[pd.DataFrame], *, name: str, fmt: str,
                  file_sha256: str | None = None, source: str | None = None, crs: str | None = None,
                  actor: str = "cli", rejects_path: Path | None = None, settings: Settings | None = None,
                  team: str | None = None, progress: Callable[[int], None] | None = None,
                  expected_rows: int | None = None) -> IngestReport:
    """Validate and store chunks of raw records as one batch, in one transaction.

    New sources are owned by ``team``; sending into another team's source is refused.
    ``expected_rows`` (about how many records the chunks hold, if known) chooses a bulk load
    for a batch large against the store; the result is the same either way.
    """
    settings = settings or get_settings()
    started = time.perf_counter()
    started_at = datetime.now(UTC)
    rejects = _Rejects(rejects_path)
    ok = False
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", INGEST_LOCK)
            ctx = load_context(conn, settings, source=source, crs=crs)
            ctx.team = team
            batch_id = conn.execute(
                "INSERT INTO ingest_batches (file_name, file_sha256, format, actor, started_at, finished_at, "
                "received, accepted, duplicates, rejected) VALUES (%s, %s, %s, %s, %s, %s, 0, 0, 0, 0) RETURNING id",
                (name, file_sha256, fmt, actor, started_at, started_at),
            ).fetchone()[0]
            report = IngestReport(batch_id=batch_id, name=name, format=fmt)
            merge_up_to = REBUILD_SHARE * conn.execute("SELECT events FROM rollup_state").fetchone()[0]
            report.bulk = expected_rows is not None and expected_rows > merge_up_to
            indexes = bulk_load.begin(conn) if report.bulk else []
            for received, checked in _validated(chunks, ctx, name, crs):
                report.received += received
                written = _store_chunk(conn, checked, ctx, report, rejects, probe=not report.bulk)
                if not report.bulk and report.accepted <= merge_up_to:  # else rebuilt: staging is wasted
                    rollups.stage(conn, rollups.batch_counts(written))
                if progress:
                    progress(report.received)
            if report.bulk:
                in_file, in_store = bulk_load.finish(conn, indexes, batch_id)
                report.duplicates_in_file += in_file
                report.duplicates_in_store += in_store
                report.accepted -= in_file + in_store
            if report.accepted <= merge_up_to and not report.bulk:
                rollups.add_batch(conn, batch_id)
            else:
                rollups.refresh(conn)
                report.rollups = "rebuilt"
            report.seconds = time.perf_counter() - started
            conn.execute(
                "UPDATE ingest_batches SET finished_at = %s, received = %s, accepted = %s, duplicates = %s, "
                "rejected = %s, rejected_by_reason = %s WHERE id = %s",
                (datetime.now(UTC), report.received, report.accepted, report.duplicates, report.rejected,
                 psycopg.types.json.Jsonb(dict(report.rejected_by_reason)), batch_id),
            )
        ok = True
    finally:
        report_path = rejects.close(keep=ok)
    report.rejects_path = report_path
    return report


def _validated(chunks: Iterable[pd.DataFrame], ctx: Context, name: str,
               crs: str | None) -> Iterator[tuple[int, Checked]]:
    """Yield (rows read, validation result) per chunk.

    The next chunk is validated in a worker thread while the caller writes the current
    one, so parsing and the server's COPY overlap on two cores.
    """
    iterator = iter(chunks)
    first = True

    def next_checked() -> tuple[int, Checked] | None:
        nonlocal first
        chunk = next(iterator, None)
        if chunk is None:
            return None
        if first:
            missing = check_columns(list(chunk.columns))
            if missing:
                raise InputFileError(
                    f"{name}: missing required column(s) {', '.join(missing)}; "
                    f"the canonical record is {', '.join(CANONICAL)}"
                )
            first = False
        if crs is None and chunk.attrs.get("crs") and ctx.crs != chunk.attrs["crs"]:
            ctx.crs = chunk.attrs["crs"]
            ctx.__post_init__()
        return len(chunk), validate(chunk, ctx)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ingest-validate") as pool:
        pending = pool.submit(next_checked)
        while (result := pending.result()) is not None:
            pending = pool.submit(next_checked)
            yield result


def _store_chunk(conn: psycopg.Connection, checked: Checked, ctx: Context, report: IngestReport,
                 rejects: _Rejects, *, probe: bool = True) -> Prepared:
    """Count and keep the refusals of a validated chunk, skip duplicates, COPY the rest; return what was written.

    Duplicates inside the chunk are always skipped here; those of earlier chunks and batches
    are found by probing the unique index (``probe``), or by ``bulk_load.finish`` at the end.
    """
    report.rejected_by_reason.update(checked.rejects["_reason"])
    rejects.add(checked.rejects)
    report.naive_times += checked.naive_times
    prepared = checked.prepared
    if not len(prepared):
        return prepared
    names = sorted(set(prepared.source_id))
    missing_names = [n for n in names if ctx.source_ids.get(n, -1) < 0]
    if missing_names:
        ctx.source_ids.update(events.source_ids(conn, missing_names, ctx.team))
    source_array = pd.Series(prepared.source_id).map(ctx.source_ids).to_numpy(dtype=np.int32)
    hashes = prepared.external_hash
    dup_file = pd.DataFrame({"s": source_array, "a": hashes[:, 0], "b": hashes[:, 1]}).duplicated().to_numpy().copy()
    dup_store = np.zeros(len(prepared), dtype=bool)
    for sid in np.unique(source_array) if probe else ():
        rows = np.flatnonzero(source_array == sid)
        earlier, this_batch = events.stored_hashes(conn, int(sid), hashes[rows], report.batch_id)
        dup_store[rows[earlier]] = True
        dup_file[rows[this_batch]] = True
    dup_file &= ~dup_store
    report.duplicates_in_file += int(dup_file.sum())
    report.duplicates_in_store += int(dup_store.sum())
    keep = ~(dup_file | dup_store)
    written = prepared.take(keep)  # copy_buffer writes them in (category, time) order
    if len(written):
        events.write_events(conn, events.copy_buffer(written, source_array[keep], report.batch_id))
        report.accepted += len(written)
    return written


def ingest_file(conn: psycopg.Connection, path: Path, *, fmt: str | None = None, adapter: str | None = None,
                source: str | None = None, crs: str | None = None, actor: str = "cli",
                rejects_path: Path | None = None, settings: Settings | None = None, team: str | None = None,
                progress: Callable[[int], None] | None = None, name: str | None = None) -> IngestReport:
    """Ingest one CSV, GeoJSON or GeoParquet file (optionally through a source adapter).

    ``name`` is what the batch record calls the file (its own name by default).
    """
    settings = settings or get_settings()
    path = Path(path)
    fmt = fmt or detect_format(path)
    if crs is not None and not crs.upper().startswith(("EPSG:", "OGC:")):
        raise InvalidArgumentError(f"--crs {crs!r}: expected an authority code such as EPSG:2154")
    chunks: Iterator[pd.DataFrame] = read_chunks(path, fmt, settings.ingest_chunk_rows)
    if adapter:
        chunks = adapters.adapt(adapter, chunks, settings)
        source = source or adapter  # the adapter leaves the source to the caller
    return ingest_chunks(conn, chunks, name=name or path.name, fmt=fmt if not adapter else f"{fmt}/{adapter}",
                         file_sha256=sha256_file(path), source=source, crs=crs, actor=actor,
                         rejects_path=rejects_path, settings=settings, team=team, progress=progress,
                         expected_rows=estimate_rows(path, fmt))
