"""Streaming readers: CSV, GeoJSON and GeoParquet files as chunks of raw records.

Every chunk is a DataFrame with the file's own columns (values as read, missing as
empty strings or NaN) plus ``_record``, the 1-based record number used in reports.
A file that cannot be read at all raises ``InputFileError`` naming the reason.
"""

from __future__ import annotations

import codecs
import csv
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely

from geo_monitor.errors import InputFileError

FORMATS = ("csv", "geojson", "parquet")
RECORD = "_record"
REQUIRED_FIELDS = ("kind", "category", "occurred_at", "lon", "lat")


def detect_format(path: Path) -> str:
    """Guess the format from the file name."""
    suffix = path.suffix.lower()
    if suffix in (".csv", ".txt"):
        return "csv"
    if suffix in (".geojson", ".json"):
        return "geojson"
    if suffix in (".parquet", ".geoparquet"):
        return "parquet"
    raise InputFileError(f"{path.name}: cannot tell the format from the extension; use --format csv|geojson|parquet")


def check_utf8(path: Path) -> None:
    """Raise ``InputFileError`` naming the byte offset of the first invalid UTF-8 sequence."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            try:
                decoder.decode(block)
            except UnicodeDecodeError as exc:
                raise InputFileError(
                    f"{path.name} is not UTF-8 (invalid byte 0x{block[exc.start]:02x} at offset "
                    f"{offset + exc.start}); re-save it as UTF-8"
                ) from None
            offset += len(block)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise InputFileError(f"{path.name} is not UTF-8 (truncated sequence at the end)") from None


def read_chunks(path: Path, fmt: str, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield the file's records in chunks of about ``chunk_rows``."""
    if not path.is_file():
        raise InputFileError(f"{path} does not exist")
    if path.stat().st_size == 0:
        raise InputFileError(f"{path.name} is empty")
    if fmt == "csv":
        yield from _read_csv(path, chunk_rows)
    elif fmt == "geojson":
        yield from _read_geojson(path, chunk_rows)
    elif fmt == "parquet":
        yield from _read_parquet(path, chunk_rows)
    else:
        raise InputFileError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")


def estimate_rows(path: Path, fmt: str) -> int | None:
    """Return about how many records the file holds (None when that would cost a read).

    Only chooses how ingest writes (``ingest.REBUILD_SHARE``), never what it keeps: Parquet
    says it in its footer; a CSV's lines are counted (a quoted line break counts twice).
    """
    try:
        if fmt == "parquet":
            return pq.ParquetFile(path).metadata.num_rows
        if fmt == "csv":
            lines = 0
            with open(path, "rb") as handle:
                while block := handle.read(1 << 24):
                    lines += block.count(b"\n")
            return max(lines - 1, 0)
    except (pa.ArrowInvalid, OSError):
        return None  # the read itself says what is wrong with the file
    return None


def _read_csv(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    check_utf8(path)
    with open(path, encoding="utf-8-sig", newline="") as handle:
        header_line = handle.readline()
    delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
    header = next(csv.reader([header_line], delimiter=delimiter))
    if len(set(header)) != len(header):
        raise InputFileError(f"{path.name}: the header repeats a column name: {header}")
    # Every column as text: our validation gives per-row reasons, pyarrow would fail the file.
    convert = pacsv.ConvertOptions(column_types={name: pa.string() for name in header},
                                   strings_can_be_null=False, quoted_strings_can_be_null=False)
    # Small blocks: the streaming reader reads ahead a number of blocks, so with blocks of a
    # whole chunk it held ~200 MB of a large file before the first chunk was used (peak RSS
    # grew with the file). Blocks are gathered into chunks of ``chunk_rows`` here instead.
    read = pacsv.ReadOptions(block_size=1 << 20, encoding="utf8")
    parse = pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True)
    start = 1
    try:
        reader = pacsv.open_csv(path, read_options=read, parse_options=parse, convert_options=convert)
        for frame in _gathered(reader, chunk_rows):
            frame[RECORD] = np.arange(start, start + len(frame))
            start += len(frame)
            yield frame
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise InputFileError(f"{path.name} is not a well-formed CSV file: {_csv_problem(path, delimiter, len(header), exc)}") from None


