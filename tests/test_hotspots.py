"""Gi* hot spots and emerging hot spots: checked against esda, pymannkendall and METHODS.md."""

from __future__ import annotations

import esda
import h3
import libpysal
import numpy as np
import pymannkendall
import pytest
from scipy import stats

from geo_monitor.analysis.emerging import (
    PATTERNS,
    classify_series,
    emerging_hotspots,
    mann_kendall,
    space_time_gi_star,
    space_time_weights,
)
from geo_monitor.analysis.hotspots import gi_star, significance_bins
from geo_monitor.errors import InvalidArgumentError

PARIS = (48.8867, 2.36)
METHODS_CENTRE = "891fb46646fffff"
METHODS_COUNTS = [2, 1, 1, 1, 0, 2, 1, 1, 1, 0, 1, 3, 1, 9, 2, 2, 1, 1, 0]


def disk_cells(cell: str, k: int) -> np.ndarray:
    return np.sort(np.array([h3.str_to_int(c) for c in h3.grid_disk(cell, k)], dtype=np.int64))


def paris_grid(resolution: int, k: int) -> np.ndarray:
    return disk_cells(h3.latlng_to_cell(*PARIS, resolution), k)


def ring_positions(cells: np.ndarray, centre: int, k: int) -> np.ndarray:
    disk = {h3.str_to_int(c) for c in h3.grid_disk(h3.int_to_str(int(centre)), k)}
    return np.flatnonzero(np.isin(cells, list(disk)))


def esda_gi(cells: np.ndarray, y: np.ndarray, k: int, **options: object) -> esda.G_Local:
    """Gi* the METHODS way: libpysal W built straight from h3, self in the dict, star=None."""
    ids = [h3.int_to_str(int(c)) for c in cells]
    inside = set(ids)
    neighbours = {c: [d for d in h3.grid_disk(c, k) if d in inside] for c in ids}
    w = libpysal.weights.W(neighbours, id_order=ids, silence_warnings=True)
    options.setdefault("permutations", 0)
    return esda.G_Local(y, w, transform="B", star=None, **options)


def bh_reject(p: np.ndarray, alpha: float) -> np.ndarray:
    """Benjamini–Hochberg as METHODS §2 words it: reject the r smallest, r = max{i: p_(i) ≤ iα/m}."""
    order = np.argsort(p)
    m = p.size
    passed = np.flatnonzero(p[order] <= np.arange(1, m + 1) * alpha / m)
    reject = np.zeros(m, dtype=bool)
    if passed.size:
        reject[order[: passed[-1] + 1]] = True
    return reject


# --- Gi* -------------------------------------------------------------------------------------


def test_methods_check_19_cells() -> None:
    cells = disk_cells(METHODS_CENTRE, 2)
    y = np.array(METHODS_COUNTS)
    table = gi_star(cells, y, k=1)
    reference = esda_gi(cells, y, 1)
    np.testing.assert_allclose(table["z"], reference.Zs, rtol=0, atol=1e-9)
    np.testing.assert_allclose(table["p"], 2 * reference.p_norm, rtol=0, atol=1e-12)
    centre = table.loc[table["cell"] == h3.str_to_int(METHODS_CENTRE)].iloc[0]
    assert round(centre["z"], 4) == 1.4486
    assert round(centre["p"], 3) == 0.147
    assert centre["neighbours"] == 7 and centre["count"] == 9
    assert table["cell"].dtype == np.int64 and table["gi_bin"].dtype == np.int8
    assert list(table.columns) == ["cell", "count", "neighbours", "z", "p", "gi_bin", "label"]
    assert sorted(table["neighbours"].unique()) == [4, 5, 7]  # edge cells just have fewer


@pytest.mark.parametrize("k", [1, 2])
def test_equals_esda_on_larger_grid(k: int) -> None:
    cells = paris_grid(9, 6)
    rng = np.random.default_rng(7)
    y = rng.poisson(1.0, cells.size)
    y[ring_positions(cells, cells[40], 1)] += 6  # planted hotspot
    table = gi_star(cells, y, k=k)
    np.testing.assert_allclose(table["z"], esda_gi(cells, y, k).Zs, rtol=0, atol=1e-9)
    assert table["neighbours"].max() == 3 * k * (k + 1) + 1


