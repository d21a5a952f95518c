"""Writing result tables: GeoJSON, CSV (no geometry, cells as hex strings) or GeoParquet."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd

from geo_monitor.errors import InvalidArgumentError

FORMATS = {".geojson": "GeoJSON", ".json": "GeoJSON", ".csv": "CSV", ".parquet": "GeoParquet"}


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
        gpd.GeoDataFrame(out, geometry="geometry", crs=frame.crs).to_file(path, driver="GeoJSON")
    return path
