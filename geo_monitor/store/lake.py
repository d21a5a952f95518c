"""The event lake: the stored (generalised) events as GeoParquet 1.1, one folder per Paris month.

Layout (hive partitioning, readable as it is by DuckDB, geopandas, dask-geopandas, pyarrow)::

    LAKE/_manifest.json                      the batches written so far, and their files
    LAKE/month=2021-03/part-b000001-000004.parquet

A file holds the events of one Paris calendar month from one export run, sorted by their
coarse H3 parent (resolution ``SORT_RESOLUTION``), then fine cell, time and id, so a reader's
bbox or cell filter skips whole row groups. Columns: what the events table keeps, except
the keyed id hash (identity stays in PostgreSQL) and the parent cells (``cells_to_parents``
of ``h3_r11`` gives them). ``geometry`` is WKB with a ``bbox`` covering column (GeoParquet
1.1). Export is incremental: only ingest batches missing from the manifest are written.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from psycopg import sql
from pyproj import CRS

from geo_monitor.calendar import LOCAL_TZ
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.store.validate import EPOCH_2000_US

MANIFEST = "_manifest.json"
SORT_RESOLUTION = 7
ROW_GROUP_ROWS = 131_072  # small enough for bbox pruning, large enough for compression
FORMAT = "geo_monitor event lake"
SCHEMA = pa.schema([
    ("id", pa.int64()), ("batch_id", pa.int64()), ("kind_id", pa.int16()), ("category_id", pa.int16()),
    ("occurred_at", pa.timestamp("us", tz="UTC")), ("ends_at", pa.timestamp("us", tz="UTC")),
    ("h3_r11", pa.int64()), ("arrondissement", pa.int32()), ("quartier", pa.int32()),
    ("source_id", pa.int32()), ("geometry", pa.binary()),
    ("bbox", pa.struct([("xmin", pa.float64()), ("ymin", pa.float64()),
                        ("xmax", pa.float64()), ("ymax", pa.float64())])),
])
_COPY_ROW = np.dtype([
    ("nfields", ">i2"), ("l_month", ">i4"), ("month", ">i4"), ("l_id", ">i4"), ("id", ">i8"),
    ("l_batch", ">i4"), ("batch", ">i8"), ("l_kind", ">i4"), ("kind", ">i2"), ("l_cat", ">i4"), ("cat", ">i2"),
    ("l_at", ">i4"), ("at", ">i8"), ("l_end", ">i4"), ("end", ">i8"), ("l_x", ">i4"), ("x", ">f8"),
    ("l_y", ">i4"), ("y", ">f8"), ("l_h11", ">i4"), ("h11", ">i8"), ("l_arr", ">i4"), ("arr", ">i4"),
    ("l_q", ">i4"), ("q", ">i4"), ("l_src", ">i4"), ("src", ">i4"),
])
_HEADER = 19  # binary COPY signature (11), flags (4), header extension length (4)
_NO_END = np.iinfo(np.int64).min  # timestamptz '-infinity' in binary COPY: an event without an end
_EXPORT_SQL = f"""COPY (
    SELECT date_trunc('month', occurred_at AT TIME ZONE '{LOCAL_TZ}')::date AS month, id, batch_id, kind_id,
           category_id, occurred_at, coalesce(ends_at, '-infinity'), ST_X(geom), ST_Y(geom), h3_r11,
           arrondissement, quartier, source_id
    FROM events WHERE batch_id = ANY({{batches}})
    ORDER BY month, h3_parent(h3_r11, {SORT_RESOLUTION}), h3_r11, occurred_at, id
) TO STDOUT (FORMAT BINARY)"""


@dataclass
class ExportReport:
    """What one export wrote."""

    lake: Path
    batches: list[int]
    events: int
    files: list[str] = field(default_factory=list)
    removed_orphans: int = 0
    lake_events: int = 0
    lake_bytes: int = 0
    seconds: float = 0.0

    def summary(self) -> list[str]:
        """Return the report as lines for a terminal."""
        if not self.batches:
            lines = [f"the lake {self.lake} is up to date (no new ingest batch)"]
        else:
            lines = [f"wrote {self.events:,} events of {len(self.batches)} batch(es) into {len(self.files)} "
                     f"monthly file(s) in {self.seconds:.1f} s"]
        if self.removed_orphans:
            lines.append(f"removed {self.removed_orphans} file(s) left by an interrupted export")
        per_event = self.lake_bytes / self.lake_events if self.lake_events else 0.0
        lines.append(f"lake: {self.lake_events:,} events, {self.lake_bytes / 1e6:,.1f} MB ({per_event:.1f} bytes per event)")
        return lines


def geo_metadata(bbox: tuple[float, float, float, float] | None = None) -> dict:
    """Return the GeoParquet 1.1 ``geo`` metadata of a lake file (WKB points, bbox covering)."""
    column = {"encoding": "WKB", "geometry_types": ["Point"], "crs": CRS.from_epsg(4326).to_json_dict(),
              "covering": {"bbox": {k: ["bbox", k] for k in ("xmin", "ymin", "xmax", "ymax")}}}
    if bbox is not None:
        column["bbox"] = list(bbox)
    return {"version": "1.1.0", "primary_column": "geometry", "columns": {"geometry": column}}


def wkb_points(lon: np.ndarray, lat: np.ndarray) -> pa.Array:
    """Return little-endian WKB points built in one numpy pass."""
    wkb = np.empty(len(lon), dtype=[("order", "u1"), ("type", "<u4"), ("x", "<f8"), ("y", "<f8")])
    wkb["order"], wkb["type"], wkb["x"], wkb["y"] = 1, 1, lon, lat
    offsets = np.arange(0, 21 * (len(lon) + 1), 21, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), len(lon), [None, pa.py_buffer(offsets), pa.py_buffer(wkb.tobytes())])


def events_table(*, id: np.ndarray, batch_id: np.ndarray, kind_id: np.ndarray, category_id: np.ndarray,
                 occurred_us: np.ndarray, ends_us: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                 h3_r11: np.ndarray, arrondissement: np.ndarray, quartier: np.ndarray,
                 source_id: np.ndarray) -> pa.Table:
    """Return lake rows from numpy columns (times in microseconds since 1970 UTC, -1 end: none)."""
    x, y = pa.array(np.asarray(lon, dtype=np.float64)), pa.array(np.asarray(lat, dtype=np.float64))
    ends = pa.array(np.asarray(ends_us, dtype=np.int64), mask=np.asarray(ends_us) == -1).cast(SCHEMA.field("ends_at").type)
    columns = [pa.array(np.asarray(id, dtype=np.int64)), pa.array(np.asarray(batch_id, dtype=np.int64)),
               pa.array(np.asarray(kind_id, dtype=np.int16)), pa.array(np.asarray(category_id, dtype=np.int16)),
               pa.array(np.asarray(occurred_us, dtype=np.int64)).cast(SCHEMA.field("occurred_at").type), ends,
               pa.array(np.asarray(h3_r11, dtype=np.int64)), pa.array(np.asarray(arrondissement, dtype=np.int32)),
               pa.array(np.asarray(quartier, dtype=np.int32)), pa.array(np.asarray(source_id, dtype=np.int32)),
               wkb_points(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64)),
               pa.StructArray.from_arrays([x, y, x, y], names=["xmin", "ymin", "xmax", "ymax"])]
    return pa.Table.from_arrays(columns, schema=SCHEMA)


def sort_order(h3_r11: np.ndarray, occurred_us: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Return the lake's row order: coarse H3 parent, fine cell, time, id (as the export's ORDER BY)."""
    from geo_monitor.hexagons import cells_to_parents

    return np.lexsort((ids, occurred_us, h3_r11, cells_to_parents(h3_r11, SORT_RESOLUTION)))


