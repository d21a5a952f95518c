"""H3 on numpy arrays: the only module that imports h3 (cells are int64 everywhere else).

Indexing is vectorised with h3ronpy (Rust); h3-py serves the scalar helpers.
"""

from __future__ import annotations

import h3
import numpy as np
from h3ronpy import change_resolution
from h3ronpy.vector import cells_to_coordinates, coordinates_to_cells


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


def str_to_cell(text: str) -> int:
    """Return the int64 cell of a hex string, raising ValueError when it is not a valid cell."""
    value = h3.str_to_int(text)
    if not h3.is_valid_cell(value):
        raise ValueError(f"{text!r} is not a valid H3 cell")
    return value


def cell_resolution(cell: int) -> int:
    """Return a cell's resolution."""
    return h3.get_resolution(h3.int_to_str(int(cell)))
