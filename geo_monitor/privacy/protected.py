"""Outreach as protected statistics (the police role): fixed months, a fixed partition, audited suppression.

Outreach data must never become police intelligence (DESIGN.md, Roles), so police never see
an outreach table that another of their answers could be subtracted from. The mechanism:

1. **Fixed windows.** One table per whole calendar month that is over. A window of several
   months is answered from those monthly tables only (a cell shows the sum of its shown
   monthly counts, and is suppressed if any month suppressed it), so it adds nothing that the
   single months do not already say.
2. **A fixed partition.** The cells of one resolution over the whole study grid (the release
   layout at that resolution: each cell in one arrondissement), their arrondissement totals
   and the grand total: one linked table (cells -> arrondissements -> total).
3. **Suppression before anything is summed.** Every node (cell, arrondissement, total) with
   0 < count < k is suppressed; secondary suppression then hides more nodes (the smallest
   non-zero siblings first) until no suppressed one can be narrowed to an interval narrower
   than k by subtraction, audited by
   linear programming over all the table's equations (``geo_monitor.privacy.disclosure``).
   Zeros are not sensitive and are shown as such.
4. **Totals and shares after protection.** The answer's total is the sum of the cells it
   shows and each share is relative to that total; the arrondissement totals and the grand
   total are the protected nodes themselves. An area or bbox only selects among the
   protected cells (by their centre); it never re-aggregates the events.
5. **Identical answers to identical questions.** A month is answered only once it has been
   over for ``police_outreach_settle_days`` (late uploads settle first); its first protected
   table is then kept in ``protected_outreach_months`` and every later question about that
   month gets the same table back, even after more events of that month arrive.
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from geo_monitor import hexagons
from geo_monitor.analysis.counts import area_geometry, category_ids, count_cells
from geo_monitor.calendar import Window, next_month
from geo_monitor.grid import population_of
from geo_monitor.privacy.disclosure import hierarchy, protect
from geo_monitor.privacy.release import Layout, layout
from geo_monitor.settings import Settings, get_settings


def month_table(conn: psycopg.Connection, frame: Layout, ids: list[int], first: date,
                k: int) -> tuple[np.ndarray, np.ndarray]:
    """Return (values, suppressed) of one month's table: cells, then arrondissements, then the total.

    Raises ``DisclosureError`` when suppression cannot protect the month (then nothing is shown).
    """
    counts = count_cells(conn, ids, Window(first, next_month(first)), frame.resolution)
    leaves = counts.reindex(frame.cells, fill_value=0).to_numpy()
    table = hierarchy(leaves, frame.parent, len(frame.codes))
    primary = (table.values > 0) & (table.values < k)
    lower = np.zeros(len(table.values))
    upper = np.full(len(table.values), np.inf)
    # Partners come from the smallest non-zero siblings first: a zero widens no interval.
    protection = protect(table.values, primary, table.equations, lower, upper, k, prefer=table.values > 0)
    return table.values, protection.suppressed


def frozen_month(conn: psycopg.Connection, frame: Layout, ids: list[int], first: date, k: int) -> np.ndarray:
    """Return one month's shown table (None where suppressed), computed once and then kept.

    The first answer for a month is stored; later questions get it back unchanged, so events
    that arrive late cannot be isolated by asking the same month twice. The table is computed
    again only if the partition itself changed (new reference boundaries).
    """
    key = {"m": first, "r": frame.resolution, "k": k}
    row = conn.execute("SELECT cells, shown FROM protected_outreach_months WHERE month = %(m)s AND resolution = %(r)s "
                       "AND k = %(k)s", key).fetchone()
    if row is not None and np.array_equal(np.asarray(row[0], dtype=np.int64), frame.cells):
        return np.array(row[1], dtype=object)
    values, suppressed = month_table(conn, frame, ids, first, k)
    shown = [None if hidden else int(v) for v, hidden in zip(values, suppressed, strict=True)]
    conn.execute("INSERT INTO protected_outreach_months (month, resolution, k, cells, shown) "
                 "VALUES (%(m)s, %(r)s, %(k)s, %(cells)s, %(shown)s) ON CONFLICT (month, resolution, k) "
                 "DO UPDATE SET cells = EXCLUDED.cells, shown = EXCLUDED.shown, created_at = now() "
                 "WHERE protected_outreach_months.cells <> EXCLUDED.cells",
                 {**key, "cells": frame.cells.tolist(), "shown": shown})
    row = conn.execute("SELECT shown FROM protected_outreach_months WHERE month = %(m)s AND resolution = %(r)s "
                       "AND k = %(k)s", key).fetchone()  # a concurrent first answer wins for both
    return np.array(row[0], dtype=object)


def months_of(start: date, end: date) -> list[date]:
    """Return the first days of the whole months of [start, end) (both bounds first days)."""
    months, first = [], start
    while first < end:
        months.append(first)
        first = next_month(first)
    return months


def protected_table(conn: psycopg.Connection, *, start: date, end: date, resolution: int, k: int,
                    settings: Settings | None = None) -> tuple[Layout, np.ndarray]:
    """Return the layout and the shown nodes (None where suppressed) of a window of whole months.

    The window's table is the node-wise sum of the kept monthly tables; a node suppressed in
    any month is suppressed in the sum, so a longer window says nothing the months do not.
    """
    settings = settings or get_settings()
    frame = layout(conn, settings, resolution=resolution)
    ids = category_ids(conn, ["outreach"])
    shown: np.ndarray | None = None
    for first in months_of(start, end):
        month = frozen_month(conn, frame, ids, first, k)
        shown = month if shown is None else np.array(
            [None if a is None or b is None else a + b for a, b in zip(shown, month, strict=True)], dtype=object)
    assert shown is not None  # a window holds at least one month
    return frame, shown


def protected_counts(conn: psycopg.Connection, *, start: date, end: date, resolution: int, k: int,
                     area: str | shapely.Geometry | None = None,
                     settings: Settings | None = None) -> tuple[gpd.GeoDataFrame, int, dict]:
    """Return the protected hexagons (``count`` None where suppressed), their shown total and metadata.

    Cells shown as 0 are left out (as ``hex_counts`` leaves empty cells out); suppressed
    cells are always listed, so leaving a cell out never tells that it is zero.
    """
    frame, shown = protected_table(conn, start=start, end=end, resolution=resolution, k=k, settings=settings)
    n = len(frame.cells)
    suppressed = np.array([v is None for v in shown])
    cells = frame.cells
    keep = suppressed[:n] | np.array([v is not None and v > 0 for v in shown[:n]])
    geometry = area_geometry(conn, area)
    if geometry is not None:
        lat, lng = hexagons.cells_to_latlng(cells)
        keep &= shapely.contains_xy(geometry, lng, lat)
    index = np.flatnonzero(keep)
    table = pd.DataFrame({"cell": cells[index], "count": shown[:n][index]})
    table["population"] = population_of(conn, resolution, table["cell"].to_numpy())
    total = int(sum(c for c in table["count"] if c is not None))
    table["rate_per_1000"] = [None if c is None or p < 1 else c / p * 1000
                              for c, p in zip(table["count"], table["population"], strict=True)]
    table["share"] = [None if c is None else (c / total if total else 0.0) for c in table["count"]]
    table.insert(1, "h3", [hexagons.cell_to_str(c) for c in table["cell"]])
    metadata = {
        "suppressed_under": k,
        "suppressed_cells": int(suppressed[:n][index].sum()),
        "arrondissements": {str(code): shown[n + i] for i, code in enumerate(frame.codes.tolist())},
        "partition_total": shown[-1],
        "months": [m.isoformat()[:7] for m in months_of(start, end)],
    }
    result = gpd.GeoDataFrame(table, geometry=hexagons.cells_to_polygons(table["cell"].to_numpy()), crs="EPSG:4326")
    return result, total, metadata
