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


def geojson_bytes(frame: gpd.GeoDataFrame, properties: list[str], metadata: dict | None = None) -> bytes:
    """Return a GeoJSON FeatureCollection of the frame's geometry and the named columns."""
    geometries = shapely.to_geojson(frame.geometry.to_numpy())
    columns = [frame[c].tolist() for c in properties]
    parts = []
    for i, geometry in enumerate(geometries):
        props = {name: _clean(column[i]) for name, column in zip(properties, columns, strict=True)}
        parts.append(f'{{"type":"Feature","geometry":{geometry},"properties":{json.dumps(props)}}}')
    head = {"type": "FeatureCollection"}
    if metadata:
        head["metadata"] = metadata
    return (json.dumps(head)[:-1] + ',"features":[' + ",".join(parts) + "]}").encode()
