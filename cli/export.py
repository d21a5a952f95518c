"""Export commands: a slice of hexagon counts for analysts, and the event lake the batch path reads."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from cli.app import Categories, Kinds, _fail, _progress, _settings, app, console
from geo_monitor import db
from geo_monitor.errors import AccessDeniedError, GeoMonitorError, InvalidArgumentError
from geo_monitor.settings import Settings

STEWARD = "steward"  # the team of the admin principal: whoever runs the CLI holds the database URL


def _day(text: str | None, name: str) -> date:
    """Parse a YYYY-MM-DD option, naming it when missing or malformed."""
    if text is None:
        raise InvalidArgumentError(f"--{name} is required with FILE (YYYY-MM-DD)", name)
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidArgumentError(f"--{name} {text[:40]!r}: expected a day YYYY-MM-DD", name) from None


def export_slice(settings: Settings, path: Path, token: str | None, *, start: str | None, end: str | None,
                 resolution: int, kinds: list[str] | None, categories: list[str] | None, area: str | None,
                 bbox: str | None) -> tuple[int, int]:
    """Write one principal's slice of hexagon counts through the access policy; return (hexagons, total).

    Without a token the principal is the steward (admin); with one, the token's role and team,
    as through the API's /hexagons. The write and every refusal are in the audit log.
    """
    from geo_monitor.export import FORMATS, write_frame
    from geo_monitor.privacy import access
    from geo_monitor.privacy.tokens import PUBLIC, Principal, audit, authenticate

    if path.suffix.lower() not in FORMATS:
        raise InvalidArgumentError(f"{path.name}: unknown output format; use {', '.join(FORMATS)}", "FILE")
    with db.connect(settings) as conn:
        principal = Principal(role=access.ADMIN, team=STEWARD)
        if token is not None:
            principal = authenticate(conn, token.strip())
            if principal is None:
                audit(conn, PUBLIC, "refused", {"file": path.name, "via": "cli", "token_prefix": token.strip()[:8],
                                                 "reason": "unknown, expired or revoked token"}, 401)
                raise AccessDeniedError("--token: the token is unknown, expired or revoked", "token")
        asked = {"file": path.name, "start": start, "end": end, "resolution": resolution, "kinds": kinds,
                 "categories": categories, "area": area, "bbox": bbox, "via": "cli"}
        try:
            access.check(principal, "hexagons")  # the file holds what /hexagons answers this principal
            chosen = access.slice_for(principal, settings, start=_day(start, "start"), end=_day(end, "end"),
                                      resolution=resolution, kinds=kinds, categories=categories, area=area,
                                      bbox=bbox)
        except AccessDeniedError as exc:
            audit(conn, principal, "refused", {**asked, "reason": str(exc)[:300]}, 403)
            raise
        answer = access.hex_counts(conn, principal, chosen, settings)
        frame = answer.frame.astype({"count": "Int64"})  # None where suppressed stays a null
        write_frame(frame, path)
        audit(conn, principal, f"export.{path.suffix.lower().lstrip('.')}",
              {**chosen.params(), "file": path.name, "via": "cli"}, 200)
    return len(frame), answer.total


@app.command()
def export(
    file: Annotated[Path | None, typer.Argument(
        help="Write a slice of hexagon counts: .parquet, .gpkg, .csv or .geojson")] = None,
    lake: Annotated[Path | None, typer.Option("--lake", help="The event lake folder (created if missing)")] = None,
    start: Annotated[str | None, typer.Option(help="First day, YYYY-MM-DD (Europe/Paris); with FILE")] = None,
    end: Annotated[str | None, typer.Option(help="Day after the last, YYYY-MM-DD (exclusive); with FILE")] = None,
    resolution: Annotated[int, typer.Option(help="H3 resolution, 7-11")] = 9,
    kind: Kinds = None,
    category: Categories = None,
    area: Annotated[str | None, typer.Option(help="e.g. arrondissement:75118 or iris:751187014")] = None,
    bbox: Annotated[str | None, typer.Option(help="minlon,minlat,maxlon,maxlat")] = None,
    token: Annotated[str | None, typer.Option(
        help="Export as this API token's role and team (default: the steward, every kind)")] = None,
) -> None:
    """Write a slice of hexagon counts to FILE through the access policy, or the events to the lake.

    FILE: the counts, residents, rate and share per hexagon of a window, as /hexagons answers
    the same principal; audited. --lake: the stored events not yet in the lake as GeoParquet,
    one folder per Paris month; incremental (only ingest batches missing from the lake's
    manifest are written). DuckDB, geopandas and dask-geopandas read the folder as it is.
    """
    if (file is None) == (lake is None):
        _fail(ValueError("give either FILE (a slice of hexagon counts) or --lake DIR (the event lake), not "
                         + ("both" if file else "neither")))
    settings = _settings()
    if file is not None:
        try:
            cells, total = export_slice(settings, file, token, start=start, end=end, resolution=resolution,
                                        kinds=kind, categories=category, area=area, bbox=bbox)
        except GeoMonitorError as exc:
            _fail(exc)
        console.print(f"wrote {file}: {cells:,} hexagons, {total:,} events")
        return
    from geo_monitor.store.lake import export_lake

    try:
        with db.connect(settings) as conn, _progress() as bar:
            task = bar.add_task(f"export to {lake}", total=None)
            report = export_lake(conn, lake, progress=lambda n: bar.update(task, completed=n))
    except GeoMonitorError as exc:
        _fail(exc)
    console.print("\n".join(report.summary()))
