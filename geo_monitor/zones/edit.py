"""Coordination zones: create, edit and archive, each change kept in the zone's history.

Rules:
- a police, outreach, planner or admin principal creates zones owned by its own team;
- only the owner team edits or archives a zone; a team that can see a zone but does not own
  it (a partner, a planner) gets ``AccessDeniedError`` saying so; a team that cannot see it
  gets ``NotFoundError`` (see ``geo_monitor.zones.records`` for who sees what);
- every edit names the version it was based on; the row is locked, and an edit based on an
  older version fails with ``ZoneConflictError`` (HTTP 409), so the loser of two concurrent
  edits never overwrites the winner silently.

The read paths (``get_zone``, ``list_zones``, ``zone_history``, ``zone_cells``,
``zones_frame``) are re-exported here, so ``geo_monitor.zones.edit`` is the one import.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

import psycopg
import shapely
from psycopg.types.json import Jsonb

from geo_monitor.errors import AccessDeniedError, InvalidArgumentError, ZoneConflictError
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import Principal
from geo_monitor.zones.geometry import ZONE_RESOLUTIONS, prepare_shape, zone_cover
from geo_monitor.zones.records import (
    EDITORS,
    SEE_ALL,
    Zone,
    as_instant,
    can_see,
    get_zone,
    list_zones,
    load_zone,
    team_roles,
    zone_cells,
    zone_history,
    zones_frame,
)
from geo_monitor.zones.schedule import check_team_name, normalize_schedule

MAX_PARTNERS = 50
__all__ = ["EDITORS", "SEE_ALL", "Zone", "ZoneConflictError", "archive_zone", "as_instant", "can_see", "create_zone",
           "get_zone", "list_zones", "team_roles", "update_zone", "zone_cells", "zone_history", "zones_frame"]


def _check_name(name: object) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
        raise InvalidArgumentError("a zone name is 1-120 characters", "name")
    return name.strip()


def _check_partners(conn: psycopg.Connection, partners: Iterable[str], owner: str) -> list[str]:
    if isinstance(partners, str):
        raise InvalidArgumentError("partner_teams must be a list of team names", "partner_teams")
    names = sorted({check_team_name(p, "partner_teams") for p in partners} - {owner})
    if len(names) > MAX_PARTNERS:
        raise InvalidArgumentError(f"a zone has at most {MAX_PARTNERS} partner teams", "partner_teams")
    known = team_roles(conn) if names else {}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InvalidArgumentError(f"unknown team(s) {', '.join(unknown)}: a team is known once it has a token "
                                   "(geo-monitor token create)", "partner_teams")
    return names


def _check_editor(principal: Principal) -> None:
    if not access.allows(principal, "zones"):
        raise AccessDeniedError(f"the {principal.role} role may not edit coordination zones")


def _write_cells(conn: psycopg.Connection, zone_id: int, geometry: shapely.Geometry) -> None:
    conn.execute("DELETE FROM zone_cells WHERE zone_id = %s", (zone_id,))
    with conn.cursor().copy("COPY zone_cells (zone_id, resolution, cell) FROM STDIN") as copy:
        for resolution in ZONE_RESOLUTIONS:
            for cell in zone_cover(geometry, resolution):
                copy.write_row((zone_id, resolution, int(cell)))


def _record(conn: psycopg.Connection, principal: Principal, action: str, before: Zone | None, after: Zone) -> None:
    conn.execute(
        "INSERT INTO zone_history (zone_id, version, action, changed_at, changed_by_role, changed_by_team, "
        "token_id, before, after) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (after.id, after.version, action, after.updated_at, principal.role, principal.team, principal.token_id,
         Jsonb(before.snapshot()) if before else None, Jsonb(after.snapshot())),
    )


def _clock(conn: psycopg.Connection) -> datetime:
    """Return the server's wall clock: several changes in one transaction keep their order in time."""
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]


def _who(principal: Principal) -> str:
    return f"{principal.role}:{principal.team}"


