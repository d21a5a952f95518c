"""Coordination zones as stored: the Zone record, who may see which zone, and the read paths.

Visibility: admin and planner see every zone; police and outreach teams see the zones their
team owns or is a partner of. Any other zone does not exist for them (``NotFoundError``).
Writes live in ``geo_monitor.zones.edit``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import shapely
import shapely.geometry

from geo_monitor.calendar import PARIS
from geo_monitor.errors import AccessDeniedError, InvalidArgumentError, NotFoundError
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import Principal
from geo_monitor.zones.geometry import ZONE_RESOLUTION, check_zone_resolution
from geo_monitor.zones.schedule import check_team_name, coverage_hours, hours_by_team

EDITORS = ("admin", "planner", "police", "outreach")
SEE_ALL = ("admin", "planner")
_COLUMNS = ("id, name, owner_team, partner_teams, ST_AsBinary(geom), schedule, version, archived_at, created_at, "
            "created_by, updated_at, updated_by, clipped_share, ST_Area(geom::geography)")


@dataclass
class Zone:
    """One zone as stored (or as it was at a past instant)."""

    id: int
    name: str
    owner_team: str
    partner_teams: list[str]
    geometry: shapely.MultiPolygon
    schedule: list[dict]
    version: int
    archived_at: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str
    clipped_share: float
    area_m2: float
    notes: list[str] = field(default_factory=list)  # what the last write did (repair, clip); not stored

    @property
    def etag(self) -> str:
        """Return the HTTP entity tag of this version."""
        return f'"zone-{self.id}-v{self.version}"'

    @property
    def teams(self) -> list[str]:
        """Return the owner and the partners."""
        return [self.owner_team, *self.partner_teams]

    def properties(self) -> dict[str, Any]:
        """Return the zone's properties as plain JSON values (GeoJSON feature properties)."""
        return {
            "name": self.name, "owner_team": self.owner_team, "partner_teams": list(self.partner_teams),
            "schedule": self.schedule, "version": self.version,
            "archived_at": _iso(self.archived_at), "created_at": _iso(self.created_at),
            "created_by": self.created_by, "updated_at": _iso(self.updated_at), "updated_by": self.updated_by,
            "clipped_share": round(self.clipped_share, 6), "area_m2": round(self.area_m2, 1),
            "coverage_hours_per_week": coverage_hours(self.schedule),
            "coverage_hours_by_team": hours_by_team(self.schedule),
        }

    def to_feature(self) -> dict[str, Any]:
        """Return the zone as a GeoJSON Feature (its id is the zone id)."""
        return {"type": "Feature", "id": self.id, "geometry": shapely.geometry.mapping(self.geometry),
                "properties": self.properties()}

    def snapshot(self) -> dict[str, Any]:
        """Return what the history keeps of this version."""
        keys = ("name", "owner_team", "partner_teams", "schedule", "version", "archived_at", "created_at",
                "created_by", "updated_at", "updated_by", "clipped_share", "area_m2")
        props = self.properties()
        return {"geometry": shapely.geometry.mapping(self.geometry), **{k: props[k] for k in keys}}

    @classmethod
    def from_snapshot(cls, zone_id: int, snap: Mapping[str, Any]) -> Zone:
        """Rebuild a zone from a history snapshot."""
        return cls(zone_id, snap["name"], snap["owner_team"], list(snap["partner_teams"]),
                   shapely.geometry.shape(snap["geometry"]), _entries(snap["schedule"]), snap["version"],
                   _parse(snap["archived_at"]), _parse(snap["created_at"]), snap["created_by"],
                   _parse(snap["updated_at"]), snap["updated_by"], snap["clipped_share"], snap["area_m2"])


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _entries(schedule: list[Mapping]) -> list[dict]:
    """Return schedule entries with their keys in reading order (jsonb sorts them)."""
    return [{"day": e["day"], "start": e["start"], "end": e["end"], "team": e["team"]} for e in schedule]


def _row_zone(row: tuple) -> Zone:
    return Zone(row[0], row[1], row[2], list(row[3]), shapely.from_wkb(row[4]), _entries(row[5]), row[6], row[7],
                row[8], row[9], row[10], row[11], float(row[12]), float(row[13]))


def _visibility(principal: Principal | None) -> tuple[str, dict]:
    """Return the SQL condition (and its parameters) of the zones a principal may see."""
    if access.sees_all_zones(principal):
        return "TRUE", {}
    if not access.allows(principal, "zones"):
        raise AccessDeniedError(f"the {principal.role} role has no access to coordination zones")
    return "(owner_team = %(team)s OR %(team)s = ANY(partner_teams))", {"team": principal.team}


def can_see(principal: Principal | None, zone: Zone) -> bool:
    """Return whether a principal may see a zone (None: the library itself, sees everything)."""
    return access.sees_all_zones(principal) or principal.team in zone.teams


def load_zone(conn: psycopg.Connection, principal: Principal | None, zone_id: int, *, lock: bool = False) -> Zone:
    """Return a zone the principal may see (optionally locked FOR UPDATE), else ``NotFoundError``."""
    where, params = _visibility(principal)
    row = conn.execute(f"SELECT {_COLUMNS} FROM zones WHERE id = %(id)s AND {where}"
                       f"{' FOR UPDATE' if lock else ''}", {**params, "id": zone_id}).fetchone()
    if row is None:
        raise NotFoundError(f"no zone {zone_id} (or not one your team owns or partners)")
    return _row_zone(row)


