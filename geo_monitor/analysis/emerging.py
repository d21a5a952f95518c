"""Emerging hot spot analysis on an H3 × time cube (docs/methods.md §3, ArcGIS Pro's tool).

Gi* is computed for every bin (cell, step) with space-time neighbours, significance is
controlled by FDR over the whole cube, and each cell's history of significant bins plus a
Mann–Kendall trend of its z series gives one of 17 patterns.

ArcGIS's descriptions let some histories hold two patterns at once; one order of precedence,
the same for hot and cold, decides (see :func:`classify_series`), so negating a history and its
trend always gives the mirrored pattern. The share ≥ 90 % patterns of either side come first:
9 cold steps then a hot one is a historical cold spot, as 9 hot steps then a cold one is a
historical hot spot. Then new, consecutive, oscillating, sporadic: ArcGIS's "new" (never a hot
spot before) and "consecutive" (never a hot spot before the final run) only rule out earlier
*hot* steps, so [-1, 0, 0, 1] (-1 cold, 1 hot) would be new and oscillating, and
[-1, 0, 1, 1] consecutive and oscillating; both are oscillating here. Hence our "new" means never
significant, hot or cold, before the final step, and "consecutive" nothing significant before
the final run.
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
from scipy import sparse

from geo_monitor import hexagons
from geo_monitor.analysis.counts import category_ids, check_resolution
from geo_monitor.analysis.cubes import step_cube
from geo_monitor.analysis.hotspots import (
    check_cells,
    check_counts,
    check_k,
    gi_star_z,
    significance_bins,
    two_sided_p,
)
from geo_monitor.calendar import Window
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.settings import Settings, get_settings

NO_PATTERN = "no pattern"
KINDS = (
    "new",
    "consecutive",
    "intensifying",
    "persistent",
    "diminishing",
    "sporadic",
    "oscillating",
    "historical",
)
PATTERNS = (*(f"{kind} {side} spot" for side in ("hot", "cold") for kind in KINDS), NO_PATTERN)
"""Every pattern :func:`emerging_hotspots` can return (17), e.g. for a map legend."""


def space_time_weights(
    cells: np.ndarray, steps: int, *, k: int = 1, time_k: int = 1
) -> sparse.csr_matrix:
    """Return the binary (T·n)×(T·n) space-time neighbourhood matrix, bins ordered t-major.

    Bin (j, s) neighbours (i, t) when j is within ``k`` rings of i (self included) and
    t − time_k ≤ s ≤ t: the Kronecker product of a lower-banded T×T matrix and the disk matrix.
    """
    band = sparse.diags(
        [np.ones(steps - lag) for lag in range(time_k + 1)],
        [-lag for lag in range(time_k + 1)],
        shape=(steps, steps),
    )
    return sparse.kron(band, hexagons.disk_matrix(cells, k), format="csr")


def space_time_gi_star(
    cells: np.ndarray, cube: np.ndarray, *, k: int = 1, time_k: int = 1
) -> np.ndarray:
    """Return the T×n Gi* z-scores of every bin (n = cells × T; mean and s over the whole cube)."""
    cells, cube = _check_cube(cells, cube, k, time_k)
    z, _ = gi_star_z(space_time_weights(cells, cube.shape[0], k=k, time_k=time_k), cube.ravel())
    return z.reshape(cube.shape)


def mann_kendall(
    series: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return Mann–Kendall (S, Var S, Z, p, tau) of each row, vectorised (= pymannkendall.original_test).

    S = Σ_{a<b} sign(x_b − x_a); Var S = [T(T−1)(2T+5) − Σ_g t_g(t_g−1)(2t_g+5)]/18 over tie
    groups g; Z = (S ∓ 1)/√Var S (0 when S = 0); p = 2·P(N > |Z|); tau = S/(T(T−1)/2).
    A row containing NaN gives NaN everywhere (pymannkendall would drop the NaN instead).
    """
    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    steps = x.shape[1]
    s = np.zeros(x.shape[0])
    equal_others = np.zeros(x.shape)  # per value: how many other values of the row equal it
    for lag in range(1, steps):
        s += np.sign(x[:, lag:] - x[:, :-lag]).sum(axis=1)
        equal = x[:, lag:] == x[:, :-lag]
        equal_others[:, lag:] += equal
        equal_others[:, :-lag] += equal
    # A tie group of size t has t members with t−1 equal others: Σ e(2e+7) = t(t−1)(2t+5).
    var_s = (
        steps * (steps - 1) * (2 * steps + 5) - (equal_others * (2 * equal_others + 7)).sum(axis=1)
    ) / 18
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(
            s > 0, (s - 1) / np.sqrt(var_s), np.where(s < 0, (s + 1) / np.sqrt(var_s), 0.0)
        )
    z[np.isnan(s)] = np.nan
    return s, var_s, z, two_sided_p(z), s / (steps * (steps - 1) / 2)


