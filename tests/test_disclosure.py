"""OpenDP calibration and noise, display thresholds, secondary suppression and its LP audit.

No database: these are the release's building blocks on hand-built and generated tables.
The LP intervals are recomputed here variable by variable with a plain ``linprog`` loop,
independently of the library's class-sharing shortcut.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from scipy.optimize import linprog

from geo_monitor.privacy import disclosure, noise
from geo_monitor.privacy.disclosure import (
    DisclosureError,
    hierarchy,
    lp_intervals,
    protect,
    protect_noisy,
)

CATEGORIES = [f"g|{i:x}" for i in range(50)]
PAIRS = [(c, eps) for c in (1, 2, 3, 4, 5, 7, 10) for eps in (0.1, 0.3, 0.5, 0.7, 1.0)]


# --- OpenDP ----------------------------------------------------------------------------------


def test_naive_scale_fails_the_privacy_map_for_some_pairs() -> None:
    # METHODS.md pitfall 12: scale = c / eps can map to eps + 1 ulp.
    failing = [(c, eps) for c, eps in PAIRS if noise.count_measurement(CATEGORIES, c / eps).map(c) > eps]
    assert (1, 0.7) in failing and len(failing) >= 5


@pytest.mark.parametrize(("c", "eps"), PAIRS)
def test_calibrated_scale_meets_the_map_and_is_the_smallest(c: int, eps: float) -> None:
    b = noise.calibrate_scale(CATEGORIES, c, eps)
    assert noise.count_measurement(CATEGORIES, b).map(c) <= eps
    assert noise.count_measurement(CATEGORIES, b * (1 - 1e-6)).map(c) > eps
    assert b == pytest.approx(c / eps, rel=1e-9)


def test_count_sensitivity_is_the_contribution_bound() -> None:
    import opendp.prelude as dp

    space = dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance()
    counts = space >> dp.t.then_count_by_categories(categories=CATEGORIES, null_category=False)
    assert [counts.map(c) for c in (1, 3, 7)] == [1, 3, 7]


@pytest.mark.parametrize(("c", "eps", "share"), [(1, 1.0, 0.2), (3, 0.7, 0.2), (2, 0.3, 0.5), (7, 0.7, 0.1)])
def test_release_composition_stays_within_epsilon(c: int, eps: float, share: float) -> None:
    outreach = [f"outreach|{a}" for a in (75110, 75118, 75119, 75120)]
    plan = noise.plan_noise(CATEGORIES, outreach, contributions=c, epsilon=eps, outreach_share=share)
    whole = noise.release_measurement(CATEGORIES, outreach, plan.scale_incidents, plan.scale_outreach)
    assert whole.map(c) == plan.epsilon <= eps
    assert plan.epsilon_incidents == pytest.approx(eps * (1 - share))
    assert plan.epsilon_incidents + plan.epsilon_outreach == pytest.approx(eps)


def test_separately_calibrated_queries_can_overspend_when_composed() -> None:
    # Why plan_noise checks the composition: 0.8 + 0.2 maps to 1.0000000000000002.
    import opendp.prelude as dp

    a = noise.count_measurement(CATEGORIES, noise.calibrate_scale(CATEGORIES, 1, 0.8))
    b = noise.count_measurement(["o|1"], noise.calibrate_scale(["o|1"], 1, 0.2))
    assert dp.c.make_composition([a, b]).map(1) > 1.0


@pytest.mark.parametrize("scale", [1.25, 5.0])
def test_noise_distribution(scale: float) -> None:
    n = 40_000
    measurement = noise.count_measurement([f"c{i}" for i in range(n)], scale)
    draws = np.asarray(measurement([]), dtype=float)  # all true counts are 0: pure noise
    var = noise.variance(scale)
    assert abs(draws.mean()) < 5 * math.sqrt(var / n)
    assert draws.var() == pytest.approx(var, rel=0.06)
    t = noise.ratio(scale)
    for m in (1, 2, 4):
        p = t**m / (1 + t)
        assert abs((draws >= m).mean() - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_noise_is_not_seeded() -> None:
    measurement = noise.count_measurement(CATEGORIES, 2.0)
    assert measurement([]) != measurement([])


# --- tails and thresholds ----------------------------------------------------------------------


def _pmf(scale: float, width: int = 400) -> np.ndarray:
    t = noise.ratio(scale)
    z = np.arange(-width, width + 1)
    return (1 - t) / (1 + t) * t ** np.abs(z)


@pytest.mark.parametrize("scale", [0.7, 1.25, 5.0])
def test_tail_matches_closed_form_and_convolution(scale: float) -> None:
    t = noise.ratio(scale)
    for a in (0, 1, 3, 10):
        assert noise.tail(scale, 1, a) == pytest.approx(t**a / (1 + t), rel=1e-9)
    pmf = _pmf(scale)
    twice, thrice = np.convolve(pmf, pmf), np.convolve(np.convolve(pmf, pmf), pmf)
    for m, dist in ((2, twice), (3, thrice)):
        centre = len(dist) // 2
        for a in (1, 5, 12):
            assert noise.tail(scale, m, a) == pytest.approx(dist[centre + a:].sum(), rel=1e-6)


@pytest.mark.parametrize(("scale", "m"), [(1.25, 1), (1.25, 70), (5.0, 4), (2.5, 300)])
def test_threshold_offset_is_minimal(scale: float, m: int) -> None:
    delta = 1e-6
    j = noise.threshold_offset(scale, m, delta)
    assert noise.tail(scale, m, j) <= delta < noise.tail(scale, m, j - 1)
    assert noise.display_threshold(11, scale, m, delta) == 10 + j
    assert noise.noise_floor(scale, m, delta) == 1 - j


# --- secondary suppression and the audit -------------------------------------------------------


def brute_intervals(values: np.ndarray, suppressed: np.ndarray, equations: list, lower: np.ndarray,
                    upper: np.ndarray) -> dict[int, tuple[float, float]]:
    """One pair of LPs per suppressed node, nothing shared."""
    hidden = np.flatnonzero(suppressed)
    a_eq, b_eq = [], []
    for parent, children in equations:
        row = np.zeros(len(hidden))
        rhs = 0.0
        for node, coef in [(c, 1.0) for c in children] + [(parent, -1.0)]:
            if suppressed[node]:
                row[list(hidden).index(node)] = coef
            else:
                rhs -= coef * values[node]
        if row.any():
            a_eq.append(row)
            b_eq.append(rhs)
    bounds = [(lower[n] if np.isfinite(lower[n]) else None, upper[n] if np.isfinite(upper[n]) else None)
              for n in hidden]
    out = {}
    for j, node in enumerate(hidden):
        ends = []
        for sense in (1, -1):
            c = np.zeros(len(hidden))
            c[j] = sense
            r = linprog(c, A_eq=np.array(a_eq), b_eq=b_eq, bounds=bounds, method="highs")
            ends.append(-sense * np.inf if r.status == 3 else sense * r.fun)
        out[int(node)] = (ends[0], ends[1])
    return out


def classic(values: list[int]) -> tuple[disclosure.Hierarchy, np.ndarray, np.ndarray]:
    table = hierarchy(np.array(values))
    return table, np.zeros(len(table.values)), np.full(len(table.values), np.inf)


def test_methods_differencing_example() -> None:
    # METHODS.md §5: cells (2, 7, 12, 30), total 51, k = 5.
    table, lower, upper = classic([2, 7, 12, 30])
    only_two = np.array([True, False, False, False, False])
    low, high = lp_intervals(table.values, only_two, table.equations, lower, upper)
    assert (low[0], high[0]) == (2, 2)  # 51 - 7 - 12 - 30
    both = np.array([True, True, False, False, False])
    low, high = lp_intervals(table.values, both, table.equations, lower, upper)
    assert (low[0], high[0], low[1], high[1]) == (0, 9, 0, 9)
    result = protect(table.values, only_two, table.equations, lower, upper, k=5)
    assert result.suppressed.tolist() == both.tolist()  # the smallest sibling, 7
    assert result.secondary.tolist() == [False, True, False, False, False]


def test_secondary_prefers_last_months_suppression() -> None:
    table, lower, upper = classic([2, 7, 12, 30])
    prefer = np.array([False, False, True, False, False])
    result = protect(table.values, table.values == 2, table.equations, lower, upper, k=5, prefer=prefer)
    assert np.flatnonzero(result.suppressed).tolist() == [0, 2]


def test_parent_suppressed_only_as_last_resort_and_cascades() -> None:
    # Arrondissement 0 has one cell (primary): its total must go, then a sibling total.
    table = hierarchy(np.array([3, 40, 50, 60]), np.array([0, 1, 1, 2]), 3)
    lower, upper = np.zeros(len(table.values)), np.full(len(table.values), np.inf)
    primary = np.zeros(len(table.values), dtype=bool)
    primary[0] = True
    result = protect(table.values, primary, table.equations, lower, upper, k=5)
    assert result.suppressed[4] and result.suppressed[[5, 6]].sum() == 1  # parent, then a sibling parent
    assert not result.suppressed[7]
    assert (result.high - result.low)[result.suppressed].min() >= 5


def test_unprotectable_table_is_refused() -> None:
    table = hierarchy(np.array([2, 3, 4]))
    lower, upper = np.zeros(4), np.full(4, 5.0)  # nothing can ever be 10 wide inside [0, 5]
    with pytest.raises(DisclosureError, match="refused"):
        protect(table.values, np.array([True, False, False, False]), table.equations, lower, upper, k=10)


def test_too_small_parent_is_refused() -> None:
    # A parent of two hexagons hidden by its threshold (37 < 39) beside a child shown from 36:
    # the other child is then known to be at most 38 - 36 = 2, above its floor -16: 18 wide,
    # enough for k = 11, not for k = 20, and nothing more can be hidden. The release is refused.
    noisy = np.array([15, 8, 15, 0, 79, 41, 79, 37, 15, 0, 7])
    parent = np.arange(11) % 4
    assert noise.threshold_offset(1.25, 2, 1e-6) - 2 == 18
    protect_noisy(noisy, parent, 4, scale=1.25, k=11, delta=1e-6)
    with pytest.raises(DisclosureError, match="less than k = 20"):
        protect_noisy(noisy, parent, 4, scale=1.25, k=20, delta=1e-6)


@st.composite
def classic_tables(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    n_parents = draw(st.integers(1, 4))
    n = draw(st.integers(n_parents, 12))
    parent = np.array(draw(st.permutations(list(range(n_parents)) + draw(
        st.lists(st.integers(0, n_parents - 1), min_size=n - n_parents, max_size=n - n_parents)))))
    leaves = np.array(draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)))
    return leaves, parent, draw(st.integers(2, 11))


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(classic_tables())
def test_classic_tables_are_protected(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    leaves, parent, k = case
    table = hierarchy(leaves, parent, int(parent.max()) + 1)
    lower, upper = np.zeros(len(table.values)), np.full(len(table.values), np.inf)
    primary = (table.values > 0) & (table.values < k)
    try:
        result = protect(table.values, primary, table.equations, lower, upper, k)
    except DisclosureError:
        assert table.values[-1] < k  # only a tiny whole table cannot be protected in [0, inf)
        return
    for node, (low, high) in brute_intervals(table.values, result.suppressed, table.equations,
                                            lower, upper).items():
        assert high - low >= k - 1e-6, (node, low, high)
        assert (result.low[node], result.high[node]) == pytest.approx((low, high), abs=1e-6)
    assert result.suppressed[primary].all()


@st.composite
def noisy_tables(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, int]:
    n_parents = draw(st.integers(1, 4))
    n = draw(st.integers(n_parents, 30))
    parent = np.arange(n) % n_parents
    shape = st.sampled_from([0, 0, 1, 3, 8, 15, 40, 80])
    true = np.array([draw(shape) for _ in range(n)])
    return true, parent, draw(st.sampled_from([5, 11, 20]))


@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(noisy_tables())
def test_noisy_tables_are_protected(case: tuple[np.ndarray, np.ndarray, int]) -> None:
    true, parent, k = case
    scale, delta = 1.25, 1e-6
    cats = [str(i) for i in range(len(true))]
    noisy = np.asarray(noise.count_measurement(cats, scale)([str(i) for i, n in enumerate(true) for _ in range(n)]))
    try:
        result = protect_noisy(noisy, parent, int(parent.max()) + 1, scale=scale, k=k, delta=delta)
    except DisclosureError:
        # Only possible when a parent sums so few leaves that its own threshold leaves less
        # than k of room (see test_too_small_parent_is_refused); never with >= 3 leaves here.
        sizes = np.bincount(parent)
        assert min(noise.threshold_offset(scale, int(m), delta) - 2 for m in sizes) < k
        return
    table, protection = result.table, result.protection
    # Published: non-negative integers from the threshold on, parents are sums of children.
    shown = ~protection.suppressed
    assert (table.values[shown] >= result.thresholds[shown]).all() and (table.values[shown] >= 0).all()
    for p, children in table.equations:
        assert table.values[p] == table.values[children].sum()
    # Every suppressed node stays at least k wide under the attacker's bounds (reason known).
    floors = np.array([noise.noise_floor(scale, int(m), delta) for m in table.size])
    _, lower, upper = disclosure.noisy_bounds(table.values, result.thresholds, floors)
    for node, (low, high) in brute_intervals(table.values, protection.suppressed, table.equations,
                                            lower, upper).items():
        assert math.floor(high + 1e-7) - math.ceil(low - 1e-7) >= k, (node, low, high)
