"""A zone's summary: incidents and outreach over a window and the one before, hotspots, works, stations.

Counts are sums of hexagon counts over the zone's H3 cover (``analysis.counts.count_cells``), so
a zone's count equals the sum of ``hex_counts`` over its cells at the same resolution.

Role rules (as for hexagon slices): police get no outreach figures at all (the key is left
out, not zeroed); an outreach team gets the outreach of its own team's sources only;
planners and admins get every team's outreach.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
import psycopg
from scipy.stats import binomtest

from geo_monitor.analysis.counts import category_ids, count_cells, team_sources
from geo_monitor.analysis.hotspots import hotspots
from geo_monitor.calendar import Window
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings, get_settings
from geo_monitor.zones.edit import get_zone, zone_cells
from geo_monitor.zones.geometry import ZONE_RESOLUTION, check_zone_resolution
from geo_monitor.zones.schedule import coverage_hours, hours_by_team

TREND_ALPHA = 0.05
HOT_BIN = 2  # Gi* bins 2 and 3: hot at 95 % and 99 % confidence


def previous_window(window: Window) -> Window:
    """Return the window of the same length just before ``window``."""
    try:
        return Window(window.start - (window.end - window.start), window.start)
    except OverflowError:
        raise InvalidArgumentError(f"no window of the same length before {window.start}", "start") from None


def trend(current: int, previous: int) -> dict[str, Any]:
    """Compare two counts over windows of equal length.

    Under equal rates the current count is Binomial(current + previous, 1/2) (conditional
    Poisson test); the trend is "up" or "down" only when that test rejects at ``TREND_ALPHA``.
    """
    total = current + previous
    p = binomtest(current, total, 0.5).pvalue if total else 1.0
    label = "stable" if p >= TREND_ALPHA else ("up" if current > previous else "down")
    return {"count": current, "previous": previous, "change": current - previous,
            "change_pct": round(100 * (current - previous) / previous, 1) if previous else None,
            "p_value": round(float(p), 6), "trend": label}


def _counts(conn: psycopg.Connection, kind: str, cells: np.ndarray, window: Window, previous: Window,
            resolution: int, source_ids: list[int] | None) -> dict[str, Any]:
    names = dict(conn.execute("SELECT c.id, c.name FROM categories c JOIN kinds k ON k.id = c.kind_id "
                              "WHERE k.name = %s", (kind,)).fetchall())
    ids = category_ids(conn, [kind])

    def total(category: list[int], span: Window) -> int:
        counts = count_cells(conn, category, span, resolution, source_ids=source_ids)
        return int(counts.reindex(cells, fill_value=0).sum())

    result = trend(total(ids, window), total(ids, previous))
    by_category = {names[i]: total([i], window) for i in ids}
    result["by_category"] = {k: v for k, v in sorted(by_category.items()) if v}
    return result


def zone_summary(conn: psycopg.Connection, principal: Principal | None, zone_id: int, *, start: date | str,
                 end: date | str, resolution: int = ZONE_RESOLUTION,
                 settings: Settings | None = None) -> dict[str, Any]:
    """Return what a coordinator needs to know about a zone over a window.

    Parameters
    ----------
    principal
        Who asks: visibility and role rules (None: the library, everything).
    start, end
        Paris calendar days, ``end`` exclusive; the trend compares with the window of the
        same length just before.
    resolution
        Resolution of the zone's H3 cover used for the counts and hotspots (9, 10 or 11).

    Returns
    -------
    dict with ``zone`` (id, name, teams, version), ``window``, ``previous_window``,
    ``resolution``, ``cells``, ``area_m2``, ``incidents`` and (not for police) ``outreach``
    (count, previous, change, change_pct, p_value, trend, by_category), ``hotspots``
    (significant hot cells of the zone: h3, count, z, gi_bin), ``works`` in progress during
    the window, ``stations`` inside, ``coverage_hours_per_week``, ``coverage_hours_by_team``
    and ``notes``.
    """
    settings = settings or get_settings()
    check_zone_resolution(resolution)
    zone = get_zone(conn, principal, zone_id)
    window = Window.of(start, end)
    previous = previous_window(window)
    cells = zone_cells(conn, zone_id, resolution)
    notes = [f"counts are sums over the zone's {len(cells)} resolution-{resolution} cells (overlap cover: "
             "events in the cells' parts outside the polygon count too)"]
    summary: dict[str, Any] = {
        "zone": {"id": zone.id, "name": zone.name, "owner_team": zone.owner_team,
                 "partner_teams": zone.partner_teams, "version": zone.version,
                 "archived_at": zone.archived_at.isoformat() if zone.archived_at else None},
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
        "previous_window": {"start": previous.start.isoformat(), "end": previous.end.isoformat()},
        "resolution": resolution, "cells": len(cells), "area_m2": round(zone.area_m2, 1),
        "incidents": _counts(conn, "incident", cells, window, previous, resolution, None),
    }
    scope = access.outreach_scope(principal)
    if scope == "team":
        summary["outreach"] = _counts(conn, "outreach", cells, window, previous, resolution,
                                      team_sources(conn, principal.team))
        notes.append(f"outreach: only team {principal.team}'s own records")
    elif scope == "all":
        summary["outreach"] = _counts(conn, "outreach", cells, window, previous, resolution, None)
    # "protected" (police): a zone is a free area and a free window, never a protected table, so the
    # outreach key is absent (not zeroed); police see outreach only through access.hex_counts.
    hot = hotspots(conn, start=window.start, end=window.end, resolution=resolution, kinds=["incident"],
                   settings=settings)
    hot = hot[hot["cell"].isin(cells) & (hot["gi_bin"] >= HOT_BIN)]
    summary["hotspots"] = [{"h3": h, "count": int(c), "z": round(float(z), 3), "gi_bin": int(b)}
                           for h, c, z, b in zip(hot["h3"], hot["count"], hot["z"], hot["gi_bin"], strict=True)]
    summary["works"] = works_in_zone(conn, zone_id, window)
    summary["stations"] = stations_in_zone(conn, zone_id)
    summary["coverage_hours_per_week"] = coverage_hours(zone.schedule)
    summary["coverage_hours_by_team"] = hours_by_team(zone.schedule)
    summary["notes"] = notes
    return summary


def works_in_zone(conn: psycopg.Connection, zone_id: int, window: Window) -> list[dict[str, Any]]:
    """Return the works sites touching the zone and in progress at some time during the window."""
    rows = conn.execute(
        "SELECT w.id, w.street, w.purpose, w.owner, w.starts_at, w.ends_at FROM works_sites w, zones z "
        "WHERE z.id = %s AND ST_Intersects(w.geom, z.geom) AND (w.starts_at IS NULL OR w.starts_at < %s) "
        "AND (w.ends_at IS NULL OR w.ends_at >= %s) ORDER BY w.starts_at NULLS FIRST, w.id",
        (zone_id, window.instant(window.end), window.instant(window.start)),
    ).fetchall()
    return [{"id": i, "street": s, "purpose": p, "owner": o, "starts_at": a.isoformat() if a else None,
             "ends_at": b.isoformat() if b else None} for i, s, p, o, a, b in rows]


def stations_in_zone(conn: psycopg.Connection, zone_id: int) -> list[dict[str, Any]]:
    """Return the stations inside the zone, one per name, with their lines and modes."""
    rows = conn.execute(
        "SELECT s.name, array_agg(DISTINCT s.line ORDER BY s.line), array_agg(DISTINCT s.mode ORDER BY s.mode), "
        "ST_X(ST_Centroid(ST_Collect(s.geom))), ST_Y(ST_Centroid(ST_Collect(s.geom))) "
        "FROM stations s, zones z WHERE z.id = %s AND ST_Intersects(z.geom, s.geom) GROUP BY s.name ORDER BY s.name",
        (zone_id,),
    ).fetchall()
    return [{"name": n, "lines": list(lines), "modes": list(modes), "lon": round(x, 6), "lat": round(y, 6)}
            for n, lines, modes, x, y in rows]
