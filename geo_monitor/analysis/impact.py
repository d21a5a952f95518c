"""Works impact: events around a works site before and after, with WDQ and WDD (docs/methods.md §4).

Areas are H3 cells at one resolution: A the site (overlap cover of its polygon), B the
displacement ring ``grid_disk(A, ring) - A`` and C the control, the rest of the study area
beyond ``ring + gap`` rings. Two place-based measures compare them:

- WDQ (Bowers & Johnson 2003): descriptive, no standard error, meaningless unless A fell;
- WDD (Wheeler & Ratcliffe 2018): a difference in differences with a Poisson standard
  error. The normal approximation fails on small counts, so below ``MIN_COUNT`` events in
  any area and period the result gives counts and an exact-test note, never a z or an
  interval. Overdispersed counts make the Poisson SE too small: read a borderline z warily.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
from scipy import stats

from geo_monitor import hexagons
from geo_monitor.analysis.counts import category_ids, check_resolution, count_cells
from geo_monitor.calendar import PARIS, Window
from geo_monitor.errors import InvalidArgumentError, NotFoundError
from geo_monitor.grid import study_grid
from geo_monitor.settings import Settings, get_settings
from geo_monitor.store.reference import require_loaded

MIN_COUNT = 10  # docs/methods.md §4: no z or CI unless every area-period count reaches this
UNSTABLE_SM = 0.05  # WDQ flagged unstable when A/C moved by less than 5 % of its value before
AREAS = {"A": "treated (works site)", "B": "displacement ring", "C": "control"}
WindowLike = Window | tuple[date | str, date | str]


@dataclass(frozen=True)
class WDQResult:
    """Weighted Displacement Quotient: SM, BDM, their ratio and what it means."""

    counts: tuple[float, float, float, float, float, float]  # A0, A1, B0, B1, C0, C1
    sm: float
    bdm: float
    wdq: float  # NaN unless interpretable
    interpretable: bool
    unstable: bool
    small: bool  # some count below MIN_COUNT: descriptive only
    interpretation: str

    def summary(self) -> list[str]:
        """Return short readable lines."""
        if math.isnan(self.sm):
            return [f"WDQ (Bowers & Johnson): {self.interpretation}"]
        body = f"WDQ {self.wdq:.2f}: {self.interpretation}" if self.interpretable else self.interpretation
        return [f"WDQ (Bowers & Johnson): success measure SM {self.sm:+.3g}, buffer displacement BDM {self.bdm:+.3g}",
                f"  {body}"]


def _band(quotient: float) -> str:
    if math.isclose(quotient, 0.0, abs_tol=1e-12):
        return "neither diffusion of benefits nor displacement"
    if quotient > 1:
        return "diffusion of benefits to the ring, larger than the direct effect"
    if quotient > 0:
        return "some diffusion of benefits to the ring"
    if quotient >= -1:
        return "some displacement to the ring, no larger than the gain in the treated area"
    return "displacement to the ring outweighs the gain in the treated area"


def wdq(a0: float, a1: float, b0: float, b1: float, c0: float, c1: float) -> WDQResult:
    """Return the WDQ of treated A, buffer B and control C counts, before (0) and after (1).

    SM = A1/C1 - A0/C0 must be negative (a reduction in A) for the quotient BDM/SM to mean
    anything; it is flagged unstable when A/C moved by less than ``UNSTABLE_SM`` of its value,
    and descriptive only when a count is below ``MIN_COUNT``.
    """
    counts = (a0, a1, b0, b1, c0, c1)
    if any(not math.isfinite(x) or x < 0 for x in counts):
        raise InvalidArgumentError(f"WDQ counts must be non-negative numbers, got {counts}")
    small = min(counts) < MIN_COUNT
    if c0 == 0 or c1 == 0:
        return WDQResult(counts, math.nan, math.nan, math.nan, False, False, small,
                         "the control area has no event in one period: WDQ undefined")
    sm, bdm = a1 / c1 - a0 / c0, b1 / c1 - b0 / c0
    if sm >= 0:
        return WDQResult(counts, sm, bdm, math.nan, False, False, small,
                         "no reduction in the treated area: WDQ not interpretable")
    quotient = bdm / sm
    unstable = abs(sm) < UNSTABLE_SM * (a0 / c0)
    text = _band(quotient)
    if unstable:
        text += "; unstable: the treated area barely changed (SM close to 0)"
    if small:
        text += f"; counts below {MIN_COUNT}: too small to conclude, descriptive only"
    return WDQResult(counts, sm, bdm, quotient, True, unstable, small, text)


@dataclass(frozen=True)
class WDDResult:
    """Weighted displacement difference with its Poisson standard error (negative = reduction)."""

    estimate: float
    local: float
    displacement: float | None
    variance: float
    se: float
    z: float | None
    ci: tuple[float, float] | None
    p_value: float | None
    alpha: float
    conclusive: bool
    message: str
    exact_p: float | None = None

    def summary(self) -> list[str]:
        """Return short readable lines."""
        lines = [f"WDD (Wheeler & Ratcliffe): {self.estimate:+.1f} events (negative = reduction), SE {self.se:.1f}"]
        if self.displacement is not None:
            lines.append(f"  local {self.local:+.1f}, displacement ring {self.displacement:+.1f}")
        if self.conclusive:
            level = f"{100 * (1 - self.alpha):g} %"
            lines.append(f"  z {self.z:.2f}, {level} CI ({self.ci[0]:.1f}, {self.ci[1]:.1f}), two-sided p {self.p_value:.3g}")
        lines.append(f"  {self.message}")
        if self.exact_p is not None:
            lines.append(f"  exact Poisson E-test on the treated area alone (before vs after, ignores the control): "
                         f"p {self.exact_p:.3g}")
        return lines


def e_test(k1: float, k2: float, n1: float = 1.0, n2: float = 1.0) -> float | None:
    """Return the two-sided p of the Poisson E-test of k1/n1 = k2/n2 (Krishnamoorthy & Thomson 2004).

    As ptools ``e_test`` with ``d = 0``; None when both counts are 0 or they are too large
    for the exact sum (the normal approximation serves there).
    """
    if k1 == k2 == 0 or max(k1, k2) > 1000:
        return None
    rate = (k1 + k2) / (n1 + n2)
    observed = abs(k1 / n1 - k2 / n2) / math.sqrt(rate)
    mu1, mu2 = n1 * rate, n2 * rate
    top = max(mu1, mu2)
    x = np.arange(int(top + 15 * math.sqrt(top) + 50))  # the rest of the tails is below 1e-20
    x1, x2 = np.meshgrid(x, x, indexing="ij")
    with np.errstate(invalid="ignore", divide="ignore"):
        statistic = np.abs(x1 / n1 - x2 / n2) / np.sqrt((x1 + x2) / (n1 + n2))
    extreme = statistic >= observed * (1 - 1e-12)  # NaN at (0, 0) compares False, as in ptools
    return float(min(1.0, np.sum(np.outer(stats.poisson.pmf(x, mu1), stats.poisson.pmf(x, mu2))[extreme])))


def wdd(t0: float, t1: float, ct0: float, ct1: float, d0: float | None = None, d1: float | None = None,
        cd0: float | None = None, cd1: float | None = None, *, time_weights: Sequence[float] = (1, 1),
        area_weights: Sequence[float] | None = None, alpha: float = 0.05,
        shared_control: bool = False) -> WDDResult:
    """Return the WDD = dT - dCT + dD - dCD (d = after - before) with its Poisson SE, z and CI.

    Parameters
    ----------
    t0, t1, ct0, ct1, d0, d1, cd0, cd1
        Counts before (0) and after (1) in the treated area, its control, the displacement
        area and its control; leave the last four out when there is no displacement area.
    time_weights
        (before, after) lengths, e.g. ``(2, 1)`` for two years before and one after.
    area_weights
        (treated, control, displacement, displacement control) sizes; note ptools orders
        them (control, treated, disp_control, disp_treated). Each count is divided by its
        time × area weight in the estimate and by its square in the variance.
    alpha
        The interval is at level 1 - alpha (default 95 %).
    shared_control
        The treated and displacement areas share one control (``ct`` = ``cd``): the
        variance then counts those events once, with both coefficients added.

    No z, p or interval unless every count is at least ``MIN_COUNT``: ``conclusive`` is then
    False, ``message`` says the numbers are too small and ``exact_p`` holds the E-test of
    the treated area before vs after.
    """
    displacement = (d0, d1, cd0, cd1)
    has_disp = all(v is not None for v in displacement)
    if not has_disp and any(v is not None for v in displacement):
        raise InvalidArgumentError("give all four displacement counts (d0, d1, cd0, cd1) or none")
    counts = [t0, t1, ct0, ct1, *(displacement if has_disp else ())]
    if any(not math.isfinite(x) or x < 0 for x in counts):
        raise InvalidArgumentError(f"WDD counts must be non-negative numbers, got {counts}")
    tw = tuple(float(w) for w in time_weights)
    aw = tuple(float(w) for w in (area_weights or (1, 1, 1, 1)))
    if len(tw) != 2 or len(aw) != 4 or min(tw + aw) <= 0:
        raise InvalidArgumentError("time_weights needs 2 and area_weights 4 positive numbers")
    if not 0 < alpha < 1:
        raise InvalidArgumentError(f"alpha must lie in (0, 1), got {alpha}")
    if shared_control and (not has_disp or (ct0, ct1) != (cd0, cd1)):
        raise InvalidArgumentError("shared_control needs displacement counts whose control equals the treated control")
    terms = [("treated", t0, t1, aw[0], 1), ("control", ct0, ct1, aw[1], -1)]
    if has_disp:
        terms += [("displacement", d0, d1, aw[2], 1),
                  ("control" if shared_control else "displacement control", cd0, cd1, aw[3], -1)]
    coefficient: dict[tuple[str, str], float] = {}
    count: dict[tuple[str, str], float] = {}
    parts = []
    for name, before, after, weight, sign in terms:
        parts.append(sign * (after / (tw[1] * weight) - before / (tw[0] * weight)))
        for period, value, c in (("before", before, -1 / tw[0]), ("after", after, 1 / tw[1])):
            coefficient[name, period] = coefficient.get((name, period), 0.0) + sign * c / weight
            count[name, period] = value
    estimate = math.fsum(parts)
    local = parts[0] + parts[1]
    variance = math.fsum(coefficient[k] ** 2 * count[k] for k in count)
    se = math.sqrt(variance)
    small = [f"{name} {period} {value:g}" for (name, period), value in count.items() if value < MIN_COUNT]
    common = {"estimate": estimate, "local": local, "displacement": estimate - local if has_disp else None,
              "variance": variance, "se": se, "alpha": alpha}
    if small:
        message = (f"Numbers too small to conclude: {', '.join(small)} (below {MIN_COUNT}). The normal "
                   f"approximation needs at least {MIN_COUNT} events in every area and period, so no z or "
                   "confidence interval is given.")
        exact = e_test(t1, t0, tw[1], tw[0]) if float(t0).is_integer() and float(t1).is_integer() else None
        return WDDResult(**common, z=None, ci=None, p_value=None, conclusive=False, message=message, exact_p=exact)
    z = estimate / se  # every count is at least MIN_COUNT, so se > 0
    half = float(stats.norm.ppf(1 - alpha / 2)) * se
    ci = (estimate - half, estimate + half)
    level = f"{100 * (1 - alpha):g} %"
    if ci[1] < 0:
        message = f"Significant reduction at the {level} level (the interval excludes 0)."
    elif ci[0] > 0:
        message = f"Significant increase at the {level} level (the interval excludes 0)."
    else:
        message = f"No significant change at the {level} level: the interval includes 0."
    return WDDResult(**common, z=z, ci=ci, p_value=float(2 * stats.norm.sf(abs(z))), conclusive=True, message=message)


@dataclass
class ImpactResult:
    """Counts by area and period around one works site, with the WDQ and the WDD."""

    site: dict[str, object]
    before: Window
    after: Window
    resolution: int
    ring: int
    gap: int
    counted: str  # what was counted, e.g. "incident events"
    cell_counts: pd.DataFrame  # index cell (int64); columns area, before, after
    wdq: WDQResult
    wdd: WDDResult
    time_weights: tuple[float, float]
    area_weights: tuple[float, float, float, float]
    notes: list[str]

    @property
    def counts(self) -> pd.DataFrame:
        """Return the area × period table: index A, B, C; columns cells, before, after."""
        table = self.cell_counts.groupby("area")[["before", "after"]].sum().reindex(list(AREAS), fill_value=0)
        table.insert(0, "cells", self.cell_counts.groupby("area").size().reindex(list(AREAS), fill_value=0))
        return table

    @property
    def conclusive(self) -> bool:
        """Whether the counts are large enough for the WDD's z and interval."""
        return self.wdd.conclusive

    def to_frame(self) -> pd.DataFrame:
        """Return one row per area × period, with its window, cells and count."""
        rows = [{"site": self.site["id"], "area": area, "role": AREAS[area], "period": period,
                 "start": window.start, "end": window.end, "days": (window.end - window.start).days,
                 "cells": int(row["cells"]), "count": int(row[period])}
                for area, row in self.counts.iterrows()
                for period, window in (("before", self.before), ("after", self.after))]
        return pd.DataFrame(rows)

    def cells_frame(self) -> gpd.GeoDataFrame:
        """Return every cell of A, B and C with its counts and hexagon (EPSG:4326)."""
        frame = self.cell_counts.rename_axis("cell").reset_index()
        frame.insert(1, "h3", [hexagons.cell_to_str(c) for c in frame["cell"]])
        return gpd.GeoDataFrame(frame, geometry=hexagons.cells_to_polygons(frame["cell"].to_numpy()), crs="EPSG:4326")

    def to_geojson(self) -> dict:
        """Return the cells as a GeoJSON FeatureCollection (cells as hex strings, safe for JS)."""
        return self.cells_frame().drop(columns="cell").__geo_interface__

    def summary(self) -> list[str]:
        """Return the readable report: site, areas, counts table, WDQ, WDD, conclusion, notes."""
        s = self.site
        counts = self.counts
        lines = [f"Works {s['id']}: {s['street'] or 'no street'} ({s['purpose'] or 'no purpose'}), "
                 f"{_day(s['starts_at'])} to {_day(s['ends_at'])}",
                 f"{self.counted} at resolution {self.resolution}: A site {counts.at['A', 'cells']} cells, "
                 f"B ring of {self.ring} {counts.at['B', 'cells']} cells, C control {counts.at['C', 'cells']} "
                 f"cells (rest of the study area beyond {self.ring + self.gap} rings)",
                 f"before {self.before.start} to {self.before.end} (exclusive), "
                 f"after {self.after.start} to {self.after.end} (exclusive)"]
        lines += [f"  {area} {AREAS[area]:<22} {row['before']:>7,} -> {row['after']:>7,}"
                  for area, row in counts.iterrows()]
        lines += self.wdq.summary() + self.wdd.summary()
        if not self.conclusive:
            lines.append("Conclusion: numbers too small to conclude; read the counts, not the statistics.")
        return lines + [f"note: {n}" for n in self.notes]


