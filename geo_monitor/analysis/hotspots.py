"""Getis–Ord Gi* hot spots on a full H3 grid (docs/methods.md §2): pure numpy/scipy, no database.

The grid is the whole study area, empty cells included: dropping them changes n, the mean,
the standard deviation and every neighbourhood size, and hides cold spots. The neighbourhood
of a cell is its ``k``-ring disk (self included) restricted to the grid, from
:func:`geo_monitor.hexagons.disk_matrix`.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from scipy import sparse, stats

from geo_monitor import hexagons
from geo_monitor.analysis.counts import area_geometry, hex_counts
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.settings import Settings

ALPHA_LEVELS = (0.10, 0.05, 0.01)
MAX_K = 10
METHOD = "Getis-Ord Gi*, binary k-ring weights incl. self, two-sided p, Benjamini-Hochberg FDR"


def gi_star_z(weights: sparse.csr_matrix, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the analytic Gi* z-scores and the neighbourhood sizes W_i (docs/methods.md §2).

    ``weights`` must be binary with the diagonal set (self included). z is NaN where a
    neighbourhood is the whole grid (W_i = n: zero variance) or all values are equal (s = 0).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    lag = weights @ x
    w_i = np.asarray(weights.sum(axis=1), dtype=np.float64).ravel()
    mean = x.mean()
    s = 0.0 if np.ptp(x) == 0 else x.std()  # population s (divide by n); exact 0 when constant
    denominator = s * np.sqrt(w_i * (n - w_i) / (n - 1))  # S1_i = W_i for binary weights
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (lag - mean * w_i) / denominator
    z[denominator == 0] = np.nan
    return z, w_i


def two_sided_p(z: np.ndarray) -> np.ndarray:
    """Return the two-sided normal p-value 2·P(Z > |z|) (ArcGIS's convention; NaN stays NaN)."""
    return 2.0 * stats.norm.sf(np.abs(z))


def significance_bins(
    z: np.ndarray, p: np.ndarray, *, fdr: bool = True, alpha_levels: Sequence[float] = ALPHA_LEVELS
) -> np.ndarray:
    """Return the signed confidence bin of each test: ±level of the strictest α passed, else 0.

    With ``fdr`` this is ArcGIS's ``fdrTransform``: Benjamini–Hochberg at each α in turn over
    the whole family, the strictest level passed kept. Without it, p ≤ α, i.e.
    |z| ≥ 1.6449 / 1.9600 / 2.5758 for α = .10 / .05 / .01. NaN p is never significant and
    is left out of the FDR family (it is not a test: its neighbourhood is the whole grid).

    Parameters
    ----------
    z, p
        z-scores and two-sided p-values, aligned; the sign of z gives hot (+) or cold (-).
    fdr
        Control the false discovery rate over all the given tests (one map or one cube).
    alpha_levels
        Strictly decreasing significance levels; level i (1-based) is the bin magnitude.

    """
    z = np.asarray(z, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    bins = np.zeros(p.shape, dtype=np.int8)
    tested = np.isfinite(p)
    if not tested.any():
        return bins
    p_tested = p[tested]
    if fdr:
        p_tested = stats.false_discovery_control(p_tested, method="bh")  # BH-adjusted
    sign = np.sign(z[tested]).astype(np.int8)
    for level, alpha in enumerate(alpha_levels, start=1):
        bins[tested] = np.where(p_tested <= alpha, level * sign, bins[tested])
    return bins


def bin_labels(bins: np.ndarray, alpha_levels: Sequence[float] = ALPHA_LEVELS) -> np.ndarray:
    """Return "hot 99%", "cold 90%", "not significant"… for each bin."""
    names = {0: "not significant"}
    for level, alpha in enumerate(alpha_levels, start=1):
        confidence = f"{100 * (1 - alpha):.10g}%"
        names[level], names[-level] = f"hot {confidence}", f"cold {confidence}"
    return np.array([names[int(b)] for b in np.asarray(bins)], dtype=object)


def gi_star(
    cells: np.ndarray,
    counts: np.ndarray,
    *,
    k: int = 1,
    fdr: bool = True,
    alpha_levels: Sequence[float] = ALPHA_LEVELS,
    permutations: int = 0,
    seed: int | None = None,
) -> pd.DataFrame:
    """Return the Getis–Ord Gi* hot/cold spot table of a full H3 grid.

    z_i = (Σ_j w_ij x_j − x̄·W_i) / (s·√((n·W_i − W_i²)/(n − 1))), binary w_ij = 1 when j is
    within ``k`` rings of i (self included), x̄ and s (population) over all n cells. p is
    two-sided. Classes come from the analytic p (see :func:`significance_bins`).

    Parameters
    ----------
    cells
        The whole study-area grid as int64 H3 cells, sorted ascending, no duplicates,
        empty cells included.
    counts
        Non-negative finite value of each cell, aligned with ``cells``.
    k
        Neighbourhood radius in rings, 1–10 (k=1: 7 cells incl. self; k=2: 19).
    fdr
        Benjamini–Hochberg over the map at each level (ArcGIS ``fdrTransform``); otherwise
        the plain thresholds p ≤ α.
    alpha_levels
        Strictly decreasing levels giving bins ±1, ±2, ±3 (90/95/99 % by default).
    permutations
        When > 0, also return ``p_sim``: esda's conditional-permutation pseudo p-value
        (one-sided, esda's "directed" mode: double it to compare with ``p``), a robustness
        check on sparse counts; it does not change the classes.
    seed
        Seed of the permutations.

    Returns
    -------
    pandas.DataFrame
        cell (int64), count, neighbours (W_i), z, p, gi_bin (int8, -3..3), label, and p_sim
        when ``permutations`` > 0. z and p are NaN (not significant) where a neighbourhood is
        the whole grid or all counts are equal.

    Raises
    ------
    InvalidArgumentError
        Bad ``k``, unsorted or duplicate cells, fewer than 3 cells, misaligned, negative or
        non-finite counts, bad levels or permutations.

    """
    cells = check_cells(cells)
    x = check_counts(counts, len(cells), "counts")
    check_k(k)
    alpha_levels = check_alpha_levels(alpha_levels)
    if (
        isinstance(permutations, bool)
        or not isinstance(permutations, int | np.integer)
        or permutations < 0
    ):
        raise InvalidArgumentError(
            f"permutations must be a non-negative integer, got {permutations!r}"
        )
    weights = hexagons.disk_matrix(cells, k)
    z, w_i = gi_star_z(weights, x)
    p = two_sided_p(z)
    bins = significance_bins(z, p, fdr=fdr, alpha_levels=alpha_levels)
    table = pd.DataFrame(
        {
            "cell": cells,
            "count": np.asarray(counts),
            "neighbours": w_i.astype(np.int64),
            "z": z,
            "p": p,
            "gi_bin": bins,
            "label": bin_labels(bins, alpha_levels),
        }
    )
    if permutations:
        table["p_sim"] = _permutation_p(cells, x, weights, permutations, seed)
    return table


def _permutation_p(
    cells: np.ndarray,
    x: np.ndarray,
    weights: sparse.csr_matrix,
    permutations: int,
    seed: int | None,
) -> np.ndarray:
    import esda  # slow import, only needed here
    import libpysal

    ids = cells.tolist()
    neighbours = {
        ids[i]: ids_row.tolist()
        for i, ids_row in enumerate(np.split(cells[weights.indices], weights.indptr[1:-1]))
    }
    w = libpysal.weights.W(neighbours, id_order=ids, silence_warnings=True)
    with warnings.catch_warnings():
        # esda warns that its default alternative ("directed") will change; we document it.
        warnings.simplefilter("ignore", DeprecationWarning)
        g = esda.G_Local(
            x, w, transform="B", star=None, permutations=permutations, seed=seed, n_jobs=1
        )
    return np.asarray(g.p_sim, dtype=np.float64)


def check_cells(cells: np.ndarray) -> np.ndarray:
    """Return the cells as int64, raising InvalidArgumentError unless sorted, unique and ≥ 3."""
    array = np.asarray(cells)
    if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
        raise InvalidArgumentError(
            f"cells must be a 1-D array of int64 H3 cells, got shape {array.shape} dtype {array.dtype}"
        )
    if array.size < 3:
        raise InvalidArgumentError(f"Gi* needs at least 3 cells, got {array.size}")
    array = array.astype(np.int64, copy=False)
    steps = np.diff(array)
    if (steps == 0).any():
        raise InvalidArgumentError(
            f"cells contain duplicates, e.g. {int(array[1:][steps == 0][0])}"
        )
    if (steps < 0).any():
        raise InvalidArgumentError("cells must be sorted ascending (np.sort) with counts aligned")
    return array


def check_counts(counts: np.ndarray, n: int, name: str, ndim: int = 1) -> np.ndarray:
    """Return the counts as float64, raising InvalidArgumentError unless aligned, finite, ≥ 0."""
    array = np.asarray(counts)
    if array.ndim != ndim or array.shape[-1] != n or not np.issubdtype(array.dtype, np.number):
        raise InvalidArgumentError(
            f"{name} must be numeric with {n} values per row (one per cell), got shape {array.shape}"
        )
    array = array.astype(np.float64)
    if not np.isfinite(array).all():
        raise InvalidArgumentError(
            f"{name} must be finite (found NaN or inf); use 0 for an empty cell"
        )
    if (array < 0).any():
        raise InvalidArgumentError(f"{name} must be non-negative, found {array.min():g}")
    return array


def check_k(k: int, name: str = "k", low: int = 1, high: int = MAX_K) -> None:
    """Raise InvalidArgumentError unless ``k`` is an integer in [low, high]."""
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not low <= k <= high:
        raise InvalidArgumentError(f"{name} must be an integer from {low} to {high}, got {k!r}")


def check_alpha_levels(alpha_levels: Sequence[float]) -> tuple[float, ...]:
    """Return the levels as a tuple, raising unless strictly decreasing within (0, 1)."""
    levels = tuple(float(a) for a in alpha_levels)
    if (
        not levels
        or not all(0 < a < 1 for a in levels)
        or any(b >= a for a, b in zip(levels, levels[1:], strict=False))
    ):
        raise InvalidArgumentError(
            f"alpha_levels must be strictly decreasing values in (0, 1), got {alpha_levels!r}"
        )
    return levels


def hotspots(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int = 10,
             kinds: list[str] | None = None, categories: list[str] | None = None, k: int = 1,
             fdr: bool = True, permutations: int = 0, seed: int | None = None,
             area: str | dict | shapely.Geometry | None = None,
             settings: Settings | None = None) -> gpd.GeoDataFrame:
    """Return Getis-Ord Gi* classes for every study-area cell over one window.

    Computed on the whole study grid (an ``area`` only filters the rows returned, so the
    statistic does not change with the view). See ``geo_monitor.analysis.hotspots.gi_star``.
    """
    counts = hex_counts(conn, start=start, end=end, resolution=resolution, kinds=kinds, categories=categories,
                        include_empty=True, settings=settings)
    stats = gi_star(counts["cell"].to_numpy(), counts["count"].to_numpy(), k=k, fdr=fdr,
                    permutations=permutations, seed=seed)
    result = counts.merge(stats.drop(columns=["count"]), on="cell", how="left")
    if area is not None:
        geometry = area_geometry(conn, area)
        lat, lng = hexagons.cells_to_latlng(result["cell"].to_numpy())
        result = result[shapely.contains_xy(geometry, lng, lat)].reset_index(drop=True)
    return gpd.GeoDataFrame(result, geometry="geometry", crs="EPSG:4326")
