"""Calibrated noise for the public release (OpenDP discrete Laplace); the ledger is in ``ledger``.

Every published count comes from one OpenDP measurement per release: a composition of two
queries over the month's events (one row per event), each ``count_by_categories`` over a
public, data-independent list of categories followed by ``laplace`` (integer counts, hence
the discrete Laplace). Scales come from ``binary_search_param`` so that the library's own
privacy map says ``map(c) <= epsilon``: ``scale = c / epsilon`` can miss that by one ulp,
and so can the sum of two query losses (0.8 + 0.2 maps to 1.0000000000000002).

No seed anywhere: OpenDP draws from the operating system's CSPRNG.

The tails of sums of discrete Laplace noise give the display thresholds: a count is shown
only when its noisy value reaches ``k - 1 + j``, where ``j`` is the smallest integer with
P(noise >= j) <= delta, so a true count of 1..k-1 shows with probability at most delta.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import opendp.prelude as dp
from scipy import stats

from geo_monitor.errors import InvalidArgumentError

dp.enable_features("contrib")

INCIDENTS, OUTREACH = "incidents", "outreach"


def _space() -> tuple:
    return dp.vector_domain(dp.atom_domain(T=str)), dp.symmetric_distance()


def count_measurement(categories: list[str], scale: float) -> dp.Measurement:
    """Return the measurement: counts of rows per category (others dropped), plus discrete Laplace noise.

    Parameters
    ----------
    categories
        The public, fixed list of categories (never taken from the data).
    scale
        The noise scale ``b``: P(noise = z) is proportional to exp(-|z| / b).
    """
    counts = _space() >> dp.t.then_count_by_categories(categories=categories, null_category=False)
    return counts >> dp.m.then_laplace(scale=scale)


def calibrate_scale(categories: list[str], contributions: int, epsilon: float) -> float:
    """Return the smallest scale (to the search's tolerance) whose ``map(contributions)`` is at most epsilon."""
    return dp.binary_search_param(lambda s: count_measurement(categories, s), d_in=contributions, d_out=epsilon)


@dataclass(frozen=True)
class NoisePlan:
    """Scales and privacy losses of one release, as the library's privacy maps state them."""

    contributions: int
    scale_incidents: float
    scale_outreach: float
    epsilon_incidents: float
    epsilon_outreach: float
    epsilon: float  # the composition's map(contributions): the release's whole loss


def plan_noise(incident_categories: list[str], outreach_categories: list[str], *, contributions: int,
               epsilon: float, outreach_share: float) -> NoisePlan:
    """Calibrate both queries so that their composition spends at most ``epsilon``.

    The incident query gets ``epsilon * (1 - outreach_share)``, the outreach query what its
    map leaves, checked on the composition itself so rounding cannot push it past epsilon.
    """
    if contributions < 1:
        raise InvalidArgumentError(f"release_contributions must be at least 1, got {contributions}")
    if not epsilon > 0 or not math.isfinite(epsilon):
        raise InvalidArgumentError(f"release_epsilon must be a positive number, got {epsilon}")
    if not 0 < outreach_share < 1:
        raise InvalidArgumentError(f"release_outreach_share must lie strictly between 0 and 1, got {outreach_share}")
    b_inc = calibrate_scale(incident_categories, contributions, epsilon * (1 - outreach_share))
    incidents = count_measurement(incident_categories, b_inc)
    b_out = calibrate_scale(outreach_categories, contributions, epsilon - incidents.map(contributions))
    # The composition adds the two losses with upward rounding: widen the outreach scale by
    # a few ulps until the library's own map of the whole release stays within epsilon.
    while release_measurement(incident_categories, outreach_categories, b_inc, b_out).map(contributions) > epsilon:
        b_out = math.nextafter(b_out, math.inf)
    whole = release_measurement(incident_categories, outreach_categories, b_inc, b_out)
    return NoisePlan(
        contributions=contributions,
        scale_incidents=b_inc,
        scale_outreach=b_out,
        epsilon_incidents=incidents.map(contributions),
        epsilon_outreach=count_measurement(outreach_categories, b_out).map(contributions),
        epsilon=whole.map(contributions),
    )


def release_measurement(incident_categories: list[str], outreach_categories: list[str],
                        scale_incidents: float, scale_outreach: float) -> dp.Measurement:
    """Return the composed measurement of a release (incident cells, then outreach arrondissements)."""
    return dp.c.make_composition([count_measurement(incident_categories, scale_incidents),
                                  count_measurement(outreach_categories, scale_outreach)])


def draw(measurement: dp.Measurement, rows: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Run a release measurement once on its rows; return the noisy (incident, outreach) vectors."""
    incidents, outreach = measurement(rows)
    return np.asarray(incidents, dtype=np.int64), np.asarray(outreach, dtype=np.int64)


# --- tails of discrete Laplace sums ----------------------------------------------------------


def ratio(scale: float) -> float:
    """Return t = exp(-1/b): P(Z = z) = (1 - t) / (1 + t) * t^|z|."""
    return math.exp(-1.0 / scale)


def variance(scale: float) -> float:
    """Return the variance 2t / (1 - t)^2 of one discrete Laplace draw."""
    t = ratio(scale)
    return 2 * t / (1 - t) ** 2


def tail(scale: float, m: int, a: int) -> float:
    """Return P(Z_1 + ... + Z_m >= a) for m independent discrete Laplace draws of scale b.

    A discrete Laplace draw is the difference of two geometric draws, so the sum is the
    difference of two negative binomials NB(m, 1 - t): the tail is an exact series.
    For m = 1 it equals t^a / (1 + t) (a >= 0).
    """
    if m < 1:
        raise InvalidArgumentError(f"a sum needs at least one draw, got m = {m}")
    p = 1.0 - ratio(scale)
    top = int(stats.nbinom.isf(1e-18, m, p)) + 2
    y = np.arange(top + 1)
    return float(np.sum(stats.nbinom.pmf(y, m, p) * stats.nbinom.sf(a + y - 1, m, p)))


@lru_cache(maxsize=4096)
def threshold_offset(scale: float, m: int, delta: float) -> int:
    """Return the smallest j >= 1 with P(sum of m draws >= j) <= delta."""
    if not 0 < delta < 1:
        raise InvalidArgumentError(f"release_display_delta must lie strictly between 0 and 1, got {delta}")
    high = 1
    while tail(scale, m, high) > delta:
        high *= 2
    low = high // 2  # tail(low) > delta unless low == 0
    while high - low > 1:
        middle = (low + high) // 2
        if tail(scale, m, middle) > delta:
            low = middle
        else:
            high = middle
    return max(high, 1)


def display_threshold(k: int, scale: float, m: int, delta: float) -> int:
    """Return tau: a sum of m noisy cells is shown only when it reaches tau.

    A true count of at most k - 1 needs noise >= tau - (k - 1) = j to reach it, which
    happens with probability at most delta.
    """
    return k - 1 + threshold_offset(scale, m, delta)


def noise_floor(scale: float, m: int, delta: float) -> int:
    """Return the lowest value the noise of a sum of m draws takes but with probability delta.

    An attacker may assume a suppressed count is at least this (true counts are >= 0 and the
    noise is symmetric): the disclosure audit gives them that knowledge.
    """
    return 1 - threshold_offset(scale, m, delta)
