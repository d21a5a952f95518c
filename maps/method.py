"""The method pages for residents (docs/public_method.{fr,en}.md) as HTML, saying which basemap the map uses."""

from __future__ import annotations

import html

import markdown

from geo_monitor.settings import REPO_ROOT
from maps.elements import Basemap

PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{title}</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}}
a{{color:#0b5394}} code{{background:#f3f3f3;padding:0 .2em}}</style></head><body>
<p><a href="{other_href}">{other_label}</a></p>{body}
<h2>{basemap_title}</h2><p id="basemap">{basemap}</p></body></html>"""


def method_page(lang: str, basemap: Basemap, *, other_href: str) -> str:
    """Return the method page in ``lang`` (fr or en), linking the other language at ``other_href``."""
    if lang not in ("fr", "en"):
        raise ValueError(f"method page language {lang!r}: fr or en")
    text = (REPO_ROOT / "docs" / f"public_method.{lang}.md").read_text(encoding="utf-8")
    return PAGE.format(lang=lang, title="Méthode" if lang == "fr" else "Method", other_href=html.escape(other_href),
                       other_label="English" if lang == "fr" else "Français",
                       body=markdown.markdown(text, extensions=["tables"]),
                       basemap_title="Fond de carte" if lang == "fr" else "Basemap",
                       basemap=html.escape(basemap.describe()[lang]))
