"""How the public numbers are protected, for residents: French and English pages."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import SettingsDep, rate_limited
from maps.elements import basemap_setting
from maps.method import method_page

router = APIRouter(tags=["public"], dependencies=[Depends(rate_limited)])


@router.get("/method", include_in_schema=False)
def method_default() -> RedirectResponse:
    """Send residents to the French page."""
    return RedirectResponse("/method/fr")


@router.get("/method/{lang}", response_class=HTMLResponse, summary="How the public numbers are protected")
def method(settings: SettingsDep, lang: Annotated[Literal["fr", "en"], Path(description="fr or en")]) -> HTMLResponse:
    """The method in plain language (French or English), with the public map's basemap."""
    other = "en" if lang == "fr" else "fr"
    return HTMLResponse(method_page(lang, basemap_setting(settings.public_basemap), other_href=f"/method/{other}"))
