"""The plan's indicators for one year beside the previous: accompany users, accommodation, execution.

Public space and data quality are in ``plan.evidence``; ``year_figures`` gathers them all.
Every figure carries a one-line definition and its source (see ``plan.figures.Figure``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

import numpy as np
import pandas as pd
import psycopg
from scipy.spatial import cKDTree

from geo_monitor import hexagons
from geo_monitor.analysis.coverage import coverage_gap
from geo_monitor.plan.figures import Figure, monthly_totals, months_of, series, year_bounds
from geo_monitor.plan.objectives import OBJECTIVES, STATUSES
from geo_monitor.plan.places import open_places
from geo_monitor.plan.updates import list_updates, spent_by_partner
from geo_monitor.settings import Settings

REFERRALS = ("care_referral", "accommodation_referral", "rest_space_referral")
PLACE_TARGETS = {"perennial_accommodation": "perennial_places", "hotel_shelter": "hotel_places",
                 "specialised_housing": "specialised_places"}
PLACE_LABELS = {"perennial_accommodation": ("Places d'hébergement pérennes", "Perennial accommodation places"),
                "hotel_shelter": ("Places de mise à l'abri à l'hôtel", "Hotel shelter places"),
                "specialised_housing": ("Places en unités d'hébergement spécialisées", "Specialised housing places"),
                "rest_space": ("Places en espaces de repos", "Rest space places")}
STATION_RADIUS_M = 100
PARIS_COS = 0.6574  # cos(48.89°)
OUTREACH = "outreach events (anonymised at ingest)"


def _indicator_target(conn: psycopg.Connection, code: str) -> float | None:
    row = conn.execute("SELECT target FROM plan_indicators WHERE code = %s AND target IS NOT NULL "
                       "ORDER BY action_id LIMIT 1", (code,)).fetchone()
    return float(row[0]) if row else None


def accompany(conn: psycopg.Connection, year: int, totals: pd.DataFrame, settings: Settings) -> list[Figure]:
    """Outreach contacts, referrals, 7/7 coverage, metro, and the incident hotspots outreach covers."""
    prev = year - 1
    table = []
    for category in sorted(set(totals.loc[totals["kind"] == "outreach", "category"])):
        table.append({"category": category, "year": sum(series(totals, year, categories=[category])),
                      "previous": sum(series(totals, prev, categories=[category]))})
    contacts = Figure(
        "outreach", "accompany", ("Interventions des maraudes", "Outreach interventions"),
        ("Événements de maraude enregistrés dans l'année (contacts, kits, orientations), par catégorie.",
         "Outreach events recorded in the year (contacts, kits, referrals), by category."),
        OUTREACH, "count", sum(series(totals, year, kind="outreach")), sum(series(totals, prev, kind="outreach")),
        direction="up", monthly=series(totals, year, kind="outreach"),
        monthly_previous=series(totals, prev, kind="outreach"), table=table)
    referrals = Figure(
        "referrals", "accompany", ("Orientations vers le soin et l'hébergement", "Care and accommodation referrals"),
        ("Orientations vers le soin, l'hébergement ou un espace de repos faites par les maraudes.",
         "Referrals to care, accommodation or a rest space made by outreach teams."),
        OUTREACH, "count", sum(series(totals, year, categories=REFERRALS)),
        sum(series(totals, prev, categories=REFERRALS)), direction="up",
        monthly=series(totals, year, categories=REFERRALS),
        table=[r for r in table if r["category"] in REFERRALS])
    return [contacts, referrals, seven_days(conn, year), metro(conn, year), covered_hotspots(conn, year, settings)]


def _contact_days(conn: psycopg.Connection, first: date, end: date) -> set[date]:
    return {r[0] for r in conn.execute(
        "SELECT DISTINCT (occurred_at AT TIME ZONE 'Europe/Paris')::date FROM events "
        "WHERE kind_id = 2 AND occurred_at >= %s::date::timestamp AT TIME ZONE 'Europe/Paris' "
        "AND occurred_at < %s::date::timestamp AT TIME ZONE 'Europe/Paris'", (first, end))}


def seven_days(conn: psycopg.Connection, year: int) -> Figure:
    """Share of the year's days with at least one outreach event, overall and per coordination zone."""
    first, end = year_bounds(year)
    days = _contact_days(conn, first, end)
    before = _contact_days(conn, *year_bounds(year - 1))
    table = []
    zones = conn.execute(
        "SELECT z.name, z.schedule, array_agg(DISTINCT (e.occurred_at AT TIME ZONE 'Europe/Paris')::date) "
        "FILTER (WHERE e.id IS NOT NULL) FROM zones z LEFT JOIN events e ON e.kind_id = 2 "
        "AND e.occurred_at >= %s::date::timestamp AT TIME ZONE 'Europe/Paris' "
        "AND e.occurred_at < %s::date::timestamp AT TIME ZONE 'Europe/Paris' AND ST_Intersects(z.geom, e.geom) "
        "WHERE z.archived_at IS NULL GROUP BY z.id, z.name, z.schedule ORDER BY z.name", (first, end)).fetchall()
    all_days = [first + timedelta(days=i) for i in range((end - first).days)]
    for name, schedule, seen in zones:
        weekdays = {int(s["day"]) for s in schedule or []}
        scheduled = [d for d in all_days if d.weekday() in weekdays]
        covered = len(set(scheduled) & set(seen or []))
        table.append({"zone": name, "scheduled_days": len(scheduled), "days_with_contact": covered,
                      "share": covered / len(scheduled) if scheduled else None})
    return Figure(
        "seven_days", "accompany", ("Présence 7 jours sur 7", "7-day presence"),
        ("Part des jours de l'année avec au moins une intervention de maraude ; par zone de coordination, "
         "part des jours prévus par son planning avec au moins une intervention dans la zone.",
         "Share of the year's days with at least one outreach event; per coordination zone, share of the "
         "days its schedule covers with at least one event inside the zone."),
        OUTREACH + "; coordination zones and their weekly schedules", "share", len(days) / len(all_days),
        len(before) / (year_bounds(year - 1)[1] - year_bounds(year - 1)[0]).days,
        target=_indicator_target(conn, "days_with_contact"), direction="up", table=table,
        note=("Zones et plannings tels qu'ils sont aujourd'hui.", "Zones and schedules as they are today."))


