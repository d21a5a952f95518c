"""Space-time cubes from the store: counts of every study-grid cell for each whole step.

Emerging hotspots (and the batch path) read a window as a steps × cells array, empty cells
included, as Gi* requires.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import psycopg

from geo_monitor.calendar import LOCAL_TZ, Window
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.grid import study_grid
from geo_monitor.store import rollups

STEPS = ("month", "week")


def step_cube(conn: psycopg.Connection, category: list[int], window: Window, resolution: int,
              step: str = "month") -> tuple[list[date], np.ndarray, np.ndarray]:
    """Return (step starts, grid cells, T × n counts) over whole steps of the window.

    Month steps at resolutions 7-10 read the rollup; weeks (Monday starts) and resolution
    11 read the events. Partial steps at the window's edges are left out.
    """
    if step not in STEPS:
        raise InvalidArgumentError(f"step {step!r}: expected one of {', '.join(STEPS)}")
    offset = pd.offsets.MonthBegin(1) if step == "month" else pd.Timedelta(days=7)
    starts = pd.date_range(window.start, window.end, freq="MS" if step == "month" else "W-MON")
    steps = [d.date() for d in starts if (d + offset).date() <= window.end]
    if len(steps) < 2:
        raise InvalidArgumentError(f"the window {window.start} to {window.end} holds fewer than 2 whole {step}s")
    next_step = (pd.Timestamp(steps[-1]) + offset).date()
    grid = study_grid(conn, resolution)
    if step == "month" and resolution in rollups.ROLLUP_RESOLUTIONS:
        rollups.ensure_fresh(conn)
        rows = conn.execute(
            "SELECT month, cell, sum(n) FROM rollup_monthly WHERE resolution = %s AND month >= %s AND month < %s "
            "AND category_id = ANY(%s) GROUP BY 1, 2",
            (resolution, steps[0], next_step, category),
        ).fetchall()
    else:
        cell = "h3_r11" if resolution == 11 else "h3_parent(h3_r11, %(r)s)"
        rows = conn.execute(
            f"SELECT date_trunc(%(step)s, occurred_at AT TIME ZONE '{LOCAL_TZ}')::date, {cell}, count(*) "
            "FROM events WHERE category_id = ANY(%(cats)s) AND occurred_at >= %(t0)s AND occurred_at < %(t1)s "
            "GROUP BY 1, 2",
            {"step": step, "r": resolution, "cats": category, "t0": window.instant(steps[0]),
             "t1": window.instant(next_step)},
        ).fetchall()
    cube = np.zeros((len(steps), len(grid)), dtype=np.int64)
    step_index = {d: i for i, d in enumerate(steps)}
    for day, cell, n in rows:
        j = np.searchsorted(grid, cell)
        if j < len(grid) and grid[j] == cell:
            cube[step_index[day], j] += n
    return steps, grid, cube
