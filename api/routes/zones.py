"""Coordination zones: police and outreach teams on one map (create, edit, archive, history, summary, gaps).

A team sees the zones it owns or partners; planners and admins see every zone; any other
zone answers 404. Only the owner team edits (a partner or planner gets 403). Edits send
``If-Match`` with the zone's ETag: a stale one answers 409 with the current ETag.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from api.deps import ConnDep, PrincipalDep, SettingsDep, require
from api.errors import PreconditionRequired
from api.schemas import ERRORS, NOT_FOUND, GeoJSONResponse, Geometry, error
from api.slices import End, Start
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.privacy.tokens import audit
from geo_monitor.zones.edit import (
    Zone,
    archive_zone,
    create_zone,
    get_zone,
    list_zones,
    update_zone,
    zone_history,
)
from geo_monitor.zones.gaps import zone_gaps
from geo_monitor.zones.summary import zone_summary

router = APIRouter(prefix="/zones", tags=["zones"])
MEMBERS = Depends(require("zones"))
ZoneId = Annotated[int, Path(ge=1, le=2**31 - 1, description="Zone id")]
ZoneResolution = Annotated[int, Query(ge=9, le=11, description="H3 resolution of the zone covers (9-11)")]
IfMatch = Annotated[str | None, Header(description="The zone's ETag, as read (required to edit)")]
READ_ERRORS = {**ERRORS, **NOT_FOUND}
WRITE_ERRORS = {**READ_ERRORS, 409: error("the zone changed since your version (its ETag is sent), or is archived"),
                428: error("If-Match is missing")}
_ETAG = re.compile(r'\s*(?:W/)?"?(?:zone-(\d+)-v)?(\d+)"?\s*')


class ScheduleEntry(BaseModel):
    """One range of a team's weekly coverage."""

    day: int = Field(description="Day of the week, 0 = Monday ... 6 = Sunday")
    start: str = Field(description="HH:MM (Europe/Paris local time)", examples=["08:00"])
    end: str = Field(description="HH:MM or 24:00; at or before start: the range runs past midnight",
                     examples=["20:00"])
    team: str = Field(description="The zone's owner or one of its partners")


class ZoneProperties(BaseModel):
    """What a coordinator sets on a zone (other properties of a GIS export are ignored, with a note)."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="1-120 characters")
    partner_teams: list[str] = Field(default_factory=list, description="Known teams that share the zone")
    schedule: list[ScheduleEntry] = Field(default_factory=list, description="Weekly coverage")


class ZoneIn(BaseModel):
    """A zone as a GeoJSON Feature: Polygon or MultiPolygon in lon/lat (drawn in a GIS or uploaded)."""

    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any] = Field(description="GeoJSON Polygon or MultiPolygon, EPSG:4326")
    properties: ZoneProperties


class ZonePatchProperties(BaseModel):
    """The properties to change; those left out stay as they are."""

    model_config = ConfigDict(extra="allow")
    name: str | None = None
    partner_teams: list[str] | None = None
    schedule: list[ScheduleEntry] | None = None


class ZonePatch(BaseModel):
    """A partial change: a new geometry and/or some properties."""

    type: Literal["Feature"] = "Feature"
    geometry: dict[str, Any] | None = None
    properties: ZonePatchProperties = Field(default_factory=ZonePatchProperties)


class ZoneOutProperties(BaseModel):
    """A zone's stored state and coverage."""

    name: str
    owner_team: str
    partner_teams: list[str]
    schedule: list[ScheduleEntry]
    version: int
    archived_at: str | None
    created_at: str
    created_by: str
    updated_at: str
    updated_by: str
    clipped_share: float = Field(description="Share of the drawn area that lay outside the study area")
    area_m2: float
    coverage_hours_per_week: float = Field(description="Hours covered by at least one team (overlaps once)")
    coverage_hours_by_team: dict[str, float]


class ZoneOut(BaseModel):
    """A zone as a GeoJSON Feature; ``notes`` say what the last write repaired or clipped."""

    type: Literal["Feature"]
    id: int
    geometry: Geometry
    properties: ZoneOutProperties
    notes: list[str] = Field(default_factory=list)


class ZoneCollection(BaseModel):
    """Zones as a GeoJSON FeatureCollection."""

    type: Literal["FeatureCollection"]
    features: list[ZoneOut]


class HistoryEntry(BaseModel):
    """One change: who, when, the state before (null at creation) and after."""

    version: int
    action: Literal["create", "update", "archive"]
    changed_at: str
    changed_by: dict[str, str]
    before: dict[str, Any] | None
    after: dict[str, Any]


