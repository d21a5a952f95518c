"""Coverage gap: per hexagon, incidents against outreach contacts in the same window.

Where demand (incidents) is not met by outreach. Outreach counts are health-related data
about vulnerable people: callers must keep this grid away from roles that may only see
outreach at aggregate level (docs/why.md, "What it never does").
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely

from geo_monitor import hexagons
from geo_monitor.analysis.counts import area_geometry, category_ids, check_resolution, count_cells
from geo_monitor.calendar import Window
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.grid import study_grid
from geo_monitor.settings import Settings, get_settings

DEMAND_CATEGORIES = ("consumption_gathering", "drug_litter")
STATUSES = ("no incidents", "few incidents", "no outreach", "low outreach", "covered")


def coverage_gap(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int = 9,
                 incident_categories: list[str] | None = None, outreach_categories: list[str] | None = None,
                 area: str | dict | shapely.Geometry | None = None, min_incidents: int = 5,
                 low_ratio: float = 0.5, settings: Settings | None = None) -> gpd.GeoDataFrame:
    """Return the full study grid with incidents, outreach and where demand is not met.

    Parameters
    ----------
    start, end
        Paris calendar days, ``end`` exclusive.
    resolution
        A served H3 resolution (default 9, about 9 ha per cell).
    incident_categories, outreach_categories
        The demand and the response. By default the demand is what street teams answer
        (``DEMAND_CATEGORIES``: consumption gatherings and discarded drug litter, not the
        public-space reports) and the response every outreach category.
    area
        ``arrondissement:CODE``, ``quartier:CODE`` or a polygon: cells whose centre lies in it.
    min_incidents
        A cell needs at least this many incidents to be judged at all (fewer: "few incidents").
    low_ratio
        A judged cell is "low outreach" when its ratio is below ``low_ratio`` times the ratio
        of the whole grid returned (the typical response), "no outreach" when it has none.

    Returns
    -------
    GeoDataFrame (EPSG:4326), one row per cell of the grid (cells with no event included):
    ``cell`` (int64), ``h3``, ``incidents``, ``outreach``, ``ratio`` (outreach per incident,
    NaN without incidents), ``incident_share`` and ``outreach_share`` (of the grid's totals),
    ``gap`` = incident share - outreach share (positive: the cell holds more of the demand
    than of the response; the scores sum to 0 and need no division by small counts),
    ``status`` (one of ``STATUSES``), ``uncovered`` (status "no outreach" or "low outreach")
    and the hexagon geometry.
    """
    settings = settings or get_settings()
    check_resolution(resolution, settings)
    if min_incidents < 1 or low_ratio < 0:
        raise InvalidArgumentError(f"min_incidents must be at least 1 and low_ratio non-negative, "
                                   f"got {min_incidents} and {low_ratio}")
    window = Window.of(start, end)
    incident_ids = category_ids(conn, ["incident"], incident_categories or list(DEMAND_CATEGORIES))
    outreach_ids = category_ids(conn, ["outreach"], outreach_categories)
    geometry = area_geometry(conn, area)
    cells = study_grid(conn, resolution)
    if geometry is not None:
        lat, lng = hexagons.cells_to_latlng(cells)
        cells = cells[shapely.contains_xy(geometry, lng, lat)]
    frame = pd.DataFrame({"cell": cells})
    for column, ids in (("incidents", incident_ids), ("outreach", outreach_ids)):
        frame[column] = count_cells(conn, ids, window, resolution).reindex(cells, fill_value=0).to_numpy()
    incidents, outreach = frame["incidents"].to_numpy(), frame["outreach"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["ratio"] = np.where(incidents > 0, outreach / incidents, np.nan)
    for column, values in (("incident_share", incidents), ("outreach_share", outreach)):
        frame[column] = values / values.sum() if values.sum() else 0.0
    frame["gap"] = frame["incident_share"] - frame["outreach_share"]
    typical = outreach.sum() / incidents.sum() if incidents.sum() else np.nan
    status = np.select(
        [incidents == 0, incidents < min_incidents, outreach == 0, frame["ratio"] < low_ratio * typical],
        list(STATUSES[:4]), default=STATUSES[4])
    frame["status"] = pd.Categorical(status, categories=STATUSES)
    frame["uncovered"] = frame["status"].isin(["no outreach", "low outreach"]).to_numpy()
    frame.insert(1, "h3", [hexagons.cell_to_str(c) for c in frame["cell"]])
    return gpd.GeoDataFrame(frame, geometry=hexagons.cells_to_polygons(cells), crs="EPSG:4326")
