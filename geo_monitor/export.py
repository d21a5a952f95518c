"""Writing result tables: GeoJSON, CSV (no geometry, cells as hex strings), GeoParquet or GeoPackage."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_monitor.errors import InvalidArgumentError

FORMATS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".csv": "CSV", ".parquet": "GeoParquet",
           ".gpkg": "GeoPackage"}


MEDIA_TYPES = {".geojson": "application/geo+json", ".json": "application/geo+json", ".csv": "text/csv",
               ".parquet": "application/vnd.apache.parquet", ".gpkg": "application/geopackage+sqlite3"}


def _suffix(name: str) -> str:
    suffix = name.lower() if name.startswith(".") else Path(name).suffix.lower()
    if suffix not in FORMATS:
        raise InvalidArgumentError(f"{name}: unknown output format; use {', '.join(FORMATS)}")
    return suffix


def _write(frame: gpd.GeoDataFrame | pd.DataFrame, target: Path | io.BytesIO, suffix: str, layer: str) -> None:
    """Write a table in one format to a file or a buffer: the one way each format is written."""
    out = frame.drop(columns=[c for c in ("cell",) if c in frame and "h3" in frame])
    if suffix == ".csv":
        pd.DataFrame(out.drop(columns="geometry", errors="ignore")).to_csv(target, index=False)
    elif suffix == ".parquet":
        out.to_parquet(target, index=False)
    else:
        driver, options = ("GPKG", {"layer": layer}) if suffix == ".gpkg" else ("GeoJSON", {})
        gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs).to_file(target, driver=driver, **options)


def write_frame(frame: gpd.GeoDataFrame | pd.DataFrame, path: Path) -> Path:
    """Write a table by the file's extension; cells go out as hex strings (JS cannot hold int64)."""
    path = Path(path)
    suffix = _suffix(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix not in (".csv", ".parquet") and path.exists():
        path.unlink()
    _write(frame, path, suffix, path.stem)
    return path


def frame_bytes(frame: gpd.GeoDataFrame | pd.DataFrame, name: str) -> tuple[bytes, str]:
    """Return the file ``write_frame`` writes for ``name`` (a file name or an extension), and its media type.

    The API's downloads use it, so a file from the API and one from ``geo-monitor export``
    are written the same way (a GeoPackage's layer is named after the file's stem).
    """
    suffix = _suffix(name)
    buffer = io.BytesIO()
    _write(frame, buffer, suffix, Path(name).stem if not name.startswith(".") else "layer")
    return buffer.getvalue(), MEDIA_TYPES[suffix]


def _clean(value: object) -> object:
    """Return a JSON-safe value: NaN and NA become null, numpy scalars plain numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_texts(column: pd.Series) -> list[str]:
    """Return each value of a column as JSON text, as ``json.dumps`` writes it (NaN and NA: null)."""
    values = np.asarray(column)
    if values.dtype.kind in "iu":
        return list(map(str, values.tolist()))
    if values.dtype.kind == "f":
        return [repr(v) if math.isfinite(v) else "null" for v in values.tolist()]
    items = values.tolist()
    if all(type(v) is int for v in items):  # counts kept as objects (None where suppressed)
        return list(map(str, items))
    try:
        joined = "".join(items)
    except TypeError:  # not all text
        joined = None
    if joined is not None and joined.isascii() and joined.isalnum():  # cells as hex: nothing to escape
        return [f'"{v}"' for v in items]
    return [json.dumps(_clean(v)) for v in (column.tolist() if isinstance(column, pd.Series) else items)]


def geojson_bytes(frame: gpd.GeoDataFrame | pd.DataFrame, properties: list[str], metadata: dict | None = None,
                  geometries: list[str] | None = None) -> bytes:
    """Return a GeoJSON FeatureCollection of the frame's geometry and the named columns.

    ``geometries`` gives the geometry of each row as GeoJSON text instead (see
    ``hexagons.cells_geojson``); then the frame needs no geometry column. Properties are
    encoded a column at a time, byte for byte as ``json.dumps`` of each row's dict.
    """
    if geometries is None:
        geometries = shapely.to_geojson(frame.geometry.to_numpy()).tolist()
    keys = ", ".join(json.dumps(name).replace("%", "%%") + ": %s" for name in properties)
    feature = '{"type":"Feature","geometry":%s,"properties":{' + keys + "}}"
    columns = [_json_texts(frame[name]) for name in properties]
    parts = [feature % row for row in zip(geometries, *columns, strict=True)]
    head = {"type": "FeatureCollection"}
    if metadata:
        head["metadata"] = metadata
    return (json.dumps(head)[:-1] + ',"features":[' + ",".join(parts) + "]}").encode()