@pytest.mark.filterwarnings("ignore:The alternative hypothesis:DeprecationWarning")
def test_permutation_p_matches_esda() -> None:
    cells = disk_cells(METHODS_CENTRE, 2)
    y = np.array(METHODS_COUNTS)
    table = gi_star(cells, y, permutations=199, seed=3)
    reference = esda_gi(cells, y, 1, permutations=199, seed=3, n_jobs=1)
    np.testing.assert_array_equal(table["p_sim"], reference.p_sim)
    assert table["p_sim"].between(1 / 200, 1).all()


def test_fdr_bins_equal_benjamini_hochberg_and_thresholds() -> None:
    rng = np.random.default_rng(11)
    z = np.concatenate([rng.normal(0, 1, 300), rng.normal(3, 1, 40), rng.normal(-3, 1, 20)])
    p = 2 * stats.norm.sf(np.abs(z))
    expected = np.zeros(z.size, dtype=np.int8)
    for level, alpha in ((1, 0.10), (2, 0.05), (3, 0.01)):
        reject = bh_reject(p, alpha)
        expected[reject] = level * np.sign(z[reject])
    got = significance_bins(z, p, fdr=True)
    np.testing.assert_array_equal(got, expected)
    assert set(np.unique(got)) == {-3, -2, -1, 0, 1, 2, 3}

    plain = significance_bins(z, p, fdr=False)
    thresholds = np.searchsorted([1.645, 1.960, 2.576], np.abs(z), side="right")
    np.testing.assert_array_equal(plain, thresholds * np.sign(z))  # no |z| in a rounding gap here
    assert (np.abs(plain) >= np.abs(got)).all()  # FDR only removes significance


def test_fdr_leaves_nan_out_of_the_family() -> None:
    z = np.array([np.nan, 3.0, 0.5, -2.9, np.nan])
    p = 2 * stats.norm.sf(np.abs(z))
    bins = significance_bins(z, p)
    assert bins[0] == 0 and bins[-1] == 0
    finite = np.isfinite(p)
    np.testing.assert_array_equal(bins[finite], significance_bins(z[finite], p[finite]))


def test_planted_hotspot_is_hot_99() -> None:
    cells = paris_grid(9, 6)
    y = np.random.default_rng(1).poisson(1.0, cells.size)
    centre = cells.size // 2
    y[ring_positions(cells, cells[centre], 1)] += 8
    table = gi_star(cells, y)
    assert table.loc[centre, "gi_bin"] == 3 and table.loc[centre, "label"] == "hot 99%"
    assert (table["gi_bin"] >= 0).all()


def test_planted_cold_area_is_cold() -> None:
    cells = paris_grid(9, 6)
    y = np.random.default_rng(2).poisson(30.0, cells.size)
    centre = cells.size // 2
    y[ring_positions(cells, cells[centre], 1)] = 0
    table = gi_star(cells, y, fdr=False)
    assert table.loc[centre, "gi_bin"] == -3 and table.loc[centre, "label"] == "cold 99%"
    assert gi_star(cells, y).loc[centre, "label"] == "cold 99%"


def test_nan_when_a_neighbourhood_is_the_whole_grid() -> None:
    cells = disk_cells(METHODS_CENTRE, 1)  # 7 cells: the centre's k=1 disk is the grid
    y = np.array([0, 0, 30, 1, 0, 2, 0])
    table = gi_star(cells, y, fdr=False)
    centre = table["cell"] == h3.str_to_int(METHODS_CENTRE)
    assert table.loc[centre, "z"].isna().all() and table.loc[centre, "p"].isna().all()
    assert (table.loc[centre, "label"] == "not significant").all()
    assert table.loc[~centre, "z"].notna().all()
    constant = gi_star(cells, np.full(7, 4))
    assert constant["z"].isna().all() and (constant["gi_bin"] == 0).all()


