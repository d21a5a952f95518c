"""Commands that hand results out: the public release of a month, the maps as HTML files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import Out, _fail, _settings, app, console, err
from geo_monitor import db
from geo_monitor.errors import GeoMonitorError


@app.command()
def release(
    month: Annotated[str, typer.Option(help="Calendar month to publish, YYYY-MM (a whole past month)")],
    new_version: Annotated[bool, typer.Option("--new-version", help="Publish again (spends privacy budget again)")] = False,
    out: Out = None,
) -> None:
    """Publish one month for the public: protected counts that cannot single anyone out."""
    import json

    from geo_monitor.privacy.release import create_release

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            result = create_release(conn, month, new_version=new_version, settings=settings)
            conn.commit()
    except GeoMonitorError as exc:
        _fail(exc)
    console.print("\n".join(result.summary()))
    if out:
        data = result.to_geojson()
        out.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
        console.print(f"written to {out}")


maps_app = typer.Typer(help="Maps: planner, coordination and public, as standalone HTML.", no_args_is_help=True)
app.add_typer(maps_app, name="maps")


@maps_app.command("build")
def maps_build(
    out: Annotated[Path, typer.Option(help="Folder for planner.html, coordination.html, public.html")] = Path("var/maps"),
    linked: Annotated[bool, typer.Option("--linked", help="Link an assets/ folder instead of inlining Leaflet")] = False,
) -> None:
    """Write the three maps; they open from disk with no internet."""
    import maps  # folium stays out of the library: imported only here

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            written = maps.build_all(conn, out, settings, inline=not linked,
                                     progress=lambda name: err.print(f"  {name} map…"))
    except GeoMonitorError as exc:
        _fail(exc)
    for path in written:
        console.print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