def classify_series(
    bins: np.ndarray, trend_sign: int, trend_significant: bool, *, level: int = 2
) -> str:
    """Return the emerging hot spot pattern of one location (ArcGIS Pro rules, docs/methods.md §3).

    A step is hot when ``bins[t] >= level``, cold when ``bins[t] <= -level`` (default 2: 95 %);
    share = hot steps / T; "final" is the last step. The cold rules are the hot ones with hot
    and cold swapped. Rules are tried in this order, each on the hot side then the cold side
    (at most one side has share ≥ 90 % and at most one a significant final step, so the order
    only decides between historical on one side and oscillating on the other: historical):

    - **historical**: share ≥ 90 % and the final step is not hot;
    - **intensifying**: share ≥ 90 % incl. the final step, significant Mann–Kendall trend of
      the z series up (for cold spots: down, i.e. getting colder);
    - **diminishing**: share ≥ 90 % incl. the final step, significant trend down (cold: up);
    - **persistent**: share ≥ 90 % incl. the final step, no significant trend;
    - **new**: the final step is hot and no other step is significant, hot or cold (stricter
      than ArcGIS's "never hot before": an earlier cold step makes it oscillating);
    - **consecutive**: a single uninterrupted run of ≥ 2 hot steps ending at the final step,
      nothing significant before it, hot or cold, share < 90 %;
    - **oscillating**: the final step is hot, share < 90 %, at least one earlier cold step;
    - **sporadic**: the final step is hot, share < 90 %, on-and-off hot history, never cold;
    - **no pattern**: none of the above on either side.

    Parameters
    ----------
    bins
        The location's signed confidence bins (-3..3) in time order.
    trend_sign
        Sign of the Mann–Kendall statistic of the location's Gi* z series (+1 up, -1 down).
    trend_significant
        Whether that trend is significant (p < 0.05).
    level
        Minimum |bin| counted as significant.

    """
    bins = np.asarray(bins)
    trend = int(np.sign(trend_sign)) if trend_significant else 0
    hot, cold = bins >= level, bins <= -level
    # One order for both sides: the share rules on either side before the final-step rules on
    # either, so negating a history (and its trend) always gives the mirrored pattern.
    for side, this, direction in (("hot", hot, trend), ("cold", cold, -trend)):
        pattern = _share_pattern(this, direction)
        if pattern is not None:
            return f"{pattern} {side} spot"
    for side, this, other in (("hot", hot, cold), ("cold", cold, hot)):
        pattern = _final_step_pattern(this, other)
        if pattern is not None:
            return f"{pattern} {side} spot"
    return NO_PATTERN


def _share_pattern(this: np.ndarray, trend: int) -> str | None:
    if 10 * int(this.sum()) < 9 * this.size:  # share < 90 %, in integers
        return None
    if not this[-1]:
        return "historical"
    return "intensifying" if trend > 0 else "diminishing" if trend < 0 else "persistent"


def _final_step_pattern(this: np.ndarray, other: np.ndarray) -> str | None:
    """Return new/consecutive/oscillating/sporadic; only called once share < 90 % on both sides."""
    steps = this.size
    if not this[-1]:
        return None
    significant = this | other
    if not significant[:-1].any():
        return "new"
    run = (
        steps - int(np.flatnonzero(~this)[-1]) - 1
    )  # length of the final hot run (share < 90 %: a gap exists)
    if run >= 2 and not significant[: steps - run].any():
        return "consecutive"
    return "oscillating" if other[:-1].any() else "sporadic"