def _day(value: object) -> str:
    return value.astimezone(PARIS).date().isoformat() if isinstance(value, datetime) else "?"


def _window(value: WindowLike | None, default: Window | None, name: str) -> Window:
    if value is None:
        if default is None:
            raise InvalidArgumentError(f"the site has no start or end date: give the {name} window")
        return default
    if isinstance(value, Window):
        return Window.of(value.start, value.end)
    try:
        start, end = value
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} window must be a Window or a (start, end) pair") from None
    return Window.of(start, end)


def works_impact(conn: psycopg.Connection, site_id: str, *, before: WindowLike | None = None,
                 after: WindowLike | None = None, resolution: int = 10, ring: int = 1, gap: int = 1,
                 kinds: list[str] | None = None, categories: list[str] | None = None,
                 settings: Settings | None = None) -> ImpactResult:
    """Compare events around a works site before and after it (WDQ and WDD, docs/methods.md §4).

    Parameters
    ----------
    site_id
        The works site's identifier in ``works_sites`` (e.g. ``CP000106``).
    before, after
        Windows of Paris days, ``end`` exclusive; they must not overlap. By default, as many
        days as the works lasted: ``before`` just before the first day, ``after`` from the day
        after the last one (the works period itself is left out: the site is disturbed then).
    resolution, ring, gap
        A = cells touching the site polygon; B = cells within ``ring`` rings of A, not in A;
        C = control, the rest of the study area's cells beyond ``ring + gap`` rings of A
        (``gap`` rings left out so that spill-over does not contaminate the control).
    kinds, categories
        What to count (default: every incident category).

    The WDD takes B as displacement area and C as the control of both A and B, each scaled
    to the size of the area it controls (area weights ``|C|/|A|`` and ``|C|/|B|``, so the
    estimate stays in events of A and B) and its events counted once in the variance.
    Unequal windows are scaled to the after window (time weights ``(days before / days
    after, 1)``); the WDQ, a ratio of ratios within each period, needs no weights.
    """
    settings = settings or get_settings()
    check_resolution(resolution, settings)
    if ring < 1 or gap < 0:
        raise InvalidArgumentError(f"ring must be at least 1 and gap at least 0, got ring={ring}, gap={gap}")
    kinds = kinds or ["incident"]
    category = category_ids(conn, kinds, categories)
    require_loaded(conn)
    row = conn.execute(
        "SELECT w.id, w.street, w.purpose, w.starts_at, w.ends_at, ST_AsBinary(w.geom), ST_Intersects(w.geom, s.geom) "
        "FROM works_sites w, study_area s WHERE w.id = %s", (site_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no works site with id {site_id!r} (see the works_sites reference layer)")
    site = dict(zip(("id", "street", "purpose", "starts_at", "ends_at"), row[:5], strict=True))
    if not row[6]:
        raise InvalidArgumentError(f"works site {site_id} lies outside the study area")
    default_before = default_after = None
    if site["starts_at"] and site["ends_at"]:
        first = site["starts_at"].astimezone(PARIS).date()
        last = site["ends_at"].astimezone(PARIS).date() + timedelta(days=1)
        default_before, default_after = Window(first - (last - first), first), Window(last, last + (last - first))
    before, after = _window(before, default_before, "before"), _window(after, default_after, "after")
    if before.end > after.start:
        raise InvalidArgumentError(f"windows overlap or are out of order: before {before.start}..{before.end} "
                                   f"must end no later than after starts ({after.start})")
    today = datetime.now(PARIS).date()
    if after.start >= today:
        raise InvalidArgumentError(f"the after window starts {after.start}, not yet past: give earlier windows")
    grid = study_grid(conn, resolution)
    a = np.intersect1d(hexagons.polygon_to_cells(shapely.from_wkb(row[5]), resolution, "overlap"), grid)
    b = np.setdiff1d(np.intersect1d(hexagons.grid_disk(a, ring), grid), a)
    c = np.setdiff1d(grid, hexagons.grid_disk(a, ring + gap))
    if not (len(a) and len(b) and len(c)):
        raise InvalidArgumentError(f"site {site_id}: empty area at resolution {resolution} "
                                   f"(A {len(a)}, B {len(b)}, C {len(c)} cells); change ring, gap or resolution")
    cells = np.concatenate([a, b, c])
    frame = pd.DataFrame({"area": np.repeat(list(AREAS), [len(a), len(b), len(c)])}, index=pd.Index(cells))
    for period, window in (("before", before), ("after", after)):
        frame[period] = count_cells(conn, category, window, resolution).reindex(cells, fill_value=0).to_numpy()
    totals = frame.groupby("area")[["before", "after"]].sum()
    (a0, a1), (b0, b1), (c0, c1) = (tuple(int(v) for v in totals.loc[k]) for k in AREAS)
    tw = ((before.end - before.start).days / (after.end - after.start).days, 1.0)
    aw = (1.0, len(c) / len(a), 1.0, len(c) / len(b))
    notes = []
    if tw[0] != 1:
        notes.append(f"windows differ in length: counts are scaled to the after window's {(after.end - after.start).days} days")
    if after.end > today:
        notes.append(f"the after window ends {after.end}, after today: its counts are incomplete")
    works = (default_before.end, default_after.start) if default_before else None
    if works and any(w.start < works[1] and w.end > works[0] for w in (before, after)):
        notes.append(f"a window overlaps the works period ({works[0]} to {works[1]}, exclusive)")
    return ImpactResult(
        site=site, before=before, after=after, resolution=resolution, ring=ring, gap=gap,
        counted=f"{'/'.join(kinds)} events" + (f" ({', '.join(categories)})" if categories else ""),
        cell_counts=frame, wdq=wdq(a0, a1, b0, b1, c0, c1),
        wdd=wdd(a0, a1, c0, c1, b0, b1, c0, c1, time_weights=tw, area_weights=aw, shared_control=True),
        time_weights=tw, area_weights=aw, notes=notes)
