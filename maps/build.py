"""``maps build``: the three maps as standalone HTML files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import folium
import psycopg

from geo_monitor.settings import Settings, get_settings
from maps.assets import copy_assets, render
from maps.coordination import build_coordination
from maps.planner import build_planner
from maps.public import build_public

MAPS: dict[str, Callable[..., folium.Map]] = {
    "planner": build_planner,
    "coordination": build_coordination,
    "public": build_public,
}


def build_all(conn: psycopg.Connection, out_dir: Path, settings: Settings | None = None, *,
              inline: bool = True, progress: Callable[[str], None] | None = None) -> list[Path]:
    """Write planner.html, coordination.html and public.html to ``out_dir``; return their paths.

    With ``inline`` (the default) each file is standalone: Leaflet and its plugins are
    inlined, so it opens from disk with no internet. Otherwise the pages link ``assets/``,
    copied next to them.
    """
    settings = settings or get_settings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not inline:
        copy_assets(out_dir)
    written = []
    for name, build in MAPS.items():
        if progress:
            progress(name)
        page = render(build(conn, settings=settings), asset_url=None if inline else "assets")
        path = out_dir / f"{name}.html"
        path.write_text(page, encoding="utf-8")
        written.append(path)
    return written
