"""An event's quartier (and arrondissement) is the one holding the reported point, found fast."""

from __future__ import annotations

import numpy as np
import shapely

from geo_monitor import db, hexagons
from geo_monitor.settings import Settings
from geo_monitor.store.ingest import load_context
from geo_monitor.store.validate import _quartier_of, _quartier_of_points


def test_the_cell_shortcut_gives_the_quartier_of_every_point(loaded_db: Settings) -> None:
    with db.connect(loaded_db) as conn:
        ctx = load_context(conn, loaded_db, source=None, crs=None)
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = shapely.bounds(ctx.study_area)
    lon, lat = rng.uniform(minx, maxx, 60_000), rng.uniform(miny, maxy, 60_000)
    keep = shapely.contains_xy(ctx.study_area, lon, lat)
    lon, lat = lon[keep], lat[keep]
    # many points share a cell, as real reports do, and many cells straddle a boundary
    lon, lat = np.concatenate([lon, lon + 1e-6]), np.concatenate([lat, lat])
    cells = hexagons.points_to_cells(lat, lon, 11)
    unique, inverse = np.unique(cells, return_inverse=True)

    fast = _quartier_of_points(ctx, lon, lat, unique, inverse)
    one_by_one = _quartier_of(ctx, lon, lat)

    assert (fast == one_by_one).all()
    centre_lat, centre_lon = hexagons.cells_to_latlng(unique)
    by_centre = _quartier_of(ctx, centre_lon, centre_lat)[inverse]
    assert (by_centre != one_by_one).sum() > 100  # cell centres would misplace points near boundaries