def create_zone(conn: psycopg.Connection, principal: Principal, *, name: str, geometry: dict | shapely.Geometry,
                partner_teams: Iterable[str] = (), schedule: Iterable[Mapping] = ()) -> Zone:
    """Create a zone owned by the principal's team; return it (``notes`` say what was repaired or clipped).

    Parameters
    ----------
    principal
        The creator; its team owns the zone.
    name
        1-120 characters.
    geometry
        GeoJSON Polygon or MultiPolygon (or a Feature holding one), lon/lat; repaired or refused
        when invalid, clipped to the study area.
    partner_teams
        Known teams that share the zone (they see it and may appear in its schedule).
    schedule
        Weekly coverage entries, see ``geo_monitor.zones.schedule``.
    """
    _check_editor(principal)
    name = _check_name(name)
    partners = _check_partners(conn, partner_teams, principal.team)
    entries = normalize_schedule(schedule, {principal.team, *partners})
    shape = prepare_shape(conn, geometry)
    with conn.transaction():
        stamp = _clock(conn)
        zone_id = conn.execute(
            "INSERT INTO zones (name, owner_team, partner_teams, geom, clipped_share, schedule, created_at, created_by, "
            "updated_at, updated_by) VALUES (%s, %s, %s, ST_GeomFromWKB(%s, 4326), %s, %s, %s, %s, %s, %s) RETURNING id",
            (name, principal.team, partners, shapely.to_wkb(shape.geometry), shape.clipped_share, Jsonb(entries),
             stamp, _who(principal), stamp, _who(principal)),
        ).fetchone()[0]
        _write_cells(conn, zone_id, shape.geometry)
        zone = load_zone(conn, None, zone_id)
        _record(conn, principal, "create", None, zone)
    zone.notes = shape.notes
    return zone


def _locked_for_edit(conn: psycopg.Connection, principal: Principal, zone_id: int, version: int) -> Zone:
    _check_editor(principal)
    current = load_zone(conn, principal, zone_id, lock=True)
    if current.owner_team != principal.team:
        raise AccessDeniedError(f"zone {zone_id} belongs to team {current.owner_team}; only its owner edits it")
    if current.archived_at is not None:
        raise ZoneConflictError(f"zone {zone_id} is archived; it can no longer be changed", current.version,
                                current.etag)
    if isinstance(version, bool) or not isinstance(version, int) or version != current.version:
        raise ZoneConflictError(f"zone {zone_id} was changed since version {version}: it is at version "
                                f"{current.version}; reload it and apply your edit again", current.version,
                                current.etag)
    return current


def update_zone(conn: psycopg.Connection, principal: Principal, zone_id: int, *, version: int,
                name: str | None = None, geometry: dict | shapely.Geometry | None = None,
                partner_teams: Iterable[str] | None = None, schedule: Iterable[Mapping] | None = None) -> Zone:
    """Change a zone the principal's team owns, from the ``version`` it read; None leaves a field as it is.

    Raises ``ZoneConflictError`` when the zone moved past ``version`` (a concurrent edit won).
    An edit that changes nothing returns the zone unchanged (no new version).
    """
    with conn.transaction():
        current = _locked_for_edit(conn, principal, zone_id, version)
        new_name = current.name if name is None else _check_name(name)
        partners = (current.partner_teams if partner_teams is None
                    else _check_partners(conn, partner_teams, current.owner_team))
        entries = normalize_schedule(current.schedule if schedule is None else schedule,
                                     {current.owner_team, *partners})
        shape = prepare_shape(conn, geometry) if geometry is not None else None
        same_shape = shape is None or shape.geometry.equals(current.geometry)
        if (new_name, partners, entries) == (current.name, current.partner_teams, current.schedule) and same_shape:
            return current
        params = {"id": zone_id, "v": version, "name": new_name, "partners": partners, "schedule": Jsonb(entries),
                  "by": _who(principal), "at": _clock(conn)}
        set_geometry = ""
        if shape is not None:
            set_geometry = ", geom = ST_GeomFromWKB(%(wkb)s, 4326), clipped_share = %(share)s"
            params.update(wkb=shapely.to_wkb(shape.geometry), share=shape.clipped_share)
        conn.execute(f"UPDATE zones SET name = %(name)s, partner_teams = %(partners)s, schedule = %(schedule)s, "
                     f"version = version + 1, updated_at = %(at)s, updated_by = %(by)s{set_geometry} "
                     "WHERE id = %(id)s AND version = %(v)s", params)
        if shape is not None:
            _write_cells(conn, zone_id, shape.geometry)
        zone = load_zone(conn, None, zone_id)
        _record(conn, principal, "update", current, zone)
    zone.notes = shape.notes if shape is not None else []
    return zone


def archive_zone(conn: psycopg.Connection, principal: Principal, zone_id: int, *, version: int) -> Zone:
    """Archive a zone the principal's team owns (kept, with its history, but no longer active)."""
    with conn.transaction():
        current = _locked_for_edit(conn, principal, zone_id, version)
        stamp = _clock(conn)
        conn.execute("UPDATE zones SET archived_at = %s, version = version + 1, updated_at = %s, updated_by = %s "
                     "WHERE id = %s AND version = %s", (stamp, stamp, _who(principal), zone_id, version))
        zone = load_zone(conn, None, zone_id)
        _record(conn, principal, "archive", current, zone)
    return zone


