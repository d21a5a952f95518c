"""Space-time cubes from the store: counts of every study-grid cell for each whole step.

Emerging hotspots (and the batch path) read a window as a steps × cells array, empty cells
included, as Gi* requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

import numpy as np
import pandas as pd
import psycopg

from geo_monitor.calendar import Window
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.grid import study_grid
from geo_monitor.store import rollups

STEPS = ("month", "week")


def step_cube(conn: psycopg.Connection, category: list[int], window: Window, resolution: int,
              step: str = "month") -> tuple[list[date], np.ndarray, np.ndarray]:
    """Return (step starts, grid cells, T × n counts) over whole steps of the window.

    Month steps read the monthly rollup, weeks (Monday starts) the daily one. Partial steps
    at the window's edges are left out.
    """
    steps, next_step = cube_steps(window, step)
    grid = study_grid(conn, resolution)
    rollups.ensure_fresh(conn)
    table = "rollup_monthly" if step == "month" else "rollup_daily"
    period = rollups.TABLES[table]
    rows = conn.execute(
        f"SELECT date_trunc(%(step)s, {period})::date, cell, sum(n) FROM {table} WHERE resolution = %(r)s "
        f"AND {period} >= %(s0)s AND {period} < %(s1)s AND category_id = ANY(%(cats)s) GROUP BY 1, 2",
        {"step": step, "r": resolution, "s0": steps[0], "s1": next_step, "cats": category},
    ).fetchall()
    return steps, grid, fill_cube(steps, grid, rows)


def cube_steps(window: Window, step: str) -> tuple[list[date], date]:
    """Return the starts of the whole steps inside the window, and the start of the step after."""
    if step not in STEPS:
        raise InvalidArgumentError(f"step {step!r}: expected one of {', '.join(STEPS)}")
    offset = pd.offsets.MonthBegin(1) if step == "month" else pd.Timedelta(days=7)
    starts = pd.date_range(window.start, window.end, freq="MS" if step == "month" else "W-MON")
    steps = [d.date() for d in starts if (d + offset).date() <= window.end]
    if len(steps) < 2:
        raise InvalidArgumentError(f"the window {window.start} to {window.end} holds fewer than 2 whole {step}s")
    return steps, (pd.Timestamp(steps[-1]) + offset).date()


def fill_cube(steps: list[date], grid: np.ndarray, rows: Iterable[tuple[date, int, int]]) -> np.ndarray:
    """Return the T × n cube of (step start, cell, count) rows; cells outside the grid are left out."""
    cube = np.zeros((len(steps), len(grid)), dtype=np.int64)
    step_index = {d: i for i, d in enumerate(steps)}
    for day, cell, n in rows:
        j = np.searchsorted(grid, cell)
        if j < len(grid) and grid[j] == cell:
            cube[step_index[day], j] += n
    return cube
