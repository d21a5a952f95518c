"""The access policy: what each role may ask, and how the answer is protected.

Every surface (the API, the maps, exports, the CLI, reports, OGC endpoints, tiles) asks this
module and lets the library apply the answer; no surface tests a role itself.

Interface
---------
``allows(principal, surface) -> bool`` and ``check(principal, surface)``
    May this principal use a surface at all (``SURFACES`` names them: "hexagons",
    "exports", "hotspots", "emerging", "coverage", "impact", "zones", "maps.planner",
    "maps.coordination", "events.write", "admin", "report", "plan", "plan.write", "ogc", "tiles")? ``check``
    raises ``AccessDeniedError``. Authentication (no token: 401) is the surface's business.
``slice_for(principal, settings, *, start, end, resolution, kinds, categories, area, bbox) -> Slice``
    Check a request for hexagon counts and apply the role's rules: the kinds it may see, the
    coarsest resolution, the team filter, the protection. Raises ``InvalidArgumentError``
    (a malformed or unknown parameter) or ``AccessDeniedError`` (the role may not ask it),
    both naming the parameter in ``.parameter``.
``hex_counts(conn, principal, chosen, settings=None) -> Counts``
    Answer a ``Slice``: the frame of hexagons (``count`` is ``None`` where suppressed), the
    answer's total and metadata. Protection is applied before any total or share.
``analysis_kinds(principal, kinds) -> list[str] | None``
    The kinds an analysis (hotspots, emerging hotspots, impact) may use for this principal.
``outreach_scope(principal) -> str``
    How outreach reaches this principal: ``"all"`` (admin, planner), ``"team"`` (an outreach
    team: its own sources only), ``"protected"`` (police: protected statistics only, see
    ``geo_monitor.privacy.protected``) or ``"none"`` (public).
``sees_all_zones(principal) -> bool``
    Whether a principal sees every coordination zone (else only its team's).
``parse_bbox(text) -> shapely.Geometry``
    ``minlon,minlat,maxlon,maxlat`` checked against the study area.

Role rules (DESIGN.md, Roles)
-----------------------------
- admin and planner: every kind, every served resolution, every window and area.
- outreach: incidents and works; outreach only of the team's own sources.
- police: incidents and works; outreach only as protected statistics: all outreach
  categories together, one fixed partition (the H3 cells of ``police_outreach_max_resolution``
  over the whole study grid, with their arrondissements and the total), whole calendar months
  over for ``police_outreach_settle_days``, small cells suppressed with audited secondary
  suppression, each month's table kept once answered, an area or bbox only selects among the
  protected cells. No analysis, export or zone summary shows them outreach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import geopandas as gpd
import psycopg
import shapely

from geo_monitor.analysis.counts import hex_counts as exact_counts
from geo_monitor.calendar import PARIS
from geo_monitor.errors import AccessDeniedError, InvalidArgumentError
from geo_monitor.privacy.protected import protected_counts
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings, get_settings
from geo_monitor.store.vocabulary import KINDS

ADMIN, PLANNER, POLICE, OUTREACH = "admin", "planner", "police", "outreach"
TEAMS = frozenset({ADMIN, PLANNER, POLICE, OUTREACH})
SURFACES: dict[str, frozenset[str]] = {
    "hexagons": TEAMS,
    "exports": frozenset({ADMIN, PLANNER}),
    "hotspots": frozenset({ADMIN, PLANNER, POLICE}),
    "emerging": frozenset({ADMIN, PLANNER, POLICE}),
    "coverage": frozenset({ADMIN, PLANNER}),
    "impact": frozenset({ADMIN, PLANNER, POLICE}),
    "zones": TEAMS,
    "maps.planner": frozenset({ADMIN, PLANNER}),
    "maps.coordination": TEAMS,
    "events.write": frozenset({ADMIN}),
    "admin": frozenset({ADMIN}),
    "report": frozenset({ADMIN, PLANNER}),  # the partners' yearly report (the public edition needs no check)
    "plan": TEAMS,  # the plan's actions, budgets, updates and places (no event data)
    "plan.write": frozenset({ADMIN, PLANNER}),  # load a plan file, append an update
    "ogc": TEAMS,
    "tiles": TEAMS,
}
MAX_PROTECTED_MONTHS = 12  # each month is one protected table (an LP audit): a year at most per question
STUDY_BBOX = (2.26, 48.80, 2.45, 48.91)  # generous box around the north-east arrondissements
PROTECTION = ("police outreach: whole past calendar months, resolution-{r} cells of the whole study grid with "
              "their arrondissements and total, counts under {k} suppressed with secondary suppression audited "
              "by linear programming; totals and shares computed from the shown cells only")


@dataclass
class Slice:
    """A checked request for hexagon counts, after the caller's role rules were applied.

    ``protection`` is ``None`` (exact counts) or ``"suppression"`` (police outreach: the
    protected monthly tables of ``geo_monitor.privacy.protected``); ``suppress_under`` is its k.
    """

    start: date
    end: date
    resolution: int
    kinds: list[str] | None
    categories: list[str] | None
    area: str | shapely.Geometry | None
    team: str | None = None
    protection: str | None = None
    suppress_under: int | None = None
    notes: list[str] = field(default_factory=list)

    def params(self) -> dict:
        """Return the slice as audit-log and metadata parameters."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat(), "resolution": self.resolution,
                "kinds": self.kinds, "categories": self.categories,
                "area": self.area if isinstance(self.area, str) or self.area is None else self.area.wkt,
                "team": self.team}


