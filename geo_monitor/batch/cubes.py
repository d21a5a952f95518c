"""Space-time cubes (cells × steps) computed on Dask distributed from the event lake.

Each lake file is counted by its own task (the window's categories and instants only), per
(Paris month or Monday week, cell); the client sums the small partial counts into the same
T × n array ``analysis.cubes.step_cube`` reads from PostgreSQL, and the emerging-hotspot
classification runs on that array unchanged.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from distributed import Client

from geo_monitor import hexagons
from geo_monitor.analysis.cubes import cube_steps, fill_cube
from geo_monitor.analysis.emerging import emerging_frame
from geo_monitor.calendar import LOCAL_TZ, Window
from geo_monitor.store import lake as event_lake


def file_step_counts(path: str, category: list[int], t0: pd.Timestamp, t1: pd.Timestamp, resolution: int,
                     step: str) -> pd.DataFrame:
    """Return (step, cell, n) of one lake file's events of the categories in [t0, t1)."""
    table = pq.read_table(path, columns=["category_id", "occurred_at", "h3_r11"], partitioning=None)
    at = table["occurred_at"]
    keep = pc.and_(pc.is_in(table["category_id"], value_set=pa.array(category, pa.int16())),
                   pc.and_(pc.greater_equal(at, pa.scalar(t0, at.type)), pc.less(at, pa.scalar(t1, at.type))))
    table = table.filter(keep)
    local = pd.DatetimeIndex(table["occurred_at"].to_pandas()).tz_convert(LOCAL_TZ).tz_localize(None)
    days = local.values.astype("datetime64[D]")
    if step == "month":
        starts = days.astype("datetime64[M]").astype("datetime64[D]")
    else:  # Monday of the week, as PostgreSQL's date_trunc('week')
        starts = days - ((days.astype(np.int64) + 3) % 7).astype("timedelta64[D]")
    fine = table["h3_r11"].to_numpy()
    cells = fine if resolution == 11 else hexagons.cells_to_parents(fine, resolution)
    frame = pd.DataFrame({"step": starts, "cell": cells})
    return frame.groupby(["step", "cell"], sort=False).size().rename("n").reset_index()


def lake_step_cube(client: Client, lake: Path, category: list[int], window: Window, resolution: int,
                   grid: np.ndarray, step: str = "month") -> tuple[list[date], np.ndarray, np.ndarray]:
    """Return (step starts, grid cells, T × n counts) over whole steps of the window, from the lake."""
    steps, next_step = cube_steps(window, step)
    t0, t1 = (pd.Timestamp(window.instant(d)).tz_convert("UTC") for d in (steps[0], next_step))
    first, last = f"{steps[0]:%Y-%m}", f"{next_step - timedelta(days=1):%Y-%m}"
    paths = [str(p) for month, files in event_lake.lake_files(lake).items() if first <= month <= last
             for p in files]
    futures = client.map(file_step_counts, paths, category=list(category), t0=t0, t1=t1,
                         resolution=resolution, step=step, pure=False)
    rows = []
    for frame in client.gather(futures):
        rows.extend(zip(pd.to_datetime(frame["step"]).dt.date, frame["cell"].to_numpy(), frame["n"].to_numpy(),
                        strict=True))
    return steps, grid, fill_cube(steps, grid, rows)


def lake_emerging(client: Client, lake: Path, category: list[int], window: Window, resolution: int,
                  grid: np.ndarray, *, step: str = "month", k: int = 1, time_k: int = 1) -> gpd.GeoDataFrame:
    """Return the emerging-hotspot pattern of every grid cell, the cube counted on the cluster.

    Same columns as ``analysis.emerging.emerging``.
    """
    steps, grid, cube = lake_step_cube(client, lake, category, window, resolution, grid, step)
    return emerging_frame(steps, grid, cube, step=step, k=k, time_k=time_k)
