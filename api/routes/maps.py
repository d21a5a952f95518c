"""The maps as HTML pages, per role.

Planners get the planner map, teams the coordination map, everyone the public map (built
from the published release only).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

import maps
from api.cache import request_version
from api.deps import ConnDep, PrincipalDep, SettingsDep, no_parameters, rate_limited, require
from api.schemas import ERRORS
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import audit

router = APIRouter(prefix="/maps", tags=["maps"])
ASSETS = "/maps/assets"
HTML = {200: {"content": {"text/html": {}}, "description": "the map page"}}


def mount_assets(app: FastAPI) -> None:
    """Serve Leaflet, its plugins and Swagger UI from the local copies (maps and /docs work with no internet)."""
    app.mount(ASSETS, StaticFiles(directory=maps.ensure_assets(install=False)), name="map-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        """The interactive API documentation (Swagger UI from the local copy, no CDN)."""
        return get_swagger_ui_html(openapi_url=app.openapi_url, title=f"{app.title} — documentation",
                                   swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/swagger-ui/favicon-32x32.png")


def _page(request: Request, key: str, build) -> HTMLResponse:
    """Render once per data version and role scope; maps take a second to build."""
    cache = request.app.state.cache
    item = cache.get(key) or cache.put(key, maps.render(build(), asset_url=ASSETS).encode(), "text/html")
    return HTMLResponse(item[0])


@router.get("/planner", response_class=HTMLResponse, responses={**ERRORS, **HTML},
            dependencies=[Depends(require("maps.planner"))], summary="The planner map (internal)")
def planner_map(request: Request, conn: ConnDep, principal: PrincipalDep, settings: SettingsDep) -> HTMLResponse:
    """Hexagon counts by month with a slider, Gi* and emerging hotspots, works, reference layers."""
    audit(conn, principal, "maps.planner", {}, 200)
    return _page(request, f"map:planner:{request_version(request, conn)}",
                 lambda: maps.build_planner(conn, settings=settings))


@router.get("/coordination", response_class=HTMLResponse, responses={**ERRORS, **HTML},
            dependencies=[Depends(require("maps.coordination"))],
            summary="The coordination map: zones, schedules, recent incidents, uncovered hotspots")
def coordination_map(request: Request, conn: ConnDep, principal: PrincipalDep,
                     settings: SettingsDep) -> HTMLResponse:
    """Zones the caller may see, incidents of the last weeks, hotspots outside every zone."""
    audit(conn, principal, "maps.coordination", {}, 200)
    version = conn.execute("SELECT coalesce(max(changed_at)::text, '') FROM zone_history").fetchone()[0]
    viewer = None if access.sees_all_zones(principal) else principal
    return _page(request, f"map:coordination:{principal.role}:{principal.team}:{request_version(request, conn)}:{version}",
                 lambda: maps.build_coordination(conn, viewer=viewer, settings=settings))


@router.get("/public", response_class=HTMLResponse, responses={**ERRORS, **HTML},
            dependencies=[Depends(rate_limited), Depends(no_parameters("the public map"))],
            summary="The public map of the latest release")
def public_map(request: Request, conn: ConnDep, settings: SettingsDep) -> HTMLResponse:
    """Only released, protected counts (never events), with how they are protected (FR/EN)."""
    return _page(request, f"map:public:{request_version(request, conn)}", lambda: maps.build_public(conn, settings=settings))