# --- Mann–Kendall ----------------------------------------------------------------------------


def test_mann_kendall_methods_check() -> None:
    series = np.array([-1, 4, 4, 2, 5, 6, 9, 4, 8, 10, 10, 14])  # one pair, one triple
    s, var_s, z, p, tau = mann_kendall(series)
    assert (s[0], var_s[0]) == (50, 208)
    assert round(z[0], 4) == 3.3975 and f"{p[0]:.2e}" == "6.80e-04"
    reference = pymannkendall.original_test(series)
    assert (reference.s, reference.var_s) == (50, 208)
    np.testing.assert_allclose(
        [z[0], p[0], tau[0]], [reference.z, reference.p, reference.Tau], rtol=0, atol=1e-12
    )


@pytest.mark.parametrize("steps", [3, 10, 36])
def test_vectorised_mann_kendall_equals_pymannkendall(steps: int) -> None:
    rng = np.random.default_rng(steps)
    series = np.vstack(
        [
            rng.integers(0, 4, (60, steps)),  # many ties
            rng.normal(0, 1, (20, steps)).round(1),
            rng.normal(0, 1, (20, steps)) + np.linspace(0, 2, steps),
            np.full((1, steps), 2.0),  # all tied
        ]
    ).astype(float)
    s, var_s, z, p, tau = mann_kendall(series)
    for i, row in enumerate(series):
        ref = pymannkendall.original_test(row)
        got = np.array([s[i], var_s[i], z[i], p[i], tau[i]])
        np.testing.assert_allclose(
            got, [ref.s, ref.var_s, ref.z, ref.p, ref.Tau], rtol=0, atol=1e-12
        )


def test_mann_kendall_nan_row() -> None:
    s, _, z, p, tau = mann_kendall(np.array([[1.0, np.nan, 3.0], [1.0, 2.0, 3.0]]))
    assert np.isnan([s[0], z[0], p[0], tau[0]]).all() and s[1] == 3


# --- classification --------------------------------------------------------------------------

H, h, C, c, o = 3, 2, -3, -2, 0  # hot 99 / hot 95 / cold 99 / cold 95 / nothing


@pytest.mark.parametrize(
    ("bins", "sign", "significant", "expected"),
    [
        ([o] * 9 + [H], 0, False, "new hot spot"),
        ([o, 1, -1] + [o] * 6 + [h], 1, True, "new hot spot"),  # 90 % bins don't count
        ([o] * 6 + [h, H, h, h], 1, True, "consecutive hot spot"),
        ([h] * 10, 1, True, "intensifying hot spot"),
        ([o] + [h] * 9, 1, True, "intensifying hot spot"),  # exactly 90 %
        ([h] * 10, 0, False, "persistent hot spot"),
        ([h] * 10, 1, False, "persistent hot spot"),  # trend not significant
        ([H] * 10, -1, True, "diminishing hot spot"),
        ([o, h, o, h, h, o, o, h, o, h], 1, True, "sporadic hot spot"),
        ([h, h, h, o, o, o, o, h, h, h], 0, False, "sporadic hot spot"),  # hot before the run
        ([o, o, o, o, o, o, o, o, h, H], 0, False, "consecutive hot spot"),
        ([o, o, o, o, o, o, o, c, h, h], 0, False, "oscillating hot spot"),  # cold before the run
        ([c, o, h, o, h], 0, False, "oscillating hot spot"),
        ([h] * 9 + [o], -1, True, "historical hot spot"),
        ([h] * 8 + [o, o], 0, False, "no pattern"),  # 80 %, final not hot
        ([o] * 9 + [C], 0, False, "new cold spot"),
        ([o] * 7 + [c, c, C], 0, False, "consecutive cold spot"),
        ([c] * 10, -1, True, "intensifying cold spot"),  # z trending down = colder
        ([c] * 10, 1, True, "diminishing cold spot"),
        ([c] * 10, 0, False, "persistent cold spot"),
        ([c, o, c, c, o, c], 0, False, "sporadic cold spot"),
        ([h, o, c, o, c], 0, False, "oscillating cold spot"),
        ([C] * 9 + [o], 0, False, "historical cold spot"),
        ([C] * 9 + [h], 0, False, "historical cold spot"),  # share rules before final-step ones
        ([h] * 9 + [c], 0, False, "historical hot spot"),  # its mirror
        ([o] * 10, 0, False, "no pattern"),
        ([o, h, o, o, o, c, o, o, o, o], 1, True, "no pattern"),
    ],
)
def test_classify_series(bins: list[int], sign: int, significant: bool, expected: str) -> None:
    assert expected in PATTERNS
    assert classify_series(np.array(bins), sign, significant) == expected