class Trend(BaseModel):
    """Counts over the window, the previous one of equal length, and the trend."""

    count: int
    previous: int
    change: int
    change_pct: float | None
    p_value: float
    trend: Literal["up", "down", "stable"]
    by_category: dict[str, int]


class ZoneSummary(BaseModel):
    """A zone's summary. ``outreach`` is absent for police; an outreach team sees its own only."""

    zone: dict[str, Any]
    window: dict[str, str]
    previous_window: dict[str, str]
    resolution: int
    cells: int
    area_m2: float
    incidents: Trend
    outreach: Trend | None = None
    hotspots: list[dict[str, Any]]
    works: list[dict[str, Any]]
    stations: list[dict[str, Any]]
    coverage_hours_per_week: float
    coverage_hours_by_team: dict[str, float]
    notes: list[str]


# What every write answers: the zone as GeoJSON, with its ETag.
WRITE = {"response_model": ZoneOut, "response_class": GeoJSONResponse, "dependencies": [MEMBERS],
         "responses": WRITE_ERRORS}


def _feature(zone: Zone, notes: list[str] | None = None) -> dict[str, Any]:
    return {**zone.to_feature(), "notes": [*zone.notes, *(notes or [])]}


def _answer(zone: Zone, status: int = 200, notes: list[str] | None = None) -> Response:
    model = ZoneOut.model_validate(_feature(zone, notes))
    return Response(model.model_dump_json(), status_code=status, media_type="application/geo+json",
                    headers={"ETag": zone.etag})


def _version(if_match: str | None, zone_id: int) -> int:
    """Return the version an edit is based on, from If-Match."""
    if not if_match:
        raise PreconditionRequired(f"send If-Match with the zone's ETag (GET /zones/{zone_id}) to change it",
                                   "If-Match")
    match = _ETAG.fullmatch(if_match)
    if not match:
        raise InvalidArgumentError('If-Match must be the zone\'s ETag, e.g. "zone-5-v3"', "If-Match")
    if match.group(1) and int(match.group(1)) != zone_id:
        raise InvalidArgumentError(f"If-Match names zone {match.group(1)}, not zone {zone_id}", "If-Match")
    return int(match.group(2))


def _ignored(properties: BaseModel) -> list[str]:
    extra = sorted(properties.model_extra or {})
    return [f"ignored properties: {', '.join(extra)[:200]}"] if extra else []


def _schedule(entries: list[ScheduleEntry] | None) -> list[dict] | None:
    return None if entries is None else [e.model_dump() for e in entries]


@router.get("/gaps", dependencies=[MEMBERS], responses=ERRORS,
            summary="Coverage gaps: hotspots in no zone, uncovered hours, stations without outreach, conflicts")
def gaps(conn: ConnDep, principal: PrincipalDep, settings: SettingsDep, start: Start, end: End,
         resolution: ZoneResolution = 10) -> dict[str, Any]:
    """Computed on every active zone; police and outreach see details of their own zones only."""
    report = zone_gaps(conn, start=start, end=end, resolution=resolution, principal=principal, settings=settings)
    audit(conn, principal, "zones.gaps", {"start": str(start), "end": str(end), "resolution": resolution}, 200)
    return report.to_dict()


@router.get("", response_model=ZoneCollection, response_class=GeoJSONResponse, dependencies=[MEMBERS], responses=ERRORS,
            summary="The zones your team owns or partners (planners and admins: all)")
def zones(conn: ConnDep, principal: PrincipalDep,
          include_archived: Annotated[bool, Query(description="Also archived zones")] = False) -> dict[str, Any]:
    """Active zones as GeoJSON (with archived ones when asked)."""
    found = list_zones(conn, principal, include_archived=include_archived)
    audit(conn, principal, "zones.list", {"include_archived": include_archived, "zones": len(found)}, 200)
    return {"type": "FeatureCollection", "features": [_feature(z) for z in found]}


@router.post("", status_code=201, **WRITE, summary="Create a zone owned by your team")
def create(request: Request, conn: ConnDep, principal: PrincipalDep, body: ZoneIn) -> Response:
    """The polygon is repaired (or refused with the reason) and clipped to the study area; notes say so."""
    props = body.properties
    zone = create_zone(conn, principal, name=props.name, geometry=body.geometry, partner_teams=props.partner_teams,
                       schedule=_schedule(props.schedule))
    audit(conn, principal, "zones.create", {"zone": zone.id, "version": zone.version}, 201)
    response = _answer(zone, 201, _ignored(props))
    response.headers["Location"] = str(request.url_for("zone", zone_id=zone.id))
    return response