def _gathered(batches: Iterator[pa.RecordBatch], rows: int) -> Iterator[pd.DataFrame]:
    """Yield the batches as frames of at least ``rows`` rows (the last one may hold fewer)."""
    pending, count = [], 0
    for batch in batches:
        pending.append(batch)
        count += batch.num_rows
        if count >= rows:
            yield pa.Table.from_batches(pending).to_pandas()
            pending, count = [], 0
    if pending:
        yield pa.Table.from_batches(pending).to_pandas()


def _csv_problem(path: Path, delimiter: str, width: int, exc: Exception) -> str:
    """Name the first record whose field count differs from the header's, without quoting it."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        next(reader, None)
        for number, row in enumerate(reader, start=1):
            if len(row) != width:
                return f"record {number} (line {reader.line_num}) has {len(row)} fields, the header has {width}"
    return str(exc).split(":", 2)[0]  # pyarrow's message quotes the row: keep only its kind


def _read_geojson(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    check_utf8(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection" or not isinstance(data.get("features"), list):
        raise InputFileError(f"{path.name} is not a GeoJSON FeatureCollection")
    crs = ((data.get("crs") or {}).get("properties") or {}).get("name", "")
    features = data["features"]
    for start in range(0, len(features), chunk_rows):
        rows = []
        for feature in features[start:start + chunk_rows]:
            props = dict(feature.get("properties") or {}) if isinstance(feature, dict) else {}
            geometry = feature.get("geometry") if isinstance(feature, dict) else None
            if isinstance(geometry, dict) and geometry.get("type") == "Point":
                coords = geometry.get("coordinates") or [None, None]
                props.setdefault("lon", coords[0] if len(coords) > 0 else None)
                props.setdefault("lat", coords[1] if len(coords) > 1 else None)
            elif geometry is not None:
                props["_geometry_error"] = f"geometry is a {geometry.get('type') if isinstance(geometry, dict) else type(geometry).__name__}, not a Point"
            rows.append(props)
        # Features may omit properties: absent ones become per-row "missing" reasons.
        frame = pd.DataFrame(rows, dtype=object)  # object: an id column with gaps must not become floats
        for column in REQUIRED_FIELDS:
            if column not in frame:
                frame[column] = np.nan
        frame[RECORD] = np.arange(start + 1, start + 1 + len(frame))
        if "2154" in crs:
            frame.attrs["crs"] = "EPSG:2154"
        yield frame


def _parquet_geometry(path: Path, pfile: pq.ParquetFile) -> tuple[str | None, str | None]:
    """Return the GeoParquet primary geometry column and its CRS code, if any."""
    meta = pfile.schema_arrow.metadata or {}
    if b"geo" not in meta:
        return None, None
    try:
        geo = json.loads(meta[b"geo"])
        column = geo["primary_column"]
        crs = geo["columns"][column].get("crs")
    except (ValueError, KeyError) as exc:
        raise InputFileError(f"{path.name}: unreadable GeoParquet metadata ({exc!r})") from None
    code = None
    if isinstance(crs, dict):
        ident = crs.get("id") or {}
        code = f"{ident.get('authority', 'EPSG')}:{ident.get('code')}" if ident else None
    return column, code


def _read_parquet(path: Path, chunk_rows: int) -> Iterator[pd.DataFrame]:
    try:
        # pre_buffer (pyarrow's default, made for object stores) kept read-ahead buffers that grew
        # with the file: reading 4M events peaked 117 MB above 1M; without it both peak the same.
        pfile = pq.ParquetFile(path, pre_buffer=False)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFileError(f"{path.name} is not a readable Parquet file: {exc}") from None
    geometry_column, crs = _parquet_geometry(path, pfile)
    start = 1
    try:
        for batch in pfile.iter_batches(batch_size=chunk_rows):
            frame = batch.to_pandas(integer_object_nulls=True)
            if geometry_column and geometry_column in frame:
                points = shapely.from_wkb(frame.pop(geometry_column).to_numpy(), on_invalid="ignore")
                is_point = shapely.get_type_id(points) == 0
                frame["lon"] = np.where(is_point, shapely.get_x(points), np.nan)
                frame["lat"] = np.where(is_point, shapely.get_y(points), np.nan)
                frame.loc[~is_point, "_geometry_error"] = "geometry is missing or not a Point"
            if crs and crs not in ("EPSG:4326", "OGC:CRS84"):
                frame.attrs["crs"] = crs
            frame[RECORD] = np.arange(start, start + len(frame))
            start += len(frame)
            yield frame
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputFileError(f"{path.name} is not a well-formed Parquet file: {exc}") from None
