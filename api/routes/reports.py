"""The yearly evaluation as a page: the partners' edition (audited) and the public edition."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from api.deps import ConnDep, PrincipalDep, rate_limited, require
from api.schemas import ERRORS, error
from geo_monitor.privacy.tokens import audit
from geo_monitor.report.files import report_html

router = APIRouter(tags=["reports"])
REPORT_ERRORS = {**ERRORS, 404: error("no plan is loaded, or no data for the year")}
Year = Annotated[int, Path(ge=2000, le=2100, description="The year to evaluate, e.g. 2021")]
Lang = Annotated[Literal["fr", "en"], Query(description="fr (default) or en")]


@router.get("/reports/{year}", response_class=HTMLResponse, responses=REPORT_ERRORS,
            dependencies=[Depends(require("report"))], summary="The yearly evaluation for the plan's partners (planners and steward)")
async def get_report(year: Year, request: Request, conn: ConnDep, principal: PrincipalDep, lang: Lang = "fr") -> HTMLResponse:
    """One self-contained page computed from the store; every read is audited."""
    params = {"year": year, "lang": lang}
    settings = request.app.state.settings
    html, _ = await run_in_threadpool(lambda: report_html(conn, year, lang=lang, settings=settings))
    audit(conn, principal, "reports.read", params, 200)
    return HTMLResponse(html)


@router.get("/public/reports/{year}", response_class=HTMLResponse, responses=REPORT_ERRORS,
            dependencies=[Depends(rate_limited)], summary="The public edition of the yearly evaluation")
async def get_public_report(year: Year, request: Request, conn: ConnDep, lang: Lang = "fr") -> HTMLResponse:
    """Built only from the published monthly releases and the plan's public information."""
    settings = request.app.state.settings
    html, _ = await run_in_threadpool(lambda: report_html(conn, year, public=True, lang=lang, settings=settings))
    return HTMLResponse(html)
