"""How the public numbers are protected, for residents: French and English pages."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Literal

import markdown
from fastapi import APIRouter, Depends, Path
from fastapi.responses import HTMLResponse, RedirectResponse

from api.deps import rate_limited
from geo_monitor.settings import REPO_ROOT

router = APIRouter(tags=["public"], dependencies=[Depends(rate_limited)])
PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}}
a{{color:#0b5394}} code{{background:#f3f3f3;padding:0 .2em}}</style></head><body>
<p><a href="/method/{other}">{other_label}</a></p>{body}</body></html>"""


@lru_cache(maxsize=2)
def _page(lang: str) -> str:
    text = (REPO_ROOT / "docs" / f"public_method.{lang}.md").read_text(encoding="utf-8")
    other = "en" if lang == "fr" else "fr"
    return PAGE.format(lang=lang, title="Méthode" if lang == "fr" else "Method", other=other,
                       other_label="English" if lang == "fr" else "Français",
                       body=markdown.markdown(text, extensions=["tables"]))


@router.get("/method", include_in_schema=False)
def method_default() -> RedirectResponse:
    """Send residents to the French page."""
    return RedirectResponse("/method/fr")


@router.get("/method/{lang}", response_class=HTMLResponse, summary="How the public numbers are protected")
def method(lang: Annotated[Literal["fr", "en"], Path(description="fr or en")]) -> HTMLResponse:
    """The method in plain language (French or English)."""
    return HTMLResponse(_page(lang))