@router.get("/{zone_id}", name="zone", response_model=ZoneOut, response_class=GeoJSONResponse, dependencies=[MEMBERS],
            responses={**READ_ERRORS, 304: {"description": "not modified (If-None-Match)"}},
            summary="One zone, now or at a past date")
def zone(conn: ConnDep, principal: PrincipalDep, zone_id: ZoneId,
         at: Annotated[str | None, Query(max_length=40, description="YYYY-MM-DD (end of that day, Paris) or ISO "
                                                                  "datetime: the zone as it was then")] = None,
         if_none_match: Annotated[str | None, Header()] = None) -> Response:
    """The zone with its ETag (send it back in If-Match to edit)."""
    found = get_zone(conn, principal, zone_id, at=at)
    audit(conn, principal, "zones.read", {"zone": zone_id, "at": at}, 200)
    if at is None and if_none_match == found.etag:
        return Response(status_code=304, headers={"ETag": found.etag})
    return _answer(found)


@router.put("/{zone_id}", **WRITE, summary="Replace a zone your team owns (If-Match required)")
def replace(conn: ConnDep, principal: PrincipalDep, zone_id: ZoneId, body: ZoneIn,
            if_match: IfMatch = None) -> Response:
    """Geometry, name, partners and schedule all replaced; a new version."""
    return _update(conn, principal, zone_id, body, if_match)


@router.patch("/{zone_id}", **WRITE, summary="Change part of a zone your team owns (If-Match required)")
def patch(conn: ConnDep, principal: PrincipalDep, zone_id: ZoneId, body: ZonePatch,
          if_match: IfMatch = None) -> Response:
    """Only the geometry and properties sent are changed."""
    return _update(conn, principal, zone_id, body, if_match)


def _update(conn, principal, zone_id: int, body: ZoneIn | ZonePatch, if_match: str | None) -> Response:
    """Apply an edit based on the If-Match version (PUT sends everything, PATCH what changes)."""
    version, props = _version(if_match, zone_id), body.properties
    zone = update_zone(conn, principal, zone_id, version=version, name=props.name, geometry=body.geometry,
                       partner_teams=props.partner_teams, schedule=_schedule(props.schedule))
    audit(conn, principal, "zones.update", {"zone": zone_id, "version": zone.version}, 200)
    return _answer(zone, notes=_ignored(props))


@router.post("/{zone_id}/archive", **WRITE,
             summary="Archive a zone your team owns (If-Match required); it keeps its history")
def archive(conn: ConnDep, principal: PrincipalDep, zone_id: ZoneId, if_match: IfMatch = None) -> Response:
    """The zone leaves the map and the gap report; GET still shows it, archived."""
    version = _version(if_match, zone_id)
    zone = archive_zone(conn, principal, zone_id, version=version)
    audit(conn, principal, "zones.archive", {"zone": zone_id, "version": zone.version}, 200)
    return _answer(zone)


@router.get("/{zone_id}/history", response_model=list[HistoryEntry], dependencies=[MEMBERS],
            responses=READ_ERRORS, summary="Every change of a zone: who, when, before and after")
def history(conn: ConnDep, principal: PrincipalDep, zone_id: ZoneId) -> list[dict[str, Any]]:
    """Oldest first."""
    entries = zone_history(conn, principal, zone_id)
    audit(conn, principal, "zones.history", {"zone": zone_id}, 200)
    return entries


@router.get("/{zone_id}/summary", response_model=ZoneSummary, response_model_exclude_unset=True,
            dependencies=[MEMBERS], responses=READ_ERRORS,
            summary="Incidents, outreach (role rules), trend, hotspots, works, stations and coverage of a zone")
def summary(conn: ConnDep, principal: PrincipalDep, settings: SettingsDep, zone_id: ZoneId, start: Start,
            end: End, resolution: ZoneResolution = 10) -> dict[str, Any]:
    """Counts are sums of hexagon counts over the zone's cells; police get no outreach key."""
    result = zone_summary(conn, principal, zone_id, start=start, end=end, resolution=resolution, settings=settings)
    audit(conn, principal, "zones.summary", {"zone": zone_id, "start": str(start), "end": str(end),
                                             "resolution": resolution}, 200)
    return result