def _stations(conn: psycopg.Connection) -> tuple[list[str], np.ndarray]:
    rows = conn.execute("SELECT DISTINCT ON (name) name, ST_X(geom), ST_Y(geom) FROM stations ORDER BY name, id").fetchall()
    return [r[0] for r in rows], _metres(np.array([r[1] for r in rows]), np.array([r[2] for r in rows]))


def _metres(lng: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Project lon/lat to metres around Paris (equirectangular: well under a metre off over 10 km)."""
    return np.column_stack([np.asarray(lng) * 111_320 * PARIS_COS, np.asarray(lat) * 110_574]) \
        if len(lng) else np.zeros((0, 2))


def metro(conn: psycopg.Connection, year: int) -> Figure:
    """Outreach events near metro or RER stations, and how many distinct stations they reached."""
    names, points = _stations(conn)
    tree = cKDTree(points) if len(points) else None

    def count(y: int) -> tuple[int, int, list[dict]]:
        first, end = year_bounds(y)
        rows = conn.execute(
            "SELECT h3_r11, count(*) FROM events WHERE kind_id = 2 "
            "AND occurred_at >= %s::date::timestamp AT TIME ZONE 'Europe/Paris' "
            "AND occurred_at < %s::date::timestamp AT TIME ZONE 'Europe/Paris' GROUP BY h3_r11", (first, end)).fetchall()
        if not rows or tree is None:
            return 0, 0, []
        cells = np.array([r[0] for r in rows], dtype=np.int64)
        n = np.array([r[1] for r in rows], dtype=np.int64)
        lat, lng = hexagons.cells_to_latlng(cells)  # a stored point is its cell's centre
        near = tree.query_ball_point(_metres(lng, lat), STATION_RADIUS_M)
        per_station = np.zeros(len(names), dtype=np.int64)
        for i, hits in enumerate(near):
            per_station[hits] += n[i]
        events = int(sum(n[i] for i, hits in enumerate(near) if hits))
        order = np.argsort(-per_station, kind="stable")
        table = [{"station": names[i], "events": int(per_station[i])} for i in order[:15] if per_station[i]]
        return events, int((per_station > 0).sum()), table
    events, stations, table = count(year)
    events_before, stations_before, _ = count(year - 1)
    return Figure(
        "metro", "accompany", ("Maraudes dans le métro", "Outreach in the metro"),
        (f"Stations de métro ou RER où au moins une intervention a eu lieu à moins de {STATION_RADIUS_M} m ; "
         f"{events:,} interventions à moins de {STATION_RADIUS_M} m d'une station ({events_before:,} l'année précédente).",
         f"Metro or RER stations with at least one outreach event within {STATION_RADIUS_M} m; "
         f"{events:,} events within {STATION_RADIUS_M} m of a station ({events_before:,} the previous year)."),
        OUTREACH + "; stations of Île-de-France Mobilités", "stations", stations, stations_before,
        direction="up", table=table)


def covered_hotspots(conn: psycopg.Connection, year: int, settings: Settings) -> Figure:
    """Share of hexagons with demand (incidents) that outreach covers (analysis.coverage)."""
    def share(y: int) -> tuple[float | None, list[dict]]:
        first, end = year_bounds(y)
        grid = coverage_gap(conn, start=first, end=end, resolution=9, settings=settings)
        counts = grid["status"].value_counts()
        demand = int(counts.get("no outreach", 0) + counts.get("low outreach", 0) + counts.get("covered", 0))
        rows = [{"status": s, "hexagons": int(n)} for s, n in counts.items()]
        return (int(counts.get("covered", 0)) / demand if demand else None), rows
    value, table = share(year)
    previous, _ = share(year - 1)
    return Figure(
        "coverage_gap", "accompany", ("Lieux de consommation couverts par les maraudes", "Drug-use places covered by outreach"),
        ("Part des hexagones (résolution 9, ~10 ha) avec au moins 5 signalements de consommation ou de matériel "
         "où les interventions de maraude atteignent au moins la moitié des signalements.",
         "Share of hexagons (resolution 9, ~10 ha) with at least 5 drug-use or litter incidents where outreach "
         "events reach at least half the incidents."),
        "incident and outreach events (analysis.coverage)", "share", value, previous, direction="up", table=table)


def accommodation(conn: psycopg.Connection, year: int, totals: pd.DataFrame) -> list[Figure]:
    """Places open at the end of each month against the targets, and referrals against places."""
    figures = []
    ends = [(m.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1) for m in months_of(year)]
    monthly = [open_places(conn, d) for d in ends]
    last, before = monthly[-1], open_places(conn, date(year - 1, 12, 31))
    for kind, label in PLACE_LABELS.items():
        code = PLACE_TARGETS.get(kind)
        figures.append(Figure(
            f"places_{kind}", "accommodation", label,
            ("Places ouvertes au 31 décembre (ouvertes à cette date et pas encore fermées).",
             "Places open on 31 December (opened by then and not yet closed)."),
            "plan places (geo-monitor plan load)", "places", last.get(kind, 0), before.get(kind, 0),
            target=_indicator_target(conn, code) if code else None, direction="up",
            monthly=[m.get(kind, 0) for m in monthly]))
    referrals = sum(series(totals, year, categories=["accommodation_referral"]))
    beds = sum(v for k, v in last.items() if k != "rest_space")
    figures.append(Figure(
        "referrals_per_place", "accommodation", ("Orientations vers l'hébergement par place", "Accommodation referrals per place"),
        ("Orientations vers l'hébergement de l'année divisées par les places d'hébergement ouvertes au 31 décembre.",
         "The year's accommodation referrals divided by the accommodation places open on 31 December."),
        OUTREACH + "; plan places", "ratio", referrals / beds if beds else None,
        table=[{"referrals": referrals, "places": beds}]))
    return figures


def execution(conn: psycopg.Connection, year: int) -> list[Figure]:
    """Actions by status per objective, budget planned against spent per partner, the year's updates."""
    from geo_monitor.plan.actions import list_actions

    first, end = year_bounds(year)
    actions = list_actions(conn, as_of=end - timedelta(days=1))
    table = []
    for number, code in OBJECTIVES.items():
        mine = [a for a in actions if a["objective_id"] == number]
        table.append({"objective": code, "actions": len(mine), **{s: sum(a["status"] == s for a in mine) for s in STATUSES}})
    done = sum(a["status"] == "done" for a in actions)
    before = list_actions(conn, as_of=first - timedelta(days=1))
    status = Figure(
        "actions_done", "execution", ("Actions réalisées", "Actions done"),
        ("Actions dont la dernière mise à jour de l'année dit « réalisée », sur les actions du plan enregistrées.",
         "Actions whose latest update of the year says done, out of the plan's recorded actions."),
        "plan actions and their updates", "actions", done, sum(a["status"] == "done" for a in before),
        target=len(actions) or None, direction="up", table=table)
    planned = dict(conn.execute("SELECT partner, sum(amount) FROM plan_budgets WHERE year = %s GROUP BY partner",
                                (year,)).fetchall())
    spent_end, spent_start = spent_by_partner(conn, end), spent_by_partner(conn, first)
    partners = sorted(set(planned) | set(spent_end))
    money = [{"partner": p, "planned": float(planned.get(p, 0)),
              "spent": spent_end.get(p, 0.0) - spent_start.get(p, 0.0)} for p in partners]
    budget = Figure(
        "budget", "execution", ("Budget dépensé et budget prévu", "Budget spent against planned"),
        ("Dépenses de l'année (différence des montants dépensés déclarés à fin d'année et à fin d'année précédente), "
         "par partenaire, face au budget prévu pour l'année.",
         "The year's spending (amounts spent to date reported by the end of the year minus those by the end of the "
         "previous year), per partner, against the budget planned for the year."),
        "plan budgets and updates", "euros", sum(m["spent"] for m in money),
        target=float(sum(planned.values())) or None, table=money)
    updates = list_updates(conn, start=first, end=end)
    log = Figure(
        "updates", "execution", ("Mises à jour de l'année", "The year's updates"),
        ("Chaque mise à jour d'action datée dans l'année (l'historique ne se modifie pas : une correction est une "
         "nouvelle ligne).", "Every action update dated in the year (the history is never edited: a correction is "
         "a new row)."), "plan updates", "count", len(updates),
        table=[{"date": u["on_date"].isoformat(), "action": u["action_id"], "status": u["status"],
                "note": u["note"] or ""} for u in updates])
    return [status, budget, log]


def year_figures(conn: psycopg.Connection, year: int, settings: Settings,
                 progress: Callable[[str], None] | None = None) -> list[Figure]:
    """Return every figure of the yearly evaluation of ``year`` (each with the previous year beside it)."""
    from geo_monitor.plan import evidence

    say = progress or (lambda _: None)
    totals = monthly_totals(conn, date(year - 2, 1, 1), date(year + 1, 1, 1))
    say("accompany users")
    figures = accompany(conn, year, totals, settings)
    say("accommodation")
    figures += accommodation(conn, year, totals)
    say("public space")
    figures += evidence.public_space(conn, year, totals, settings, progress=say)
    say("knowledge and data quality")
    figures += evidence.knowledge(conn, year, totals)
    say("execution")
    figures += execution(conn, year)
    return figures
