"""What a report figure is (value, previous year, target, months, definition, source) and the store reads they share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import pandas as pd
import psycopg

from geo_monitor.store import rollups

GROUPS = ("accompany", "accommodation", "public_space", "knowledge", "execution")


@dataclass
class Figure:
    """One figure of the yearly evaluation, with the words that say what it is and where it comes from.

    ``label`` and ``definition`` are (French, English). ``monthly`` holds the year's twelve
    monthly values when the figure has them; ``table`` detail rows (a list of dicts).
    """

    key: str
    group: str
    label: tuple[str, str]
    definition: tuple[str, str]
    source: str
    unit: str
    value: float | None
    previous: float | None = None
    target: float | None = None
    direction: str | None = None  # "up" or "down": which way counts as progress
    interval: tuple[float, float] | None = None
    monthly: list[float] | None = None
    monthly_previous: list[float] | None = None
    table: list[dict] = field(default_factory=list)
    note: tuple[str, str] | None = None

    @property
    def progress(self) -> float | None:
        """Share of the target reached (value / target), when there is a target."""
        if self.target in (None, 0) or self.value is None:
            return None
        return self.value / self.target

    @property
    def change(self) -> float | None:
        """Relative change on the previous year (None without a previous value)."""
        if self.previous in (None, 0) or self.value is None:
            return None
        return self.value / self.previous - 1


def year_bounds(year: int) -> tuple[date, date]:
    """Return the year's first day and the next year's first day (Paris calendar)."""
    return date(year, 1, 1), date(year + 1, 1, 1)


def monthly_totals(conn: psycopg.Connection, first: date, end: date) -> pd.DataFrame:
    """Return event counts per (kind, category) and Paris month in [first, end), from the monthly rollups.

    The coarsest rollup resolution holds every event once, so its sums are the store's totals.
    """
    rollups.ensure_fresh(conn)
    rows = conn.execute(
        "SELECT k.name, c.name, r.month, sum(r.n)::bigint FROM rollup_monthly r "
        "JOIN categories c ON c.id = r.category_id JOIN kinds k ON k.id = c.kind_id "
        "WHERE r.resolution = %s AND r.month >= %s AND r.month < %s GROUP BY 1, 2, 3",
        (min(rollups.ROLLUP_RESOLUTIONS), first, end)).fetchall()
    return pd.DataFrame(rows, columns=["kind", "category", "month", "n"]).astype({"n": "int64"})


def months_of(year: int) -> list[date]:
    """Return the first day of each month of the year."""
    return [date(year, m, 1) for m in range(1, 13)]


def series(frame: pd.DataFrame, year: int, *, kind: str | None = None,
           categories: list[str] | tuple[str, ...] | None = None) -> list[float]:
    """Return the twelve monthly sums of the year for a kind and/or categories."""
    rows = frame
    if kind is not None:
        rows = rows[rows["kind"] == kind]
    if categories is not None:
        rows = rows[rows["category"].isin(list(categories))]
    by_month = rows.groupby("month")["n"].sum()
    return [float(by_month.get(m, 0)) for m in months_of(year)]


def rate_ratio(current: float, previous: float) -> tuple[float | None, tuple[float, float] | None]:
    """Return the ratio of two Poisson counts and its 95 % interval (log scale, Wald)."""
    if current <= 0 or previous <= 0:
        return (None if previous <= 0 else current / previous), None
    ratio = current / previous
    half = 1.959964 * math.sqrt(1 / current + 1 / previous)
    return ratio, (ratio * math.exp(-half), ratio * math.exp(half))
