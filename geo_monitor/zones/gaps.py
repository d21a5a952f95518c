"""Coverage gaps of the coordination zones over a window.

Four questions, on the active (not archived) zones:

1. uncovered hotspots: significant Gi* hot cells (bin 2 or 3, FDR-corrected, incidents by
   default) that lie in no zone's H3 cover at the same resolution;
2. hotspot zones: zones whose cover holds a significant hot cell, with the hours of the week
   (168 hourly slots) that no team of the zone covers entirely;
3. metro stations of the study area (one per name, all its lines) lying in no zone where an
   outreach team is scheduled: a team named as partner but never scheduled covers nothing;
4. conflicting schedules: two zones overlapping by more than ``MIN_OVERLAP_M2`` where a
   police team is scheduled in one and an outreach team in the other at the same time. That
   is what coordination avoids (a patrol keeps people away from a maraude). Teams are police
   or outreach by the role of their tokens; police and outreach in the same zone at the same
   time are left to the zone's owner, who sees its own schedule.

Coverage is a fact about every zone, so the answers are computed on all zones; a police or
outreach caller only sees the details of the zones it may see: hotspot zones of its own, and
conflicts involving one of its zones, the other side shown without id or team.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import geopandas as gpd
import numpy as np
import psycopg
import shapely
import shapely.geometry

from geo_monitor.analysis.hotspots import hotspots
from geo_monitor.calendar import Window
from geo_monitor.errors import AccessDeniedError
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings, get_settings
from geo_monitor.zones.edit import Zone, can_see, list_zones, team_roles
from geo_monitor.zones.geometry import ZONE_RESOLUTION, check_zone_resolution
from geo_monitor.zones.schedule import mask_ranges, slots_mask, uncovered_slots, week_mask

HOT_BIN = 2
MIN_OVERLAP_M2 = 1.0  # zones sharing only an edge do not overlap


@dataclass
class ZoneGaps:
    """The answers of ``zone_gaps``."""

    window: Window
    resolution: int
    kinds: list[str]
    hotspots: gpd.GeoDataFrame  # significant hot cells: cell, h3, count, z, gi_bin, label, covered, geometry
    hotspot_zones: list[dict[str, Any]]
    stations: gpd.GeoDataFrame  # metro stations of the study area: name, lines, covered, geometry
    conflicts: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    @property
    def uncovered_hotspots(self) -> gpd.GeoDataFrame:
        """Return the significant hot cells in no zone."""
        return self.hotspots[~self.hotspots["covered"]].reset_index(drop=True)

    @property
    def uncovered_stations(self) -> gpd.GeoDataFrame:
        """Return the metro stations without outreach coverage."""
        return self.stations[~self.stations["covered"]].reset_index(drop=True)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON values (GeoJSON FeatureCollections for the map layers)."""
        return {
            "window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
            "resolution": self.resolution, "kinds": self.kinds,
            "hotspots": {"significant": len(self.hotspots), "uncovered": len(self.uncovered_hotspots)},
            "uncovered_hotspots": _collection(self.uncovered_hotspots, ["h3", "count", "z", "gi_bin"]),
            "hotspot_zones": self.hotspot_zones,
            "stations": {"metro_stations": len(self.stations), "uncovered": len(self.uncovered_stations)},
            "uncovered_stations": _collection(self.uncovered_stations, ["name", "lines"]),
            "conflicts": self.conflicts,
            "notes": self.notes,
        }


def _collection(frame: gpd.GeoDataFrame, columns: list[str]) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, np.generic):
            return value.item()
        return list(value) if isinstance(value, (list, tuple, np.ndarray)) else value

    features = [{"type": "Feature", "geometry": shapely.geometry.mapping(g),
                 "properties": {c: plain(v) for c, v in zip(columns, values, strict=True)}}
                for g, *values in zip(frame.geometry, *(frame[c] for c in columns), strict=True)]
    return {"type": "FeatureCollection", "features": features}


