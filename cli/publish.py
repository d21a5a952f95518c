"""``geo-monitor publish``: the public side as static, immutable files (map, releases, method, manifest)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import _fail, _settings, app, console, err
from geo_monitor import db
from geo_monitor.errors import GeoMonitorError


@app.command()
def publish(
    out: Annotated[Path, typer.Option(help="Folder of the static site (created; brought up to date if it exists)")]
    = Path("var/public"),
) -> None:
    """Write the public site as static files for any web server or CDN; unchanged files are left alone.

    The public map of each release, the releases as GeoJSON and CSV, the method pages and a
    manifest with sha256 checksums. The map's background follows GEO_MONITOR_PUBLIC_BASEMAP
    (none by default: no third-party server sees a visitor). Open OUT/index.html from disk,
    or serve the folder, e.g. `python -m http.server -d OUT`.
    """
    from maps.site import publish_site  # folium stays out of the library: imported only here

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            done = publish_site(conn, out, settings, progress=lambda name: err.print(f"  release {name}…"))
    except GeoMonitorError as exc:
        _fail(exc)
    console.print(done.summary())
    for name in done.written[:30]:
        console.print(f"  wrote {name}")
    if len(done.written) > 30:
        console.print(f"  … and {len(done.written) - 30} more")
    console.print(f"open {out / 'index.html'}")