def team_roles(conn: psycopg.Connection) -> dict[str, set[str]]:
    """Return the roles of each known team (a team is known once it has had a token)."""
    roles: dict[str, set[str]] = {}
    for team, role in conn.execute("SELECT DISTINCT team, role FROM api_tokens").fetchall():
        roles.setdefault(team, set()).add(role)
    return roles


def as_instant(at: datetime | date | str) -> tuple[datetime, bool]:
    """Return (instant, inclusive) for an ``at`` value.

    A date means the end of that Paris day (every change made that day counts); a datetime
    without offset is Paris time.
    """
    if isinstance(at, str):
        at = at.strip()
        if "T" in at and " " in at:  # an unencoded "+01:00" in a URL arrives as " 01:00"
            at = at.replace(" ", "+")
        try:
            at = datetime.fromisoformat(at) if ("T" in at or " " in at.strip()) else date.fromisoformat(at)
        except ValueError:
            raise InvalidArgumentError(f"at: expected a date YYYY-MM-DD or an ISO datetime, got {at[:40]!r}",
                                       "at") from None
    if isinstance(at, datetime):
        return (at if at.tzinfo else at.replace(tzinfo=PARIS)), True
    if at >= date.max - timedelta(days=1):
        raise InvalidArgumentError(f"at: {at} is out of range", "at")
    return datetime.combine(at + timedelta(days=1), time(), tzinfo=PARIS), False


def get_zone(conn: psycopg.Connection, principal: Principal | None, zone_id: int, *,
             at: datetime | date | str | None = None) -> Zone:
    """Return a zone the principal may see, as it is now or as it was at ``at``.

    Raises ``NotFoundError`` for a zone the principal may not see, or one that did not exist yet.
    """
    zone = load_zone(conn, principal, zone_id)
    if at is None:
        return zone
    instant, inclusive = as_instant(at)
    row = conn.execute(
        f"SELECT after FROM zone_history WHERE zone_id = %s AND changed_at {'<=' if inclusive else '<'} %s "
        "ORDER BY version DESC LIMIT 1", (zone_id, instant),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"zone {zone_id} did not exist yet at {instant.isoformat()}")
    return Zone.from_snapshot(zone_id, row[0])


def list_zones(conn: psycopg.Connection, principal: Principal | None, *, include_archived: bool = False) -> list[Zone]:
    """Return the zones a principal may see (None: all), active only unless asked."""
    where, params = _visibility(principal)
    active = "" if include_archived else " AND archived_at IS NULL"
    rows = conn.execute(f"SELECT {_COLUMNS} FROM zones WHERE {where}{active} ORDER BY id", params).fetchall()
    return [_row_zone(r) for r in rows]


def zone_history(conn: psycopg.Connection, principal: Principal | None, zone_id: int) -> list[dict[str, Any]]:
    """Return every change of a zone the principal may see, oldest first: who, when, before and after."""
    load_zone(conn, principal, zone_id)
    rows = conn.execute(
        "SELECT version, action, changed_at, changed_by_role, changed_by_team, before, after FROM zone_history "
        "WHERE zone_id = %s ORDER BY version", (zone_id,),
    ).fetchall()
    return [{"version": v, "action": a, "changed_at": t.isoformat(), "changed_by": {"role": r, "team": team},
             "before": b, "after": after} for v, a, t, r, team, b, after in rows]


def zone_cells(conn: psycopg.Connection, zone_id: int, resolution: int = ZONE_RESOLUTION) -> np.ndarray:
    """Return the sorted int64 cells of a zone's cover at a resolution (9, 10 or 11)."""
    check_zone_resolution(resolution)
    rows = conn.execute("SELECT cell FROM zone_cells WHERE zone_id = %s AND resolution = %s ORDER BY cell",
                        (zone_id, resolution)).fetchall()
    return np.array([r[0] for r in rows], dtype=np.int64)


def zones_frame(conn: psycopg.Connection, principal_or_team: Principal | str | None = None, *,
                include_archived: bool = False) -> gpd.GeoDataFrame:
    """Return the zones as a GeoDataFrame (EPSG:4326) for maps and exports.

    ``principal_or_team``: a Principal (its visibility rules), a team name (the zones it owns
    or partners) or None (every zone). Columns: ``id``, ``name``, ``owner_team``,
    ``partner_teams`` (list), ``schedule`` (list of {day, start, end, team}), ``version``,
    ``archived_at``, ``coverage_hours`` (per week) and ``geometry``.
    """
    if isinstance(principal_or_team, str):  # a team's view: what a police or outreach principal of it sees
        principal_or_team = Principal(role="police", team=check_team_name(principal_or_team, "team"))
    zones = list_zones(conn, principal_or_team, include_archived=include_archived)
    columns = ["id", "name", "owner_team", "partner_teams", "schedule", "version", "archived_at", "coverage_hours"]
    data = {c: [] for c in columns}
    for z in zones:
        for column, value in zip(columns, (z.id, z.name, z.owner_team, z.partner_teams, z.schedule, z.version,
                                           z.archived_at, coverage_hours(z.schedule)), strict=True):
            data[column].append(value)
    return gpd.GeoDataFrame(data, geometry=[z.geometry for z in zones], crs="EPSG:4326")