def zone_gaps(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int = ZONE_RESOLUTION,
              principal: Principal | None = None, kinds: list[str] | None = None,
              categories: list[str] | None = None, settings: Settings | None = None) -> ZoneGaps:
    """Return the coverage gaps of the active zones over a window (see the module docstring).

    Parameters
    ----------
    start, end
        Paris calendar days of the hotspot window, ``end`` exclusive.
    resolution
        H3 resolution of the hotspots and the zones' covers (9, 10 or 11).
    principal
        Who asks (None: the library, every detail). Police and outreach see the details of
        their own zones only.
    kinds, categories
        The events whose hotspots count (default: every incident).
    """
    settings = settings or get_settings()
    check_zone_resolution(resolution)
    if principal is not None and not access.allows(principal, "zones"):
        raise AccessDeniedError(f"the {principal.role} role has no access to coordination zones")
    window = Window.of(start, end)
    kinds = kinds or ["incident"]
    zones = list_zones(conn, None)
    covers = dict(conn.execute(
        "SELECT c.zone_id, array_agg(c.cell) FROM zone_cells c JOIN zones z ON z.id = c.zone_id "
        "WHERE z.archived_at IS NULL AND c.resolution = %s GROUP BY c.zone_id", (resolution,)).fetchall())
    covered = np.unique(np.concatenate([np.array(c, dtype=np.int64) for c in covers.values()] or [np.zeros(0, np.int64)]))

    hot = hotspots(conn, start=window.start, end=window.end, resolution=resolution, kinds=kinds,
                   categories=categories, settings=settings)
    hot = hot[hot["gi_bin"] >= HOT_BIN][["cell", "h3", "count", "z", "gi_bin", "label", "geometry"]]
    hot = hot.reset_index(drop=True)
    hot["covered"] = hot["cell"].isin(covered).to_numpy()
    hot_cells = set(hot["cell"].tolist())

    visible = [z for z in zones if can_see(principal, z)]
    hotspot_zones = []
    for zone in visible:
        inside = sorted(hot_cells.intersection(covers.get(zone.id, [])))
        if inside:
            slots = uncovered_slots(zone.schedule)
            hotspot_zones.append({
                "id": zone.id, "name": zone.name, "owner_team": zone.owner_team,
                "hotspot_cells": hot.loc[hot["cell"].isin(inside), "h3"].tolist(),
                "uncovered_hours": len(slots), "uncovered": mask_ranges(slots_mask(slots))})

    roles = team_roles(conn)
    stations = _stations(conn, [z.id for z in zones if any("outreach" in roles.get(e["team"], ()) for e in z.schedule)])
    conflicts = _conflicts(conn, zones, roles, principal)
    notes = [f"hotspots: Getis-Ord Gi* bins >= {HOT_BIN} (95 % confidence, FDR) on {', '.join(kinds)}",
             "uncovered hours: hourly slots of the week (Monday = 0) not wholly covered by the zone's schedule",
             "stations: METRO stations of the study area in no zone where an outreach team is scheduled",
             "conflicts: police in one zone and outreach in an overlapping zone at the same time"]
    return ZoneGaps(window, resolution, kinds, gpd.GeoDataFrame(hot, geometry="geometry", crs="EPSG:4326"),
                    hotspot_zones, stations, conflicts, notes)


def _stations(conn: psycopg.Connection, outreach_zones: list[int]) -> gpd.GeoDataFrame:
    rows = conn.execute(
        "SELECT s.name, array_agg(DISTINCT s.line ORDER BY s.line), ST_AsBinary(ST_Centroid(ST_Collect(s.geom))), "
        "bool_or(EXISTS (SELECT 1 FROM zones z WHERE z.id = ANY(%s) AND ST_Intersects(z.geom, s.geom))) "
        "FROM stations s, study_area a WHERE s.mode = 'METRO' AND ST_Intersects(a.geom, s.geom) "
        "GROUP BY s.name ORDER BY s.name", (outreach_zones,),
    ).fetchall()
    return gpd.GeoDataFrame({"name": [r[0] for r in rows], "lines": [list(r[1]) for r in rows],
                             "covered": np.array([bool(r[3]) for r in rows], dtype=bool)},
                            geometry=shapely.from_wkb([r[2] for r in rows]), crs="EPSG:4326")


def _side(zone: Zone, team: str, shown: bool) -> dict[str, Any]:
    if shown:
        return {"zone": zone.id, "zone_name": zone.name, "team": team}
    return {"zone": None, "zone_name": None, "team": None, "hidden": True}


def _conflicts(conn: psycopg.Connection, zones: list[Zone], roles: dict[str, set[str]],
               principal: Principal | None) -> list[dict[str, Any]]:
    by_id = {z.id: z for z in zones}
    pairs = conn.execute(
        "SELECT a.id, b.id, ST_Area(ST_Intersection(a.geom, b.geom)::geography) FROM zones a "
        "JOIN zones b ON a.id < b.id AND ST_Intersects(a.geom, b.geom) "
        "WHERE a.archived_at IS NULL AND b.archived_at IS NULL ORDER BY a.id, b.id").fetchall()
    out = []
    for a, b, overlap in pairs:
        if overlap <= MIN_OVERLAP_M2:
            continue
        za, zb = by_id[a], by_id[b]
        seen = {a: can_see(principal, za), b: can_see(principal, zb)}
        if not (seen[a] or seen[b]):
            continue
        clashes = []
        for police_zone, outreach_zone in ((za, zb), (zb, za)):
            police = sorted({e["team"] for e in police_zone.schedule if "police" in roles.get(e["team"], ())})
            outreach = sorted({e["team"] for e in outreach_zone.schedule if "outreach" in roles.get(e["team"], ())})
            for p in police:
                for o in (o for o in outreach if o != p):
                    both = week_mask(police_zone.schedule, {p}) & week_mask(outreach_zone.schedule, {o})
                    if both.any():
                        clashes.append({"police": _side(police_zone, p, seen[police_zone.id]),
                                        "outreach": _side(outreach_zone, o, seen[outreach_zone.id]),
                                        "hours": round(float(both.sum()) / 60, 4), "times": mask_ranges(both)})
        if clashes:
            out.append({"zones": [a if seen[a] else None, b if seen[b] else None],
                        "overlap_m2": round(float(overlap), 1), "clashes": clashes})
    return out