def write_month(lake: Path, month: str, table: pa.Table, name: str) -> Path:
    """Write one month's sorted rows as ``month=YYYY-MM/NAME.parquet`` (atomically); return the path."""
    folder = Path(lake) / f"month={month}"
    folder.mkdir(parents=True, exist_ok=True)
    x = table["bbox"].combine_chunks()
    bbox = (float(np.min(x.field("xmin"))), float(np.min(x.field("ymin"))),
            float(np.max(x.field("xmax"))), float(np.max(x.field("ymax"))))
    table = table.replace_schema_metadata({"geo": json.dumps(geo_metadata(bbox))})
    path = folder / f"{name}.parquet"
    partial = folder / f".{name}.parquet.tmp"
    pq.write_table(table, partial, compression="zstd", row_group_size=ROW_GROUP_ROWS, write_statistics=True)
    os.replace(partial, path)
    return path


def read_manifest(lake: Path) -> dict:
    """Return the lake's manifest (an empty one for a new lake); refuse a folder that is not a lake."""
    path = Path(lake) / MANIFEST
    if not path.exists():
        if Path(lake).exists() and any(Path(lake).iterdir()):
            raise InvalidArgumentError(f"{lake} is not empty and holds no {MANIFEST}: not an event lake; "
                                       "give an empty or new folder")
        return {"format": FORMAT, "version": 1, "geoparquet": "1.1.0", "batches": [], "events": 0, "exports": []}
    manifest = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise InvalidArgumentError(f"{path} is not a geo_monitor event lake manifest")
    return manifest


def write_manifest(lake: Path, manifest: dict) -> None:
    """Replace the manifest atomically (a crash leaves the old one whole)."""
    path = Path(lake) / MANIFEST
    partial = path.with_name(f".{MANIFEST}.tmp")
    partial.write_text(json.dumps(manifest, indent=1))
    os.replace(partial, path)


def lake_files(lake: Path, manifest: dict | None = None) -> dict[str, list[Path]]:
    """Return the manifest's files by month (``YYYY-MM``), in month order."""
    manifest = manifest if manifest is not None else read_manifest(lake)
    months: dict[str, list[Path]] = {}
    for export in manifest["exports"]:
        for name in export["files"]:
            months.setdefault(name.split("/")[0].removeprefix("month="), []).append(Path(lake) / name)
    return dict(sorted(months.items()))