def test_classify_series_level() -> None:
    assert classify_series(np.array([0, 0, 1]), 0, False) == "no pattern"
    assert classify_series(np.array([0, 0, 1]), 0, False, level=1) == "new hot spot"


# --- space-time Gi* and emerging hot spots ---------------------------------------------------


def test_space_time_weights_definition() -> None:
    cells = disk_cells(METHODS_CENTRE, 2)
    steps, n = 4, cells.size
    w = space_time_weights(cells, steps, k=1, time_k=2).toarray()
    spatial = space_time_weights(cells, 1, k=1, time_k=0).toarray()
    for t in range(steps):
        for s in range(steps):
            block = w[t * n : (t + 1) * n, s * n : (s + 1) * n]
            np.testing.assert_array_equal(block, spatial if t - 2 <= s <= t else 0)


def test_space_time_gi_star_equals_esda() -> None:
    cells = disk_cells(METHODS_CENTRE, 2)
    steps, time_k = 5, 1
    cube = np.random.default_rng(4).poisson(1.5, (steps, cells.size))
    ids = [h3.int_to_str(int(c)) for c in cells]
    inside = set(ids)
    keys = [(t, c) for t in range(steps) for c in ids]  # t-major, like cube.ravel()
    neighbours = {
        (t, c): [
            (s, d)
            for s in range(max(0, t - time_k), t + 1)
            for d in h3.grid_disk(c, 1)
            if d in inside
        ]
        for t, c in keys
    }
    w = libpysal.weights.W(neighbours, id_order=keys, silence_warnings=True)
    reference = esda.G_Local(cube.ravel(), w, transform="B", star=None, permutations=0)
    z = space_time_gi_star(cells, cube, k=1, time_k=time_k)
    np.testing.assert_allclose(z.ravel(), reference.Zs, rtol=0, atol=1e-9)


def test_emerging_planted_clusters() -> None:
    cells = paris_grid(9, 9)  # 271 cells
    steps = 20
    rng = np.random.default_rng(5)
    cube = rng.poisson(1.0, (steps, cells.size)).astype(float)
    centre = h3.latlng_to_cell(*PARIS, 9)
    offsets = {
        "persistent": (5, 0),
        "intensifying": (-5, 0),
        "new": (0, 5),
        "historical": (0, -5),
        "cold": (0, 0),
    }
    i0, j0 = h3.cell_to_local_ij(centre, centre)  # local IJ is anchored at the base cell, not at 0
    sites = {
        name: h3.local_ij_to_cell(centre, i0 + di, j0 + dj) for name, (di, dj) in offsets.items()
    }
    assert (
        min(h3.grid_distance(a, b) for a in sites.values() for b in sites.values() if a != b) >= 4
    )
    sites = {name: h3.str_to_int(site) for name, site in sites.items()}
    rows = {name: ring_positions(cells, site, 1) for name, site in sites.items()}
    cube[:, rows["persistent"]] += 6
    cube[:, rows["intensifying"]] += np.linspace(2, 14, steps)[:, None]
    cube[-1, rows["new"]] += 12
    cube[:-2, rows["historical"]] += 6  # hot until 2 steps before the end

    table = emerging_hotspots(cells, cube, k=1, time_k=1).set_index("cell")
    assert table.loc[sites["persistent"], "pattern"] == "persistent hot spot"
    assert table.loc[sites["intensifying"], "pattern"] == "intensifying hot spot"
    assert table.loc[sites["intensifying"], "trend"] == "up"
    assert table.loc[sites["new"], "pattern"] == "new hot spot"
    assert table.loc[sites["new"], "final_bin"] >= 2
    assert table.loc[sites["historical"], "pattern"] == "historical hot spot"
    assert table.loc[sites["persistent"], "hot_share"] == 1.0
    assert list(table.columns) == [
        "pattern",
        "hot_share",
        "cold_share",
        "final_bin",
        "mk_tau",
        "mk_p",
        "trend",
    ]

    high = rng.poisson(20.0, (steps, cells.size)).astype(float)
    high[:, rows["cold"]] = 0
    cold = emerging_hotspots(cells, high).set_index("cell").loc[sites["cold"]]
    assert cold["pattern"] == "persistent cold spot" and cold["cold_share"] == 1.0


