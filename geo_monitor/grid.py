"""The study grid (the fixed cells of the study area) and residents per hexagon.

Residents: IRIS census population spread onto H3 cells by area.

Areal weighting (what tobler's area interpolation does for extensive variables), in
Lambert-93 so areas are true; cached per resolution in ``hex_population``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import shapely
from pyproj import Transformer

from geo_monitor import hexagons

_grids: dict[tuple[bytes, int], np.ndarray] = {}


def study_grid(conn: psycopg.Connection, resolution: int) -> np.ndarray:
    """Return the fixed, sorted cells of the study area at a resolution.

    The overlap cover (every cell touching the area), plus the parents of the finest
    cover: an event's coarse cell is the parent of its fine cell, and H3 children do not
    nest exactly, so a parent can lie just outside the coarse cover.
    """
    row = conn.execute("SELECT ST_AsBinary(geom), codes FROM study_area").fetchone()
    key = (row[0], resolution)
    if key not in _grids:
        area = shapely.from_wkb(row[0])
        cells = hexagons.polygon_to_cells(area, resolution, "overlap")
        if resolution < 11:
            fine = hexagons.polygon_to_cells(area, 11, "overlap")
            cells = np.union1d(cells, hexagons.cells_to_parents(fine, resolution))
        _grids[key] = cells
    return _grids[key]


POPULATION_LOCK = 7172  # advisory lock class; the key is the resolution
_TO_LAMBERT = Transformer.from_crs("EPSG:4326", "EPSG:2154", always_xy=True)


def _project(geometries: np.ndarray) -> np.ndarray:
    return shapely.transform(geometries, lambda xy: np.column_stack(_TO_LAMBERT.transform(xy[:, 0], xy[:, 1])))


def spread_population(cells: np.ndarray, iris: np.ndarray, population: np.ndarray) -> np.ndarray:
    """Return each cell's share of the IRIS populations, proportional to overlapping area."""
    hexes = _project(hexagons.cells_to_polygons(cells))
    zones = _project(iris)
    tree = shapely.STRtree(zones)
    hex_idx, zone_idx = tree.query(hexes, predicate="intersects")
    overlap = shapely.area(shapely.intersection(hexes[hex_idx], zones[zone_idx]))
    weight = overlap / shapely.area(zones)[zone_idx]
    return np.bincount(hex_idx, weights=weight * population[zone_idx], minlength=len(cells))


def build_population(conn: psycopg.Connection, resolution: int) -> pd.Series:
    """Compute and store the residents of every study-area cell at a resolution."""
    cells = study_grid(conn, resolution)
    rows = conn.execute("SELECT ST_AsBinary(geom), population FROM iris").fetchall()
    iris = shapely.from_wkb([r[0] for r in rows])
    values = spread_population(cells, iris, np.array([r[1] for r in rows], dtype=np.float64))
    with conn.transaction():
        # Two first requests at once (API workers) must not both insert: one builds, in turn.
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (POPULATION_LOCK, resolution))
        conn.execute("DELETE FROM hex_population WHERE resolution = %s", (resolution,))
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO hex_population (resolution, cell, population) VALUES (%s, %s, %s)",
                            [(resolution, int(c), float(v)) for c, v in zip(cells, values, strict=True)])
    return pd.Series(values, index=cells, name="population")


def population_of(conn: psycopg.Connection, resolution: int, cells: np.ndarray) -> np.ndarray:
    """Return the residents of the given cells (0 outside the study grid), reading only those rows."""
    cells = np.asarray(cells, dtype=np.int64)
    if not len(cells):
        return np.zeros(0)
    wanted = "{" + ",".join(map(str, cells.tolist())) + "}"  # one text value: psycopg dumps lists slowly
    rows = conn.execute("SELECT cell, population FROM hex_population WHERE resolution = %s "
                        "AND cell = ANY(%s::bigint[])", (resolution, wanted)).fetchall()
    if not rows:  # every study cell has a row once built: none means not built yet
        population = ensure_population(conn, resolution)
    else:
        found, values = zip(*rows, strict=True)
        population = pd.Series(np.array(values, dtype=np.float64), index=np.array(found, dtype=np.int64))
    return population.reindex(cells, fill_value=0.0).to_numpy()


def ensure_population(conn: psycopg.Connection, resolution: int) -> pd.Series:
    """Return residents by cell at a resolution, computing them on first use."""
    rows = conn.execute("SELECT cell, population FROM hex_population WHERE resolution = %s", (resolution,)).fetchall()
    if not rows:
        return build_population(conn, resolution)
    cells, values = zip(*rows, strict=True)
    return pd.Series(np.array(values), index=np.array(cells, dtype=np.int64), name="population")