def emerging_hotspots(
    cells: np.ndarray,
    cube: np.ndarray,
    *,
    k: int = 1,
    time_k: int = 1,
    alpha: float = 0.05,
    fdr: bool = True,
    trend_alpha: float = 0.05,
) -> pd.DataFrame:
    """Return the emerging hot spot pattern of every cell of a cell × time count cube.

    Gi* of each bin uses the bins of the ``k``-ring disk (self included) at the same and the
    ``time_k`` previous steps, with n = cells × T and the mean and s of the whole cube. A bin
    is significant when Benjamini–Hochberg over all bins rejects at ``alpha`` (ArcGIS always
    applies FDR here; ``fdr=False`` uses p ≤ alpha). Mann–Kendall runs on each cell's z series.
    Patterns follow :func:`classify_series` (its docstring states every rule). Fewer than 5
    steps cannot give a significant trend, so no intensifying or diminishing spot.

    Parameters
    ----------
    cells
        The whole study-area grid (int64, sorted, unique, empty cells included).
    cube
        T×n non-negative counts, rows in ascending time (equal steps), columns aligned with
        ``cells``; an empty bin is 0.
    k
        Spatial neighbourhood radius in rings, 1–10.
    time_k
        Neighbourhood time step K (past steps included), 0 to T − 1.
    alpha
        Significance level of a bin (0.05: ArcGIS's "95 %", |gi_bin| ≥ 2).
    fdr
        Control the false discovery rate over all T·n bins.
    trend_alpha
        Significance level of the Mann–Kendall trend.

    Returns
    -------
    pandas.DataFrame
        cell, pattern ("new hot spot", …, "historical cold spot", "no pattern"), hot_share and
        cold_share (fraction of significant hot / cold steps), final_bin (the last step's
        -3..3 bin at 90/95/99 %), mk_tau, mk_p, trend ("up"/"down"/"none": significant only).
        mk_tau and mk_p are NaN when a cell's z series has NaN (all counts equal).

    """
    for name, value in (("alpha", alpha), ("trend_alpha", trend_alpha)):
        if not 0 < value < 1:
            raise InvalidArgumentError(f"{name} must be in (0, 1), got {value!r}")
    z = space_time_gi_star(cells, cube, k=k, time_k=time_k)
    cells = np.asarray(cells, dtype=np.int64)
    p = two_sided_p(z)
    significant = significance_bins(z, p, fdr=fdr, alpha_levels=(alpha,))
    final_bin = significance_bins(z, p, fdr=fdr)[-1]
    _, _, mk_z, mk_p, mk_tau = mann_kendall(z.T)
    mk_sig = mk_p < trend_alpha
    patterns, memo = [], {}
    for series, sign, sig in zip(significant.T, np.sign(mk_z), mk_sig, strict=True):
        key = (series.tobytes(), sign, sig)  # most cells share a few histories (all zero…)
        if key not in memo:
            memo[key] = classify_series(series, sign, bool(sig), level=1)
        patterns.append(memo[key])
    trend = np.where(mk_sig & (mk_z > 0), "up", np.where(mk_sig & (mk_z < 0), "down", "none"))
    return pd.DataFrame(
        {
            "cell": cells,
            "pattern": patterns,
            "hot_share": (significant > 0).mean(axis=0),
            "cold_share": (significant < 0).mean(axis=0),
            "final_bin": final_bin,
            "mk_tau": mk_tau,
            "mk_p": mk_p,
            "trend": trend,
        }
    )


def _check_cube(
    cells: np.ndarray, cube: np.ndarray, k: int, time_k: int
) -> tuple[np.ndarray, np.ndarray]:
    cells = check_cells(cells)
    values = check_counts(cube, len(cells), "cube", ndim=2)
    if values.shape[0] < 2:
        raise InvalidArgumentError(
            f"cube needs at least 2 time steps (rows), got {values.shape[0]}"
        )
    check_k(k)
    check_k(time_k, "time_k", 0, values.shape[0] - 1)
    return cells, values


def emerging(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int = 10,
             step: str = "month", kinds: list[str] | None = None, categories: list[str] | None = None,
             k: int = 1, time_k: int = 1, settings: Settings | None = None) -> gpd.GeoDataFrame:
    """Return the emerging-hotspot pattern of every study-area cell (ArcGIS Pro's classes)."""
    settings = settings or get_settings()
    check_resolution(resolution, settings)
    window = Window.of(start, end)
    steps, grid, cube = step_cube(conn, category_ids(conn, kinds, categories), window, resolution, step)
    return emerging_frame(steps, grid, cube, step=step, k=k, time_k=time_k)


def emerging_frame(steps: list[date], grid: np.ndarray, cube: np.ndarray, *, step: str, k: int = 1,
                   time_k: int = 1) -> gpd.GeoDataFrame:
    """Return :func:`emerging_hotspots` of a step cube with hex ids, totals and hexagons (EPSG:4326)."""
    result = emerging_hotspots(grid, cube, k=k, time_k=time_k)
    result.insert(1, "h3", [hexagons.cell_to_str(c) for c in result["cell"]])
    result["total"] = cube.sum(axis=0)
    result.attrs.update(steps=[d.isoformat() for d in steps], step=step)
    return gpd.GeoDataFrame(result, geometry=hexagons.cells_to_polygons(result["cell"].to_numpy()), crs="EPSG:4326")
