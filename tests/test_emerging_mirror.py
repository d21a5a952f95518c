"""Emerging hot spot patterns are symmetric: a negated history and trend give the mirrored one."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo_monitor.analysis.emerging import NO_PATTERN, PATTERNS, classify_series


def mirrored(pattern: str) -> str:
    """Return the pattern with hot and cold swapped ("no pattern" stays)."""
    swap = {"hot": "cold", "cold": "hot"}
    return " ".join(swap.get(word, word) for word in pattern.split())


def test_mirrored_is_an_involution_on_patterns() -> None:
    assert mirrored("historical cold spot") == "historical hot spot"
    assert mirrored(NO_PATTERN) == NO_PATTERN
    assert sorted(mirrored(p) for p in PATTERNS) == sorted(PATTERNS)
    assert all(mirrored(mirrored(p)) == p for p in PATTERNS)


bin_values = st.integers(-3, 3)
# Random lists rarely reach a 90 % share, so half the histories are a long run then a short tail.
histories = st.lists(bin_values, min_size=1, max_size=40) | st.builds(
    lambda value, length, tail: [value] * length + tail,
    bin_values,
    st.integers(1, 36),
    st.lists(bin_values, max_size=4),
)


@settings(max_examples=500)
@given(
    bins=histories,
    trend_sign=st.sampled_from([-1, 0, 1]),
    trend_significant=st.booleans(),
    level=st.integers(1, 3),
)
def test_negated_history_gives_mirrored_pattern(
    bins: list[int], trend_sign: int, trend_significant: bool, level: int
) -> None:
    history = np.array(bins)
    pattern = classify_series(history, trend_sign, trend_significant, level=level)
    negated = classify_series(-history, -trend_sign, trend_significant, level=level)
    assert pattern in PATTERNS
    assert negated == mirrored(pattern)


def test_every_history_of_2_to_11_steps_mirrors() -> None:
    """All 3^T significance histories (level 1) of 2..11 steps × trend down/none/up."""
    trends = ((-1, True), (0, False), (1, True))
    for steps in range(2, 12):
        for history in itertools.product((-1, 0, 1), repeat=steps):
            bins = np.array(history)
            if tuple(-bins) < history:  # each pair once; a history equal to its negation is all 0
                continue
            for sign, significant in trends:
                pattern = classify_series(bins, sign, significant, level=1)
                negated = classify_series(-bins, -sign, significant, level=1)
                assert negated == mirrored(pattern), (history, sign)


# The 12 histories × trends of 10-11 steps that broke the mirror when the hot side was tried
# first: ≥ 90 % on one side and the opposite sign at the final step. Historical wins (ArcGIS
# also calls the other side's final step oscillating: the share rules come first, both sides).
@pytest.mark.parametrize("sign", [-1, 0, 1])
@pytest.mark.parametrize(
    ("bins", "expected"),
    [
        ([1] * 9 + [-1], "historical hot spot"),
        ([-1] * 9 + [1], "historical cold spot"),
        ([1] * 10 + [-1], "historical hot spot"),
        ([-1] * 10 + [1], "historical cold spot"),
    ],
)
def test_share_rules_win_on_both_sides(bins: list[int], sign: int, expected: str) -> None:
    assert classify_series(np.array(bins), sign, sign != 0, level=1) == expected


@pytest.mark.parametrize(
    ("bins", "expected"),
    [
        ([-1, 0, 0, 1], "oscillating hot spot"),  # ArcGIS's text: also new (never hot before)
        ([1, 0, 0, -1], "oscillating cold spot"),
        ([-1, 0, 1, 1], "oscillating hot spot"),  # ArcGIS's text: also consecutive
        ([1, 0, -1, -1], "oscillating cold spot"),
        ([0, 0, 0, 1], "new hot spot"),
        ([0, 0, -1, -1], "consecutive cold spot"),
    ],
)
def test_new_and_consecutive_mean_nothing_significant_before(
    bins: list[int], expected: str
) -> None:
    assert classify_series(np.array(bins), 0, False, level=1) == expected