@dataclass
class Counts:
    """The answer to a slice: hexagons (``count``: int64, or objects with None where suppressed), total, metadata."""

    frame: gpd.GeoDataFrame
    total: int
    metadata: dict = field(default_factory=dict)


def allows(principal: Principal, surface: str) -> bool:
    """Return whether a principal may use a surface (see ``SURFACES``)."""
    if surface not in SURFACES:
        raise InvalidArgumentError(f"unknown surface {surface!r}; known: {', '.join(sorted(SURFACES))}")
    return principal.role in SURFACES[surface]


def check(principal: Principal, surface: str) -> None:
    """Raise ``AccessDeniedError`` unless the principal may use the surface."""
    if not allows(principal, surface):
        raise AccessDeniedError(f"the {principal.role} role may not use {surface}")


def sees_all_zones(principal: Principal | None) -> bool:
    """Return whether a principal sees every zone (None: the library itself)."""
    return principal is None or principal.role in (ADMIN, PLANNER)


def outreach_scope(principal: Principal | None) -> str:
    """Return how outreach reaches a principal: ``all``, ``team``, ``protected`` or ``none``."""
    if principal is None or principal.role in (ADMIN, PLANNER):
        return "all"
    return {OUTREACH: "team", POLICE: "protected"}.get(principal.role, "none")


def parse_bbox(text: str) -> shapely.Geometry:
    """Return the polygon of ``minlon,minlat,maxlon,maxlat``, refusing anything else."""
    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 4 or not all(math.isfinite(v) for v in values):
        raise InvalidArgumentError("bbox must be 4 finite numbers: minlon,minlat,maxlon,maxlat", "bbox")
    minx, miny, maxx, maxy = values
    if minx >= maxx or miny >= maxy:
        raise InvalidArgumentError("bbox must have minlon < maxlon and minlat < maxlat", "bbox")
    sx0, sy0, sx1, sy1 = STUDY_BBOX
    if maxx < sx0 or minx > sx1 or maxy < sy0 or miny > sy1:
        raise InvalidArgumentError("bbox lies outside the study area", "bbox")
    if (maxx - minx) * (maxy - miny) > (sx1 - sx0) * (sy1 - sy0):
        raise InvalidArgumentError("bbox is larger than the study area; omit it to get the whole area", "bbox")
    return shapely.box(minx, miny, maxx, maxy)


def region(area: str | None, bbox: str | None) -> str | shapely.Geometry | None:
    """Return the one area filter of a request (an area name or a bbox polygon), or None."""
    if area is not None and bbox is not None:
        raise InvalidArgumentError("give either area or bbox, not both", "bbox")
    return parse_bbox(bbox) if bbox is not None else area  # an empty bbox is a bad one, not none


def check_kinds(kinds: list[str] | None) -> None:
    """Refuse an unknown kind by name."""
    for kind in kinds or []:
        if kind not in KINDS:
            raise InvalidArgumentError(f"unknown kind {kind[:40]!r}; kinds are {', '.join(KINDS)}", "kind")


def whole_past_months(start: date, end: date, settle_days: int = 0, today: date | None = None) -> None:
    """Refuse a window that is not whole calendar months over for ``settle_days`` (Paris time)."""
    if start.day != 1:
        raise AccessDeniedError(f"police see outreach only by whole calendar months: start {start} must be "
                                f"the first day of a month (e.g. {start.replace(day=1)})", "start")
    if end.day != 1:
        raise AccessDeniedError(f"police see outreach only by whole calendar months: end {end} must be the "
                                "first day of the month after the last one asked (end is exclusive)", "end")
    months = (end.year - start.year) * 12 + end.month - start.month
    if months > MAX_PROTECTED_MONTHS:
        raise AccessDeniedError(f"police see outreach for at most {MAX_PROTECTED_MONTHS} months at once "
                                f"(asked {months}): ask year by year", "end")
    today = today or datetime.now(PARIS).date()
    if end + timedelta(days=settle_days) > today:
        latest = (today - timedelta(days=settle_days)).replace(day=1)
        raise AccessDeniedError(f"police see a month's outreach only {settle_days} days after it is over (late "
                                f"uploads settle first): end must be {latest} or earlier", "end")


