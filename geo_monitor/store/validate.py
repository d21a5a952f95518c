"""Row validation and preparation: raw records in, storable columns and per-row reasons out.

Everything is vectorised over a chunk. Each refused row gets the first failing reason in
the order of ``REASONS``; reasons never quote coordinates (they would leak into logs).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import shapely
from pandas.util import hash_array
from pyproj import Transformer
from pyproj.exceptions import CRSError

from geo_monitor.calendar import LOCAL_TZ
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.hexagons import (
    cells_to_latlng,
    cells_to_parents,
    cells_to_polygons,
    points_to_cells,
)
from geo_monitor.store.readers import RECORD

CANONICAL = ("kind", "category", "occurred_at", "lon", "lat", "source", "external_id", "ends_at")
REQUIRED = ("kind", "category", "occurred_at", "lon", "lat")
STORED_RESOLUTIONS = (7, 8, 9, 10, 11)
EPOCH_2000_US = 946_684_800_000_000  # PostgreSQL timestamps count microseconds from 2000-01-01
# A time, then an offset. Spaces and tabs, not \s: pandas runs a pattern without \s in pyarrow
# (RE2) instead of Python's re one string at a time.
_OFFSET = r"[T ]\d{2}(?::\d{2}){0,2}(?:[.,]\d+)?[ \t]*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_SOURCE_NAME = r"^[A-Za-z0-9_.\-]{1,64}$"
GEOMETRY_ERROR = "_geometry_error"  # set by the GeoJSON and GeoParquet readers
# Columns read but never stored: the record number and the rejects file's reason (so a fixed
# rejects file can be sent again as it is). Any other column, underscore or not, is refused.
ANNOTATIONS = frozenset({RECORD, "_reason", GEOMETRY_ERROR})
_GEOMETRY_REASONS = frozenset(
    [f"geometry is a {kind}, not a Point" for kind in ("MultiPoint", "LineString", "MultiLineString", "Polygon",
                                                       "MultiPolygon", "GeometryCollection", "NoneType", "str",
                                                       "list", "int", "float", "bool")]
    + ["geometry is missing or not a Point"]
)


@dataclass
class Context:
    """What validation needs to know, loaded once per ingest."""

    categories: dict[tuple[str, str], int]
    source_ids: dict[str, int]
    study_area: shapely.Geometry
    quartiers: shapely.STRtree
    quartier_codes: np.ndarray
    quartier_arrondissements: np.ndarray
    now: pd.Timestamp
    future_tolerance: pd.Timedelta
    point_resolution: int
    hash_key: str
    default_source: str | None = None
    crs: str | None = None
    team: str | None = None
    transformer: Transformer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        """Prepare geometries and the coordinate transformer once."""
        shapely.prepare(self.study_area)
        shapely.prepare(self.quartiers.geometries)
        if self.crs and self.crs.upper() not in ("EPSG:4326", "OGC:CRS84"):
            try:
                self.transformer = Transformer.from_crs(self.crs, "EPSG:4326", always_xy=True)
            except CRSError:
                raise InvalidArgumentError(f"unknown coordinate reference system {self.crs[:40]!r}: give an EPSG "
                                           "code such as EPSG:2154 (Lambert-93)", "crs") from None


@dataclass
class Prepared:
    """Rows ready for the store, as numpy columns (one element per accepted row)."""

    record: np.ndarray
    kind_id: np.ndarray
    category_id: np.ndarray
    occurred_us: np.ndarray
    ends_us: np.ndarray  # -1 where there is no end (only works have one)
    lon: np.ndarray
    lat: np.ndarray
    cells: np.ndarray  # shape (n, 5): resolutions 7..11
    arrondissement: np.ndarray
    quartier: np.ndarray
    source_id: np.ndarray
    external_hash: np.ndarray  # shape (n, 2) of uint64: 128-bit keyed hash

    def __len__(self) -> int:
        """Return the number of rows."""
        return len(self.record)

    def take(self, mask: np.ndarray) -> Prepared:
        """Return the rows where ``mask`` is true."""
        return Prepared(**{name: value[mask] for name, value in self.__dict__.items()})


@dataclass
class Checked:
    """The outcome of validating one chunk."""

    prepared: Prepared
    rejects: pd.DataFrame  # canonical columns + _record + _reason
    naive_times: int


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """Return a column as stripped strings, '' where missing."""
    if column not in frame:
        return pd.Series("", index=frame.index, dtype=object)
    values = frame[column]
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.astype(str).where(values.notna(), "")
    if isinstance(values.dtype, pd.StringDtype):  # already text: no conversion string by string
        return values.fillna("").str.strip()
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _parse_times(frame: pd.DataFrame, column: str) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Return (UTC times, unparseable mask, naive-and-not-local mask) for a time column."""
    index = frame.index
    if column in frame and pd.api.types.is_datetime64_any_dtype(frame[column]):
        values = frame[column]
        if values.dt.tz is None:
            local = values.dt.tz_localize(LOCAL_TZ, ambiguous="NaT", nonexistent="NaT")
            return local.dt.tz_convert("UTC"), pd.Series(False, index=index), local.isna() & values.notna()
        return values.dt.tz_convert("UTC"), pd.Series(False, index=index), pd.Series(False, index=index)
    text = _text(frame, column)
    has_offset = text.str.contains(_OFFSET, regex=True)
    naive = (~has_offset) & (text != "")
    aware = pd.to_datetime(text[has_offset], format="ISO8601", utc=True, errors="coerce")
    wall = pd.to_datetime(text[naive], format="ISO8601", errors="coerce")
    local = wall.dt.tz_localize(LOCAL_TZ, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
    parsed = pd.concat([aware.astype("datetime64[us, UTC]"), local.astype("datetime64[us, UTC]")])
    parsed = parsed.reindex(index)
    bad_local = (wall.notna() & local.isna()).reindex(index, fill_value=False)
    unparseable = (text != "") & parsed.isna() & ~bad_local
    return parsed, unparseable, bad_local


def _keyed_hash(values: np.ndarray, key: str) -> np.ndarray:
    """Return a 128-bit keyed hash (two SipHash-2-4 runs) of each string, as (n, 2) uint64."""
    digest = hashlib.sha256(key.encode()).digest()
    keys = [base64.b64encode(digest[:12]).decode(), base64.b64encode(digest[12:24]).decode()]
    return np.column_stack([hash_array(values, hash_key=k, categorize=False) for k in keys])


def check_columns(columns: list[str]) -> list[str]:
    """Return the required canonical columns missing from a header."""
    return [c for c in REQUIRED if c not in columns]


def validate(frame: pd.DataFrame, ctx: Context) -> Checked:
    """Validate a chunk of raw records and prepare the valid ones for the store."""
    n = len(frame)
    reason = np.full(n, None, dtype=object)

    def refuse(mask, message) -> None:
        mask = np.asarray(mask, dtype=bool) & (reason == None)  # noqa: E711 (elementwise)
        if isinstance(message, str):
            reason[mask] = message
        else:
            reason[mask] = np.asarray(message, dtype=object)[mask]

    for column in frame.columns:
        if column in CANONICAL or column in ANNOTATIONS:
            continue
        values = frame[column]
        filled = values.notna() & (values.astype(str).str.strip() != "")
        refuse(filled, f"field {column[:40]!r} is not part of the canonical record (personal data cannot be stored)")
    if GEOMETRY_ERROR in frame:
        # A source file can carry a column of that name too: only the readers' fixed messages
        # pass through, so a reason never quotes what a sender typed.
        errors = frame[GEOMETRY_ERROR].astype(object)
        filled = errors.notna() & (errors.astype(str).str.strip() != "")
        refuse(filled, errors.where(errors.isin(_GEOMETRY_REASONS), "geometry is missing or not a Point").to_numpy())

    kind = _text(frame, "kind").str.lower()
    category = _text(frame, "category").str.lower()
    refuse(kind == "", "missing kind")
    # Reasons never quote a row's values: they are counted in the stored batch report,
    # and a value typed into the wrong column can be a name.
    refuse(~kind.isin({k for k, _ in ctx.categories}), "unknown kind (expected incident, outreach or works)")
    category_id = pd.Series(list(zip(kind, category, strict=True)), index=frame.index, dtype=object).map(ctx.categories)
    refuse(category == "", "missing category")
    refuse(category_id.isna() & category.str.startswith("dansmarue:"), "unknown DansMaRue type (not in data/dansmarue_types.csv)")
    refuse(category_id.isna(), "unknown category for this kind (see data/categories.csv)")

    source = _text(frame, "source")
    if ctx.default_source:
        source = source.where(source != "", ctx.default_source)
    refuse(source == "", "missing source (give a source column or --source)")
    refuse(~source.str.fullmatch(_SOURCE_NAME), "invalid source name (letters, digits, . _ - only)")

    raw_x, raw_y = frame.get("lon"), frame.get("lat")
    if raw_x is None or raw_y is None:
        raw_x = raw_y = pd.Series(np.nan, index=frame.index)
    x = pd.to_numeric(raw_x, errors="coerce").to_numpy(dtype=np.float64)
    y = pd.to_numeric(raw_y, errors="coerce").to_numpy(dtype=np.float64)
    empty = _text(frame, "lon").eq("").to_numpy() | _text(frame, "lat").eq("").to_numpy()
    refuse(empty, "missing coordinates")
    refuse(~np.isfinite(x) | ~np.isfinite(y), "coordinates are not finite numbers")
    if ctx.transformer is not None:
        refuse((np.abs(x) <= 180) & (np.abs(y) <= 90), f"coordinates look like degrees, but the file declares {ctx.crs}")
        x, y = ctx.transformer.transform(x, y)
    else:
        lambert = (x > 50_000) & (x < 1_300_000) & (y > 6_000_000) & (y < 7_200_000)
        refuse(lambert, "coordinates look like Lambert-93 (EPSG:2154); declare them with --crs EPSG:2154")
        refuse((np.abs(x) > 180) | (np.abs(y) > 90), "coordinates are outside the WGS84 range of lon/lat")
    finite = np.isfinite(x) & np.isfinite(y)
    xs, ys = np.where(finite, x, 0.0), np.where(finite, y, 0.0)
    inside = finite & shapely.contains_xy(ctx.study_area, xs, ys)
    swapped = finite & ~inside & shapely.contains_xy(ctx.study_area, ys, xs)
    refuse(swapped, "latitude and longitude look swapped (lon must come first)")
    refuse(~inside, "outside the study area")

    occurred, unparseable, bad_local = _parse_times(frame, "occurred_at")
    refuse(_text(frame, "occurred_at") == "", "missing occurred_at")
    refuse(unparseable, "unparseable occurred_at (expected ISO 8601, e.g. 2021-05-04T21:30:00+02:00)")
    refuse(bad_local, "occurred_at is an ambiguous or non-existent local time (DST change); add an offset")
    refuse(occurred > ctx.now + ctx.future_tolerance, "occurred_at is in the future")
    ends, ends_bad, ends_local = _parse_times(frame, "ends_at")
    has_end = ends.notna()
    refuse(ends_bad | ends_local, "unparseable ends_at")
    refuse(has_end & (kind != "works"), "ends_at is only allowed for works")
    refuse(has_end & (ends < occurred), "ends_at is before occurred_at")

    ok = np.asarray(reason == None)  # noqa: E711
    external = _text(frame, "external_id")
    fallback = kind + "|" + category + "|" + _text(frame, "occurred_at") + "|" + _text(frame, "lon") + "|" + _text(frame, "lat")
    identity = source + "\x1f" + external.where(external != "", "\x1e" + fallback)

    records = frame[RECORD].to_numpy()
    prepared = _prepare(ctx, ok, records, kind, category_id, occurred, ends, has_end, x, y, source, identity)
    rejects = frame.loc[~ok, [c for c in CANONICAL if c in frame]].copy()
    rejects.insert(0, "_reason", reason[~ok])
    rejects.insert(0, RECORD, records[~ok])
    naive = int((~_text(frame, "occurred_at").str.contains(_OFFSET, regex=True)).to_numpy()[ok].sum())
    return Checked(prepared, rejects, naive)


def _to_us(times: pd.Series) -> np.ndarray:
    """Return microseconds since 2000-01-01 UTC, truncated to the hour."""
    floored = times.dt.floor("h").astype("datetime64[us, UTC]")
    return floored.to_numpy(dtype="datetime64[us]").astype(np.int64) - EPOCH_2000_US


def _prepare(ctx: Context, ok: np.ndarray, records, kind, category_id, occurred, ends, has_end,
             x, y, source, identity) -> Prepared:
    """Generalise the valid rows: cell centre, hour, parent cells, quartier, keyed id hash.

    The quartier (and so the arrondissement) is the one holding the reported point: a cell
    centre can lie across a boundary from the point it stands for.
    """
    cells = points_to_cells(y[ok], x[ok], ctx.point_resolution)
    unique, inverse = np.unique(cells, return_inverse=True)
    lat_c, lon_c = cells_to_latlng(unique)
    quartier_idx = _quartier_of_points(ctx, x[ok], y[ok], unique, inverse)
    fine = unique if ctx.point_resolution == 11 else cells_to_parents(unique, 11)
    stacked = np.column_stack([cells_to_parents(fine, r) for r in STORED_RESOLUTIONS[:-1]] + [fine])
    for name in source[ok].unique():
        ctx.source_ids.setdefault(name, -1)  # resolved to ids by the store before writing
    ends_us = np.full(int(ok.sum()), -1, dtype=np.int64)
    end_ok = has_end.to_numpy()[ok]
    if end_ok.any():
        ends_us[end_ok] = _to_us(ends[ok][end_ok])
    kind_ids = kind[ok].map({"incident": 1, "outreach": 2, "works": 3}).to_numpy(dtype=np.int16)
    return Prepared(
        record=records[ok],
        kind_id=kind_ids,
        category_id=category_id[ok].to_numpy(dtype=np.int16),
        occurred_us=_to_us(occurred[ok]),
        ends_us=ends_us,
        lon=lon_c[inverse],
        lat=lat_c[inverse],
        cells=stacked[inverse],
        arrondissement=ctx.quartier_arrondissements[quartier_idx],
        quartier=ctx.quartier_codes[quartier_idx],
        source_id=source[ok].to_numpy(dtype=object),  # names; the store maps them to ids
        external_hash=_keyed_hash(identity[ok].to_numpy(dtype=object), ctx.hash_key),
    )


def _quartier_of_points(ctx: Context, lon: np.ndarray, lat: np.ndarray, cells: np.ndarray,
                        inverse: np.ndarray) -> np.ndarray:
    """Return the index of the quartier holding each reported point.

    A cell lying wholly inside one quartier gives it to all its points; only the points of
    cells across a boundary are tested one by one, against the quartiers their cell touches.
    """
    polygons = cells_to_polygons(cells)
    inside = ctx.quartiers.query(polygons, predicate="within")
    of_cell = np.full(len(cells), -1, dtype=np.int64)
    of_cell[inside[0]] = inside[1]
    index = of_cell[inverse]
    edge_cells = np.flatnonzero(of_cell < 0)
    if not len(edge_cells):
        return index
    touching = ctx.quartiers.query(polygons[edge_cells], predicate="intersects")
    position = np.full(len(cells), -1, dtype=np.int64)
    position[edge_cells] = np.arange(len(edge_cells))
    edge_points = np.flatnonzero(index < 0)
    edge_of_point = position[inverse[edge_points]]
    geometries = ctx.quartiers.geometries
    for quartier in np.unique(touching[1]):
        near = np.zeros(len(edge_cells), dtype=bool)
        near[touching[0][touching[1] == quartier]] = True
        chosen = edge_points[near[edge_of_point] & (index[edge_points] < 0)]
        index[chosen[shapely.contains_xy(geometries[quartier], lon[chosen], lat[chosen])]] = quartier
    missing = np.flatnonzero(index < 0)  # on a boundary line or in a sliver between quartiers
    if len(missing):
        index[missing] = _quartier_of(ctx, lon[missing], lat[missing])
    return index


def _quartier_of(ctx: Context, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Return the index of the quartier holding each point, the nearest one for edge cells."""
    points = shapely.points(lon, lat)
    index = np.full(len(points), -1, dtype=np.int64)
    hits = ctx.quartiers.query(points, predicate="within")
    index[hits[0]] = hits[1]
    missing = np.flatnonzero(index < 0)
    if len(missing):
        near = ctx.quartiers.query_nearest(points[missing], return_distance=False, all_matches=False)
        index[missing[near[0]]] = near[1]
    return index
