"""The privacy-budget ledger: what each data month and year has spent, and the refusal past it.

Append-only (``privacy_ledger``): every release writes the loss of its two queries, and a
release that would take a month or its calendar year past the budget is refused before any
noise is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg

from geo_monitor.errors import PrivacyBudgetError
from geo_monitor.privacy.noise import INCIDENTS, OUTREACH, NoisePlan
from geo_monitor.settings import Settings


@dataclass(frozen=True)
class Budget:
    """Privacy loss spent and allowed for a data month and its calendar year."""

    month: date
    spent_month: float
    budget_month: float
    spent_year: float
    budget_year: float

    @property
    def left_month(self) -> float:
        """Loss still allowed for the month (never below 0)."""
        return max(0.0, self.budget_month - self.spent_month)

    @property
    def left_year(self) -> float:
        """Loss still allowed for the year (never below 0)."""
        return max(0.0, self.budget_year - self.spent_year)


# Losses are sums of floats: a release that exactly fills the budget must not be refused
# because 0.8 + 0.2 came back as 1.0000000000000002.
_SLACK = 1e-9


def budget(conn: psycopg.Connection, month: date, settings: Settings) -> Budget:
    """Return what the ledger says was spent on ``month`` and on its year."""
    row = conn.execute(
        "SELECT coalesce(sum(epsilon) FILTER (WHERE month = %(m)s), 0), coalesce(sum(epsilon), 0) "
        "FROM privacy_ledger WHERE month >= %(y0)s AND month < %(y1)s",
        {"m": month, "y0": date(month.year, 1, 1), "y1": date(month.year + 1, 1, 1)},
    ).fetchone()
    return Budget(month, float(row[0]), settings.privacy_budget_month, float(row[1]), settings.privacy_budget_year)


def check_budget(conn: psycopg.Connection, month: date, epsilon: float, settings: Settings) -> Budget:
    """Refuse a release of ``epsilon`` that the month's or the year's budget cannot take."""
    state = budget(conn, month, settings)
    label = f"{month:%Y-%m}"
    if state.spent_month + epsilon > state.budget_month + _SLACK:
        raise PrivacyBudgetError(
            f"release of {label} refused: it would spend epsilon = {epsilon:g}, but {label} has already spent "
            f"{state.spent_month:g} of its privacy budget of {state.budget_month:g} (left {state.left_month:g}). "
            "The existing release stays available; a new version needs a larger "
            "GEO_MONITOR_PRIVACY_BUDGET_MONTH or a smaller GEO_MONITOR_RELEASE_EPSILON."
        )
    if state.spent_year + epsilon > state.budget_year + _SLACK:
        raise PrivacyBudgetError(
            f"release of {label} refused: it would spend epsilon = {epsilon:g}, but the data year {month.year} has "
            f"already spent {state.spent_year:g} of its privacy budget of {state.budget_year:g} "
            f"(left {state.left_year:g}). Raise GEO_MONITOR_PRIVACY_BUDGET_YEAR or lower GEO_MONITOR_RELEASE_EPSILON."
        )
    return state


def record(conn: psycopg.Connection, release_id: int, month: date, plan: NoisePlan) -> None:
    """Write the release's queries and their losses to the (append-only) ledger."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO privacy_ledger (release_id, month, query, contributions, epsilon) VALUES (%s, %s, %s, %s, %s)",
            [(release_id, month, INCIDENTS, plan.contributions, plan.epsilon_incidents),
             (release_id, month, OUTREACH, plan.contributions, plan.epsilon_outreach)],
        )