def slice_for(principal: Principal, settings: Settings | None = None, *, start: date, end: date, resolution: int,
              kinds: list[str] | None = None, categories: list[str] | None = None, area: str | None = None,
              bbox: str | None = None) -> Slice:
    """Check a slice request and apply the role's rules (see the module docstring)."""
    settings = settings or get_settings()
    if end <= start:
        raise InvalidArgumentError(f"end {end} must come after start {start}", "end")
    if resolution not in settings.resolutions:
        raise InvalidArgumentError(f"resolution {resolution} is not served; choose one of "
                                   f"{', '.join(map(str, settings.resolutions))}", "resolution")
    check_kinds(kinds)
    chosen = Slice(start, end, resolution, kinds, categories, region(area, bbox))
    scope = outreach_scope(principal)
    if scope == "none":
        raise AccessDeniedError(f"the {principal.role} role sees only the published release")
    if scope == "all":
        return chosen
    asks_outreach = kinds is not None and "outreach" in kinds
    if kinds is None:
        chosen.kinds = ["incident", "works"] if scope == "protected" else ["incident"]
        if scope == "protected":
            chosen.notes.append("police: incidents and works (ask kind=outreach for protected monthly outreach "
                                "statistics)")
        return chosen
    if not asks_outreach:
        return chosen
    if set(kinds) != {"outreach"}:
        raise InvalidArgumentError("ask for outreach on its own (kind=outreach)", "kind")
    chosen.kinds = ["outreach"]
    if scope == "team":
        chosen.team = principal.team
        chosen.notes.append(f"outreach: only team {principal.team}'s own records")
        return chosen
    fixed = settings.police_outreach_max_resolution
    if resolution != fixed:
        raise AccessDeniedError(f"police see outreach counts only on the fixed partition of resolution {fixed} "
                                f"(asked {resolution})", "resolution")
    if categories:
        raise AccessDeniedError("police see outreach only as all categories together: omit category", "category")
    whole_past_months(start, end, settings.police_outreach_settle_days)
    chosen.protection, chosen.suppress_under = "suppression", settings.release_k
    chosen.notes.append(PROTECTION.format(r=fixed, k=settings.release_k))
    return chosen


def analysis_kinds(principal: Principal, kinds: list[str] | None) -> list[str] | None:
    """Return the kinds an analysis may use: police analyse incidents and works only."""
    check_kinds(kinds)
    if outreach_scope(principal) == "all":
        return kinds
    if kinds is None:
        return ["incident", "works"]
    if "outreach" in kinds:
        raise AccessDeniedError(f"{principal.role} analyses cover incidents and works only", "kind")
    return kinds


def hex_counts(conn: psycopg.Connection, principal: Principal, chosen: Slice,
               settings: Settings | None = None, *, geometry: bool = True) -> Counts:
    """Answer a slice checked by ``slice_for`` for this principal, protection applied first.

    ``geometry=False`` may leave the hexagon polygons out (callers that encode cells themselves).

    A ``Slice`` built by hand is held to the same rules: police outreach only as a protected
    table of whole settled months on the fixed partition, an outreach team only with its team.
    """
    settings = settings or get_settings()
    scope = outreach_scope(principal)
    asks_outreach = chosen.kinds is None or "outreach" in chosen.kinds
    if scope == "none":
        raise AccessDeniedError(f"the {principal.role} role sees only the published release")
    if chosen.protection == "suppression" or (asks_outreach and scope == "protected"):
        if chosen.protection != "suppression" or chosen.kinds != ["outreach"] or chosen.categories \
                or chosen.resolution != settings.police_outreach_max_resolution:
            raise AccessDeniedError("police see outreach only as the protected table access.slice_for asks for",
                                    "kind")
        whole_past_months(chosen.start, chosen.end, settings.police_outreach_settle_days)
        frame, total, metadata = protected_counts(conn, start=chosen.start, end=chosen.end,
                                                  resolution=chosen.resolution, k=settings.release_k,
                                                  area=chosen.area, settings=settings)
        return Counts(frame, total, metadata)
    if asks_outreach and scope == "team" and chosen.team != principal.team:
        raise AccessDeniedError("an outreach team sees only its own outreach records", "team")
    frame = exact_counts(conn, start=chosen.start, end=chosen.end, resolution=chosen.resolution,
                         kinds=chosen.kinds, categories=chosen.categories, area=chosen.area, team=chosen.team,
                         settings=settings, geometry=geometry)
    return Counts(frame, int(frame["count"].to_numpy().sum()), {"suppressed_under": None})
