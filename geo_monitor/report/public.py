"""The public edition: built only from the published monthly releases and the plan's public information.

Every number of the events side is a sum of values some release published: a yearly total
is shown only when all twelve months published it, so nothing here can be subtracted from
a release to reveal a suppressed count.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import pandas as pd
import psycopg

from geo_monitor.errors import NotFoundError
from geo_monitor.plan.figures import Figure, months_of
from geo_monitor.plan.indicators import accommodation, execution
from geo_monitor.privacy.noise import OUTREACH
from geo_monitor.privacy.releases import get_release
from geo_monitor.report.build import (
    ReportData,
    _outlines,
    _plan,
    check_year,
    public_places,
    release_map,
)
from geo_monitor.settings import Settings, get_settings

RELEASES = "published monthly releases (protected counts)"


def released_totals(conn: psycopg.Connection, year: int, settings: Settings) -> pd.DataFrame:
    """Return the published totals of the year's months: month, group, arrondissement (NA = study area), value.

    ``value`` is NA where the release suppressed it; a month without a release has no row.
    """
    frames = []
    for month in months_of(year):
        try:
            release = get_release(conn, month, settings=settings)
        except NotFoundError:
            continue
        totals = release.totals_frame()
        totals.insert(0, "month", month)
        frames.append(totals[["month", "group", "arrondissement", "value"]])
    if not frames:
        return pd.DataFrame(columns=["month", "group", "arrondissement", "value"])
    return pd.concat(frames, ignore_index=True)


def _sum_of_months(rows: pd.DataFrame, year: int) -> tuple[float | None, list[float | None]]:
    """Return the year's sum (None unless all 12 months published a value) and the monthly values."""
    by_month = dict(zip(rows["month"], rows["value"], strict=True))
    monthly = [None if pd.isna(by_month.get(m, pd.NA)) else float(by_month[m]) for m in months_of(year)]
    return (None if any(v is None for v in monthly) else sum(monthly)), monthly


def public_figures(conn: psycopg.Connection, year: int, settings: Settings) -> list[Figure]:
    """Return the released counts per public group (study area) and outreach per arrondissement."""
    now, before = released_totals(conn, year, settings), released_totals(conn, year - 1, settings)
    figures = []
    area_now = now[now["arrondissement"].isna()]
    area_before = before[before["arrondissement"].isna()]
    for group in sorted(set(area_now["group"])):
        value, monthly = _sum_of_months(area_now[area_now["group"] == group], year)
        previous, monthly_prev = _sum_of_months(area_before[area_before["group"] == group], year - 1)
        outreach = group == OUTREACH
        table = []
        if outreach:
            by_arr = now[now["arrondissement"].notna() & (now["group"] == group)]
            for code in sorted(set(by_arr["arrondissement"])):
                total, _ = _sum_of_months(by_arr[by_arr["arrondissement"] == code], year)
                table.append({"arrondissement": str(int(code)), "year": total})
        figures.append(Figure(
            f"released_{group}", "accompany" if outreach else "public_space",
            ("Interventions des maraudes (publiées)", "Outreach events (published)") if outreach
            else (f"Signalements publiés : {group}", f"Published reports: {group}"),
            ("Somme des douze totaux mensuels publiés pour la zone d'étude (comptes protégés : bruit calibré, "
             "petits nombres masqués) ; absent si un mois n'a pas été publié ou a été masqué.",
             "Sum of the twelve published monthly totals for the study area (protected counts: calibrated noise, "
             "small numbers hidden); missing when a month was not published or was hidden."),
            RELEASES, "count", value, previous, monthly=monthly, monthly_previous=monthly_prev, table=table))
    released = sorted(set(now["month"]))
    figures.append(Figure(
        "released_months", "knowledge", ("Mois publiés", "Months published"),
        ("Mois de l'année dont la publication mensuelle protégée existe.",
         "Months of the year whose protected monthly release exists."),
        RELEASES, "months", len(released), table=[{"month": f"{m:%Y-%m}"} for m in released]))
    return figures


def build_public_report(conn: psycopg.Connection, year: int, *, settings: Settings | None = None,
                        progress: Callable[[str], None] | None = None, today: date | None = None) -> ReportData:
    """Return the public edition of ``year``: released counts, the plan's actions, budgets and places."""
    settings = settings or get_settings()
    say = progress or (lambda _: None)
    notes = check_year(conn, year, today=today)
    say("published releases")
    figures = public_figures(conn, year, settings)
    say("plan")
    figures += [f for f in accommodation(conn, year, pd.DataFrame(columns=["kind", "category", "month", "n"]))
                if f.key != "referrals_per_place"]
    figures += [f for f in execution(conn, year) if f.key != "updates"]
    actions, places, objectives, partners = _plan(conn, year)
    say("map")
    hexes = release_map(conn, year, settings)
    maps = {"released": hexes} if hexes else {}
    return ReportData(year, True, figures, actions, public_places(places), objectives, partners, maps,
                      _outlines(conn), notes, complete=not notes)
