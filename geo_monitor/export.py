"""Writing result tables: GeoJSON, CSV (no geometry, cells as hex strings), GeoParquet or GeoPackage."""

from __future__ import annotations

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


def write_frame(frame: gpd.GeoDataFrame | pd.DataFrame, path: Path) -> Path:
    """Write a table by the file's extension; cells go out as hex strings (JS cannot hold int64)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise InvalidArgumentError(f"{path.name}: unknown output format; use {', '.join(FORMATS)}")
    path.parent.mkdir(parents=True, exist_ok=True)
    out = frame.drop(columns=[c for c in ("cell",) if c in frame and "h3" in frame])
    if suffix == ".csv":
        pd.DataFrame(out.drop(columns="geometry", errors="ignore")).to_csv(path, index=False)
    elif suffix == ".parquet":
        out.to_parquet(path, index=False)
    else:
        if path.exists():
            path.unlink()
        driver, layer = ("GPKG", {"layer": path.stem}) if suffix == ".gpkg" else ("GeoJSON", {})
        gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs).to_file(path, driver=driver, **layer)
    return path


def _clean(value: object) -> object:
    """Return a JSON-safe value: NaN and NA become null, numpy scalars plain numbers."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _json_texts(column: pd.Series) -> list[str]:
    """Return each value of a column as JSON text, as ``json.dumps`` writes it (NaN and NA: null)."""
    values = column.to_numpy()
    if values.dtype.kind in "iu":
        return list(map(str, values.tolist()))
    if values.dtype.kind == "f":
        return [repr(v) if math.isfinite(v) else "null" for v in values.tolist()]
    items = values.tolist()
    if all(type(v) is int for v in items):  # counts kept as objects (None where suppressed)
        return list(map(str, items))
    if all(type(v) is str and v.isalnum() and v.isascii() for v in items):  # cells as hex: nothing to escape
        return [f'"{v}"' for v in items]
    return [json.dumps(_clean(v)) for v in column.tolist()]


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