def lake_bytes(lake: Path, manifest: dict | None = None) -> int:
    """Return the bytes the lake's data files take on disk."""
    return sum(p.stat().st_size for files in lake_files(lake, manifest).values() for p in files)


def _remove_orphans(lake: Path, manifest: dict) -> int:
    """Delete data files no manifest entry names (left by an export that died before its manifest)."""
    known = {p.resolve() for files in lake_files(lake, manifest).values() for p in files}
    orphans = [p for p in Path(lake).glob("month=*/*.parquet") if p.resolve() not in known]
    orphans += list(Path(lake).glob("month=*/.*.tmp"))
    for path in orphans:
        path.unlink()
    return len(orphans)


def _copy_rows(conn: psycopg.Connection, batches: list[int]) -> Iterator[np.ndarray]:
    """Stream the events of the batches as fixed-width binary COPY rows, in export order."""
    query = sql.SQL(_EXPORT_SQL).format(batches=sql.Composed([sql.Literal(batches), sql.SQL("::bigint[]")]))
    size = _COPY_ROW.itemsize
    pending, skipped = bytearray(), False
    with conn.cursor() as cur, cur.copy(query) as copy:
        for data in copy:
            pending += data
            if not skipped and len(pending) >= _HEADER:
                del pending[:_HEADER]
                skipped = True
            if len(pending) >= (8 << 20):
                whole = (len(pending) // size) * size
                yield np.frombuffer(bytes(pending[:whole]), dtype=_COPY_ROW)
                del pending[:whole]
    whole = (len(pending) // size) * size  # the 2-byte trailer is what remains
    if whole:
        yield np.frombuffer(bytes(pending[:whole]), dtype=_COPY_ROW)


def _month_table(rows: np.ndarray) -> pa.Table:
    ends = rows["end"].astype(np.int64)
    return events_table(
        id=rows["id"], batch_id=rows["batch"], kind_id=rows["kind"], category_id=rows["cat"],
        occurred_us=rows["at"].astype(np.int64) + EPOCH_2000_US,
        ends_us=np.where(ends == _NO_END, -1, ends + EPOCH_2000_US),
        lon=rows["x"], lat=rows["y"], h3_r11=rows["h11"], arrondissement=rows["arr"], quartier=rows["q"],
        source_id=rows["src"])


def _by_month(chunks: Iterator[np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:
    """Regroup the ordered row stream into one array per month."""
    current, parts = None, []
    for rows in chunks:
        months = rows["month"].astype(np.int32)
        cuts = np.flatnonzero(np.diff(months)) + 1
        for piece in np.split(rows, cuts):
            month = int(piece["month"][0])
            if current is not None and month != current:
                yield _month_name(current), np.concatenate(parts)
                parts = []
            current = month
            parts.append(piece)
    if parts:
        yield _month_name(current), np.concatenate(parts)


def _month_name(days_since_2000: int) -> str:
    return str((np.datetime64("2000-01-01", "D") + days_since_2000).astype("datetime64[M]"))


def export_lake(conn: psycopg.Connection, lake: Path, *,
                progress: Callable[[int], None] | None = None) -> ExportReport:
    """Write the events of every ingest batch not yet in the lake; return what was written.

    Reads one consistent snapshot (a repeatable-read transaction), so a batch committed while
    the export runs is left whole for the next export. The manifest is replaced last: files of
    an export that dies before it are deleted by the next one, which writes them again.
    """
    started = time.perf_counter()
    lake = Path(lake)
    manifest = read_manifest(lake)
    if not lake.exists():
        lake.mkdir(parents=True, mode=0o700)  # fine events: readable by their owner only (docs/scale.md)
    orphans = _remove_orphans(lake, manifest)
    report = ExportReport(lake, [], 0, removed_orphans=orphans)
    conn.commit()
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    try:
        with conn.transaction():
            done = manifest["batches"]
            report.batches = [r[0] for r in conn.execute(
                "SELECT id FROM ingest_batches WHERE id <> ALL(%s::bigint[]) ORDER BY id", (done,)).fetchall()]
            if report.batches:
                name = f"part-b{report.batches[0]:06d}-{report.batches[-1]:06d}"
                for month, rows in _by_month(_copy_rows(conn, report.batches)):
                    path = write_month(lake, month, _month_table(rows), name)
                    report.files.append(str(path.relative_to(lake)))
                    report.events += len(rows)
                    if progress:
                        progress(report.events)
    finally:
        conn.isolation_level = None
    if report.batches:
        manifest["batches"] = sorted(done + report.batches)
        manifest["events"] += report.events
        manifest["exports"].append({"at": datetime.now(UTC).isoformat(timespec="seconds"),
                                    "batches": report.batches, "events": report.events, "files": report.files})
        write_manifest(lake, manifest)
    report.lake_events, report.lake_bytes = manifest["events"], lake_bytes(lake, manifest)
    report.seconds = time.perf_counter() - started
    return report