def test_emerging_nothing_planted_is_mostly_no_pattern() -> None:
    cells = paris_grid(9, 6)
    cube = np.random.default_rng(6).poisson(2.0, (12, cells.size))
    table = emerging_hotspots(cells, cube)
    assert (table["pattern"] == "no pattern").mean() > 0.9
    assert table["pattern"].isin(PATTERNS).all() and len(PATTERNS) == 17
    constant = emerging_hotspots(cells, np.ones((12, cells.size)))
    assert (constant["pattern"] == "no pattern").all() and constant["mk_p"].isna().all()


# --- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"k": 0}, "k must be"),
        ({"k": 11}, "k must be"),
        ({"k": 1.5}, "k must be"),
        ({"k": True}, "k must be"),
        ({"counts": np.ones(18)}, "19 values"),
        ({"counts": np.ones((1, 19))}, "19 values"),
        ({"cells": np.arange(2), "counts": np.ones(2)}, "at least 3"),
        ({"counts": np.r_[-1.0, np.ones(18)]}, "non-negative"),
        ({"counts": np.r_[np.nan, np.ones(18)]}, "finite"),
        ({"counts": np.r_[np.inf, np.ones(18)]}, "finite"),
        ({"cells": "reverse"}, "sorted"),
        ({"cells": "duplicate"}, "duplicates"),
        ({"cells": "float"}, "int64"),
        ({"alpha_levels": (0.05, 0.10)}, "decreasing"),
        ({"permutations": -1}, "permutations"),
    ],
)
def test_gi_star_bad_arguments(change: dict[str, object], message: str) -> None:
    cells = disk_cells(METHODS_CENTRE, 2)
    arguments: dict[str, object] = {"cells": cells, "counts": np.ones(19), "k": 1}
    variants = {
        "reverse": cells[::-1],
        "duplicate": np.r_[cells[:18], cells[17]],
        "float": cells.astype(float),
    }
    arguments.update(
        {
            key: variants.get(value, value) if isinstance(value, str) else value
            for key, value in change.items()
        }
    )
    with pytest.raises(InvalidArgumentError, match=message) as error:
        gi_star(arguments.pop("cells"), arguments.pop("counts"), **arguments)
    assert isinstance(error.value, ValueError)


@pytest.mark.parametrize(
    ("cube", "options", "message"),
    [
        (np.ones(19), {}, "19 values"),
        (np.ones((4, 18)), {}, "19 values"),
        (np.ones((1, 19)), {}, "at least 2 time steps"),
        (np.ones((4, 19)), {"time_k": 4}, "time_k must be"),
        (np.ones((4, 19)), {"time_k": -1}, "time_k must be"),
        (np.ones((4, 19)), {"k": 0}, "k must be"),
        (np.ones((4, 19)), {"alpha": 0.0}, "alpha must be"),
        (np.ones((4, 19)), {"trend_alpha": 1.0}, "trend_alpha must be"),
        (-np.ones((4, 19)), {}, "non-negative"),
    ],
)
def test_emerging_bad_arguments(cube: np.ndarray, options: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        emerging_hotspots(disk_cells(METHODS_CENTRE, 2), cube, **options)

