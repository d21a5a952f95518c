"""H3 on numpy arrays: the only module that imports h3 (cells are int64 everywhere else).

Indexing is vectorised with h3ronpy (Rust); h3-py serves the scalar helpers.
"""

from __future__ import annotations

import threading

import h3
import numpy as np
import shapely
import shapely.geometry
from h3ronpy import cells_area_m2 as _cells_area_m2
from h3ronpy import change_resolution
from h3ronpy.vector import cells_to_coordinates, cells_to_wkb_polygons, coordinates_to_cells
from scipy import sparse


def points_to_cells(lat: np.ndarray, lng: np.ndarray, resolution: int) -> np.ndarray:
    """Return the int64 cell of each (lat, lng) point; note H3's latitude-first order."""
    cells = coordinates_to_cells(np.asarray(lat, dtype=np.float64), np.asarray(lng, dtype=np.float64), resolution)
    return np.asarray(cells).view(np.int64)


def cells_to_parents(cells: np.ndarray, resolution: int) -> np.ndarray:
    """Return the parent of each cell at a coarser resolution (keeps counts additive)."""
    parents = change_resolution(np.asarray(cells).view(np.uint64), resolution)
    return np.asarray(parents).view(np.int64)


def cells_to_latlng(cells: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the (lat, lng) arrays of the cells' centres."""
    coords = cells_to_coordinates(np.asarray(cells).view(np.uint64))
    return np.asarray(coords.column("lat")), np.asarray(coords.column("lng"))


def cell_to_str(cell: int) -> str:
    """Return the hex string of an int64 cell (the API edge form; JS cannot hold 64-bit ints)."""
    return h3.int_to_str(int(cell))


def cells_to_str(cells: np.ndarray) -> list[str]:
    """Return the hex strings of int64 cells (as ``cell_to_str``, for many at once)."""
    return [format(c, "x") for c in np.asarray(cells, dtype=np.int64).tolist()]


def str_to_cell(text: str) -> int:
    """Return the int64 cell of a hex string, raising ValueError when it is not a valid cell."""
    if not isinstance(text, str) or not h3.is_valid_cell(text):
        raise ValueError(f"{text!r} is not a valid H3 cell")
    return h3.str_to_int(text)


def cell_resolution(cell: int) -> int:
    """Return a cell's resolution."""
    return h3.get_resolution(h3.int_to_str(int(cell)))


def polygon_to_cells(geometry: shapely.Geometry, resolution: int, contain: str = "overlap") -> np.ndarray:
    """Return the sorted int64 cells covering a (multi)polygon.

    ``contain`` is h3's containment mode: ``overlap`` (every cell touching the polygon, so
    every point inside lands in the cover: the analysis grid), ``center`` or ``full``.
    """
    shape = h3.geo_to_h3shape(shapely.geometry.mapping(geometry))  # reads GeoJSON (lng, lat)
    cells = h3.h3shape_to_cells_experimental(shape, resolution, contain)
    return np.sort(np.array([h3.str_to_int(c) for c in cells], dtype=np.int64))


def cells_to_polygons(cells: np.ndarray) -> np.ndarray:
    """Return the shapely polygon of each cell, in (lng, lat) order."""
    return shapely.from_wkb(np.asarray(cells_to_wkb_polygons(np.asarray(cells, dtype=np.int64).view(np.uint64))))


_GEOJSON: dict[int, str] = {}
_GEOJSON_LIMIT = 500_000  # far above the study grid at every served resolution (~20,000 cells)
_GEOJSON_LOCK = threading.Lock()


def cells_geojson(cells: np.ndarray) -> list[str]:
    """Return each cell's hexagon as GeoJSON geometry text, computed once per cell and kept.

    The answers of the API repeat the same few thousand hexagons; drawing and encoding each
    one again was a quarter of an uncached request's time.
    """
    cells = np.asarray(cells, dtype=np.int64).tolist()
    texts = {c: _GEOJSON.get(c) for c in dict.fromkeys(cells)}
    missing = [c for c, text in texts.items() if text is None]
    if missing:
        made = shapely.to_geojson(cells_to_polygons(np.array(missing, dtype=np.int64))).tolist()
        texts.update(zip(missing, made, strict=True))
        with _GEOJSON_LOCK:
            if len(_GEOJSON) + len(missing) > _GEOJSON_LIMIT:
                _GEOJSON.clear()
            _GEOJSON.update(zip(missing, made, strict=True))
    return [texts[c] for c in cells]


def cells_area_m2(cells: np.ndarray) -> np.ndarray:
    """Return each cell's area in m² (Paris cells are ~11 % below H3's average)."""
    return np.asarray(_cells_area_m2(np.asarray(cells, dtype=np.int64).view(np.uint64)))


def disk_matrix(cells: np.ndarray, k: int) -> sparse.csr_matrix:
    """Return the binary n×n matrix of cells within ``k`` rings of each other, self included.

    Only cells of the given set count (edge cells simply have fewer neighbours).
    """
    cells = np.asarray(cells, dtype=np.int64)
    position = {int(c): i for i, c in enumerate(cells)}
    rows, cols = [], []
    for i, cell in enumerate(cells):
        for neighbour in h3.grid_disk(h3.int_to_str(int(cell)), k):
            j = position.get(h3.str_to_int(neighbour))
            if j is not None:
                rows.append(i)
                cols.append(j)
    data = np.ones(len(rows), dtype=np.float64)
    return sparse.csr_matrix((data, (rows, cols)), shape=(len(cells), len(cells)))


def grid_disk(cells: np.ndarray, k: int) -> np.ndarray:
    """Return the sorted union of the ``k``-ring disks of the cells."""
    out = {h3.str_to_int(n) for c in np.asarray(cells, dtype=np.int64) for n in h3.grid_disk(h3.int_to_str(int(c)), k)}
    return np.sort(np.fromiter(out, dtype=np.int64, count=len(out)))
