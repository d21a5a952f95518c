"""Analyses for planners (and police on incidents): hotspots, emerging hotspots, impact, coverage."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response

from api.cache import cached, request_version
from api.deps import ConnDep, PrincipalDep, SettingsDep, require
from api.schemas import ERRORS, NOT_FOUND, AnyCollection, GeoJSONResponse
from api.slices import Area, Bbox, Categories, End, Kinds, Start
from geo_monitor.analysis.emerging import emerging as find_emerging
from geo_monitor.analysis.hotspots import METHOD as HOTSPOT_METHOD
from geo_monitor.analysis.hotspots import hotspots as find_hotspots
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.export import geojson_bytes
from geo_monitor.grid import study_grid
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import Principal, audit

router = APIRouter(tags=["analysis"])
K = Annotated[int, Query(ge=1, le=5, description="Neighbourhood radius in rings (1: 7 cells, 2: 19)")]
AnalysisResolution = Annotated[int, Query(ge=7, le=11, description="H3 resolution, 7-11")]


# The space-time Gi* holds about 60 bytes per (cell, step, neighbour): 10 M is ~0.6 GB at peak,
# enough for 3 years of months at resolution 11 (k=1 or 2) or 2 years of weeks at resolution 10 (k=3).
MAX_EMERGING_TERMS = 10_000_000
MAX_EMERGING_STEPS = 520  # the Mann-Kendall trend costs steps^2 per cell: 10 years of weeks


def _check_cube_size(conn, start: date, end: date, resolution: int, step: str, k: int) -> None:
    """Refuse an emerging-hotspot cube too large to compute in the server's memory."""
    steps = ((end.year - start.year) * 12 + end.month - start.month + 1 if step == "month"
             else (end - start).days // 7 + 1)
    if steps > MAX_EMERGING_STEPS:
        raise InvalidArgumentError(f"the window holds {steps:,} {step}s; at most {MAX_EMERGING_STEPS} steps can "
                                   "be analysed at once: shorten it" + (" or use months" if step == "week" else ""),
                                   "end")
    cells = len(study_grid(conn, resolution))
    terms = steps * cells * (3 * k * (k + 1) + 1)
    if terms > MAX_EMERGING_TERMS:
        raise InvalidArgumentError(f"{steps:,} {step}s x {cells:,} cells at resolution {resolution} with k={k} is "
                                   f"too large to compute ({terms:,} space-time terms, at most "
                                   f"{MAX_EMERGING_TERMS:,}): shorten the window, or use "
                                   f"{'months, ' if step == 'week' else ''}a coarser resolution or a smaller k", "end")


def _geo(request: Request, conn, principal: Principal, action: str, params: dict, build) -> Response:
    key = request.app.state.cache.key(request, f"{principal.role}:{principal.team}", request_version(request, conn))
    response = cached(request, key, build)
    audit(conn, principal, action, params, response.status_code)
    return response


@router.get("/hotspots", response_model=AnyCollection, response_class=GeoJSONResponse, responses=ERRORS,
            dependencies=[Depends(require("hotspots"))],
            summary="Getis-Ord Gi* hot and cold spots (FDR-corrected) over the whole study grid")
def hotspots(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep, start: Start,
             end: End, resolution: AnalysisResolution = 10, kind: Kinds = None, category: Categories = None,
             k: K = 1, area: Area = None, bbox: Bbox = None) -> Response:
    """Every cell with its count, z, two-sided p, class (-3..3) and label.

    The statistic is computed over the whole study grid; ``area`` or ``bbox`` only selects
    the cells returned (by their centre), so a cell's class does not change with the view.
    """
    kinds = access.analysis_kinds(principal, kind)
    region = access.region(area, bbox)
    params = {"start": str(start), "end": str(end), "resolution": resolution, "kinds": kinds,
              "categories": category, "k": k, "area": area, "bbox": bbox}

    def build() -> bytes:
        result = find_hotspots(conn, start=start, end=end, resolution=resolution, kinds=kinds,
                                   categories=category, k=k, area=region, settings=settings)
        return geojson_bytes(result, ["h3", "count", "z", "p", "gi_bin", "label"],
                             {**params, "method": HOTSPOT_METHOD})

    return _geo(request, conn, principal, "hotspots", params, build)


@router.get("/hotspots/emerging", response_model=AnyCollection, response_class=GeoJSONResponse, responses=ERRORS,
            dependencies=[Depends(require("emerging"))],
            summary="Emerging hotspot patterns (ArcGIS Pro classes) over monthly or weekly steps")
def emerging(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep, start: Start,
             end: End, resolution: AnalysisResolution = 10,
             step: Annotated[Literal["month", "week"], Query(description="Time step")] = "month",
             kind: Kinds = None, category: Categories = None, k: K = 1) -> Response:
    """Every cell with its pattern, hot/cold shares and Mann-Kendall trend."""
    kinds = access.analysis_kinds(principal, kind)
    _check_cube_size(conn, start, end, resolution, step, k)
    params = {"start": str(start), "end": str(end), "resolution": resolution, "step": step, "kinds": kinds,
              "categories": category, "k": k}

    def build() -> bytes:
        result = find_emerging(conn, start=start, end=end, resolution=resolution, step=step, kinds=kinds,
                                   categories=category, k=k, settings=settings)
        return geojson_bytes(result, ["h3", "pattern", "hot_share", "cold_share", "final_bin", "trend", "total"],
                             {**params, "steps": result.attrs.get("steps", [])})

    return _geo(request, conn, principal, "hotspots.emerging", params, build)


@router.get("/coverage", response_model=AnyCollection, response_class=GeoJSONResponse, responses=ERRORS,
            dependencies=[Depends(require("coverage"))],
            summary="Coverage gap: incidents against outreach contacts per hexagon (planners)")
def coverage(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep, start: Start,
             end: End, resolution: AnalysisResolution = 9) -> Response:
    """Where incidents meet little or no outreach."""
    from geo_monitor.analysis.coverage import coverage_gap

    params = {"start": str(start), "end": str(end), "resolution": resolution}

    def build() -> bytes:
        result = coverage_gap(conn, start=start, end=end, resolution=resolution, settings=settings)
        columns = [c for c in result.columns if c not in ("geometry", "cell")]
        return geojson_bytes(result, columns, params)

    return _geo(request, conn, principal, "coverage", params, build)


@router.get("/impact/{site_id}", responses={**ERRORS, **NOT_FOUND}, dependencies=[Depends(require("impact"))],
            summary="Before/after counts around a works site, with WDQ and WDD")
def impact(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep,
           site_id: Annotated[str, Path(max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")],
           before_start: Start, before_end: End, after_start: Start, after_end: End,
           resolution: Annotated[int, Query(ge=9, le=11)] = 10,
           ring: Annotated[int, Query(ge=1, le=5)] = 1, kind: Kinds = None,
           category: Categories = None) -> dict:
    """Counts per area and period, the weighted displacement quotient and difference."""
    from geo_monitor.analysis.impact import works_impact

    kinds = access.analysis_kinds(principal, kind) or ["incident"]
    result = works_impact(conn, site_id, before=(before_start, before_end), after=(after_start, after_end),
                          resolution=resolution, ring=ring, kinds=kinds, categories=category, settings=settings)
    table = result.to_frame()
    audit(conn, principal, "impact", {"site": site_id, "resolution": resolution, "ring": ring}, 200)
    return {"site": site_id, "summary": result.summary(),
            "counts": table.astype(object).where(table.notna(), None).to_dict(orient="records")}
