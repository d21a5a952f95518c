"""The plan's indicators for public space (incidents, trend, hotspots, works) and knowledge (data quality)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import numpy as np
import pandas as pd
import psycopg

from geo_monitor.analysis.emerging import emerging, mann_kendall
from geo_monitor.analysis.hotspots import hotspots
from geo_monitor.analysis.impact import works_impact
from geo_monitor.errors import GeoMonitorError
from geo_monitor.plan.figures import Figure, months_of, rate_ratio, series, year_bounds
from geo_monitor.settings import Settings

INCIDENTS = "incident events (anonymised at ingest)"
HOTSPOT_RESOLUTION = 9
MAX_WORKS_SITES = 12


def public_space(conn: psycopg.Connection, year: int, totals: pd.DataFrame, settings: Settings,
                 progress: Callable[[str], None] | None = None) -> list[Figure]:
    """Incidents with their change, trend, hotspots, emerging patterns, works impact, resident reports."""
    say = progress or (lambda _: None)
    prev = year - 1
    table = []
    for category in sorted(set(totals.loc[totals["kind"] == "incident", "category"])):
        now, before = sum(series(totals, year, categories=[category])), sum(series(totals, prev, categories=[category]))
        ratio, ci = rate_ratio(now, before)
        table.append({"category": category, "year": now, "previous": before, "rate_ratio": ratio,
                      "ci_low": ci[0] if ci else None, "ci_high": ci[1] if ci else None})
    now, before = sum(series(totals, year, kind="incident")), sum(series(totals, prev, kind="incident"))
    ratio, ci = rate_ratio(now, before)
    incidents = Figure(
        "incidents", "public_space", ("Signalements d'incidents", "Incident reports"),
        ("Incidents enregistrés dans l'année, par catégorie ; rapport au nombre de l'année précédente avec son "
         "intervalle à 95 % (rapport de taux de Poisson).",
         "Incidents recorded in the year, by category; ratio to the previous year's number with its 95 % "
         "interval (Poisson rate ratio)."),
        INCIDENTS, "count", now, before, direction="down", interval=ci,
        monthly=series(totals, year, kind="incident"), monthly_previous=series(totals, prev, kind="incident"),
        table=table)
    months = series(totals, year - 1, kind="incident") + series(totals, year, kind="incident")
    _, _, z, p, tau = mann_kendall(np.array(months))
    trend = Figure(
        "trend", "public_space", ("Tendance des incidents sur 24 mois", "Incident trend over 24 months"),
        ("Tau de Mann-Kendall des totaux mensuels d'incidents sur l'année et la précédente (négatif = baisse) ; "
         f"p = {float(p[0]):.3f}.",
         "Mann-Kendall tau of the monthly incident totals over the year and the previous one (negative = "
         f"decrease); p = {float(p[0]):.3f}."),
        INCIDENTS, "tau", None if np.isnan(tau[0]) else float(tau[0]), direction="down",
        table=[{"z": float(z[0]), "p": float(p[0])}])
    say("  hotspots")
    first, end = year_bounds(year)
    figures = [incidents, trend, _hotspots(conn, year, settings)]
    say("  emerging patterns")
    figures.append(_emerging(conn, year, settings))
    say("  works impact")
    figures.append(_works(conn, first, end, settings))
    figures.append(_residents(conn, year))
    return figures


def _hot_count(conn: psycopg.Connection, y: int, settings: Settings) -> tuple[int, list[dict]]:
    first, end = year_bounds(y)
    classes = hotspots(conn, start=first, end=end, resolution=HOTSPOT_RESOLUTION, kinds=["incident"],
                       settings=settings)["label"].value_counts()
    rows = [{"class": c, "hexagons": int(n)} for c, n in classes.items() if c != "not significant"]
    return int(sum(n for c, n in classes.items() if str(c).startswith("hot"))), rows


def _hotspots(conn: psycopg.Connection, year: int, settings: Settings) -> Figure:
    value, table = _hot_count(conn, year, settings)
    previous, _ = _hot_count(conn, year - 1, settings)
    return Figure(
        "hotspots", "public_space", ("Points chauds d'incidents", "Incident hot spots"),
        ("Hexagones (résolution 9) classés points chauds par Getis-Ord Gi* sur l'année (FDR de Benjamini-Hochberg).",
         "Hexagons (resolution 9) classed as hot spots by Getis-Ord Gi* over the year (Benjamini-Hochberg FDR)."),
        INCIDENTS + " (analysis.hotspots)", "hexagons", value, previous, direction="down", table=table)


def _emerging(conn: psycopg.Connection, year: int, settings: Settings) -> Figure:
    patterns = emerging(conn, start=date(year - 2, 1, 1), end=date(year + 1, 1, 1), resolution=HOTSPOT_RESOLUTION,
                        kinds=["incident"], settings=settings)["pattern"].value_counts()
    table = [{"pattern": p, "hexagons": int(n)} for p, n in patterns.items() if p != "no pattern"]
    rising = sum(int(n) for p, n in patterns.items() if p in ("new hot spot", "intensifying hot spot",
                                                              "consecutive hot spot", "persistent hot spot"))
    return Figure(
        "emerging", "public_space", ("Points chauds émergents", "Emerging hot spots"),
        ("Hexagones (résolution 9) nouveaux, consécutifs, s'intensifiant ou persistants parmi les points chauds, "
         "sur les 36 mois qui finissent avec l'année (classes d'ArcGIS Pro).",
         "Hexagons (resolution 9) that are new, consecutive, intensifying or persistent hot spots over the 36 "
         "months ending with the year (ArcGIS Pro's classes)."),
        INCIDENTS + " (analysis.emerging)", "hexagons", rising, direction="down", table=table)


def _works(conn: psycopg.Connection, first: date, end: date, settings: Settings) -> Figure:
    sites = conn.execute(
        "SELECT w.id FROM works_sites w, study_area s WHERE ST_Intersects(w.geom, s.geom) "
        "AND w.starts_at < %s::date::timestamp AT TIME ZONE 'Europe/Paris' "
        "AND w.ends_at >= %s::date::timestamp AT TIME ZONE 'Europe/Paris' ORDER BY w.starts_at, w.id",
        (end, first)).fetchall()
    table = []
    for (site,) in sites[:MAX_WORKS_SITES]:
        try:
            result = works_impact(conn, site, settings=settings)
        except GeoMonitorError as exc:
            table.append({"site": site, "wdq": None, "wdd": None, "conclusive": False, "note": str(exc)[:120]})
            continue
        table.append({"site": site, "purpose": result.site.get("purpose") or "",
                      "wdq": None if np.isnan(result.wdq.wdq) else result.wdq.wdq, "wdd": result.wdd.estimate,
                      "ci": result.wdd.ci, "conclusive": result.conclusive,
                      "note": "too few events to conclude" if result.wdq.small or not result.conclusive
                      else result.wdd.message})
    return Figure(
        "works", "public_space", ("Effet des chantiers d'aménagement", "Effect of redesign works"),
        ("Pour chaque chantier actif dans l'année : quotient de déplacement pondéré (WDQ) et différence pondérée "
         "(WDD, négative = baisse) avant/après ; en dessous des effectifs minimaux, le résultat n'est pas conclusif.",
         "For each works site active in the year: weighted displacement quotient (WDQ) and difference (WDD, "
         "negative = reduction) before/after; below the minimum counts the result is not conclusive."),
        "works sites (Ville de Paris open data) and incident events (analysis.impact)", "sites", len(sites),
        table=table, note=(f"{min(len(sites), MAX_WORKS_SITES)} premiers chantiers par date de début.",
                           f"First {min(len(sites), MAX_WORKS_SITES)} sites by start date.")
        if len(sites) > MAX_WORKS_SITES else None)


def _residents(conn: psycopg.Connection, year: int) -> Figure:
    def monthly(y: int) -> list[float]:
        first, end = year_bounds(y)
        rows = dict(conn.execute(
            "SELECT date_trunc('month', e.occurred_at AT TIME ZONE 'Europe/Paris')::date, count(*) FROM events e "
            "JOIN sources s ON s.id = e.source_id WHERE s.name = 'dansmarue' "
            "AND e.occurred_at >= %s::date::timestamp AT TIME ZONE 'Europe/Paris' "
            "AND e.occurred_at < %s::date::timestamp AT TIME ZONE 'Europe/Paris' GROUP BY 1", (first, end)).fetchall())
        return [float(rows.get(m, 0)) for m in months_of(y)]
    now, before = monthly(year), monthly(year - 1)
    return Figure(
        "residents", "public_space", ("Signalements des riverains (DansMaRue)", "Resident reports (DansMaRue)"),
        ("Signalements DansMaRue de l'espace public enregistrés dans l'année.",
         "DansMaRue public-space reports recorded in the year."),
        "DansMaRue (Ville de Paris open data)", "count", sum(now), sum(before), monthly=now, monthly_previous=before)


def knowledge(conn: psycopg.Connection, year: int, totals: pd.DataFrame) -> list[Figure]:
    """Which source covers which months, rejected rows by reason, how late data arrive, months with a gap."""
    first, end = year_bounds(year)
    bounds = (first, end)
    where = ("e.occurred_at >= %s::date::timestamp AT TIME ZONE 'Europe/Paris' "
             "AND e.occurred_at < %s::date::timestamp AT TIME ZONE 'Europe/Paris'")
    rows = conn.execute(
        "SELECT s.name, date_trunc('month', e.occurred_at AT TIME ZONE 'Europe/Paris')::date, count(*) "
        f"FROM events e JOIN sources s ON s.id = e.source_id WHERE {where} GROUP BY 1, 2", bounds).fetchall()
    by_source: dict[str, dict[date, int]] = {}
    for name, month, n in rows:
        by_source.setdefault(name, {})[month] = n
    sources = Figure(
        "sources", "knowledge", ("Sources et mois couverts", "Sources and the months they cover"),
        ("Pour chaque source, les mois de l'année où elle a fourni au moins un événement.",
         "For each source, the months of the year in which it brought at least one event."),
        "ingest batches", "sources", len(by_source),
        table=[{"source": name, **{f"{m:%m}": months.get(m, 0) for m in months_of(year)}}
               for name, months in sorted(by_source.items())])
    rejected: dict[str, int] = {}
    for (reasons,) in conn.execute(
            "SELECT rejected_by_reason FROM ingest_batches WHERE id IN "
            f"(SELECT DISTINCT e.batch_id FROM events e WHERE {where})", bounds):
        for reason, n in (reasons or {}).items():
            rejected[reason] = rejected.get(reason, 0) + int(n)
    refused = Figure(
        "rejected", "knowledge", ("Lignes refusées à l'import", "Rows refused at ingest"),
        ("Lignes refusées, par motif, dans les lots qui ont apporté des événements de l'année.",
         "Rows refused, by reason, in the batches that brought events of the year."),
        "ingest batches", "rows", sum(rejected.values()),
        table=[{"reason": r, "rows": n} for r, n in sorted(rejected.items(), key=lambda x: -x[1])])
    delay = conn.execute(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM b.started_at - e.occurred_at)), "
        "percentile_cont(0.9) WITHIN GROUP (ORDER BY extract(epoch FROM b.started_at - e.occurred_at)) "
        f"FROM events e JOIN ingest_batches b ON b.id = e.batch_id WHERE {where}", bounds).fetchone()
    late = Figure(
        "delay", "knowledge", ("Délai d'arrivée des données", "How late data arrive"),
        ("Délai médian entre un événement et l'import du lot qui l'a apporté, en jours (9e décile dans le tableau).",
         "Median time from an event to the ingest of the batch that brought it, in days (90th percentile in the table)."),
        "events and ingest batches", "days", None if delay[0] is None else delay[0] / 86400,
        table=[] if delay[1] is None else [{"median_days": delay[0] / 86400, "p90_days": delay[1] / 86400}])
    gaps = []
    for kind in ("incident", "outreach"):
        for month, n in zip(months_of(year), series(totals, year, kind=kind), strict=True):
            if n == 0:
                gaps.append({"month": f"{month:%Y-%m}", "kind": kind})
    holes = Figure(
        "gaps", "knowledge", ("Mois sans données", "Months with a gap"),
        ("Mois de l'année sans aucun incident ou sans aucune intervention de maraude enregistrée.",
         "Months of the year with no incident or no outreach event recorded."),
        "events (monthly rollups)", "months", len({g["month"] for g in gaps}), direction="down", table=gaps)
    return [sources, refused, late, holes]
