"""Commands that fill the store: database, reference layers, ingest, sample data, rollups."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import _fail, _progress, _settings, app, console, err
from geo_monitor import db
from geo_monitor.errors import GeoMonitorError
from geo_monitor.store import reference

db_app = typer.Typer(help="Database: create it, apply migrations.", no_args_is_help=True)
reference_app = typer.Typer(help="Reference layers (boundaries, IRIS population, stations, works).",
                            no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(reference_app, name="reference")


@db_app.command("up")
def db_up() -> None:
    """Create the database if needed, enable PostGIS, apply migrations, sync the vocabulary."""
    try:
        report = db.up(_settings())
    except GeoMonitorError as exc:
        _fail(exc)
    _print_up(report)


def _print_up(report: db.UpReport) -> None:
    settings = _settings()
    if report.created_database:
        console.print(f"created database {db._safe_url(settings.database_url)}")
    for name in report.migrations:
        console.print(f"applied migration {name}")
    if report.categories_added:
        console.print(f"added {len(report.categories_added)} categories to the vocabulary")
    if not report.changed:
        console.print("database is up to date (nothing to do)")


@reference_app.command("load")
def reference_load() -> None:
    """Load the reference layers from GEO_MONITOR_REFERENCE_DIR (or the download cache)."""
    settings = _settings()
    try:
        with db.connect(settings) as conn:
            loads = reference.load_reference(conn, settings, progress=lambda layer: err.print(f"  {layer}…") if err.is_terminal else None)
    except GeoMonitorError as exc:
        _fail(exc)
    _print_loads(loads)


def _print_loads(loads: list[reference.LayerLoad]) -> None:
    for load in loads:
        state = "loaded" if load.changed else "unchanged"
        console.print(f"  {load.layer:<16} {load.features:>6,} features  {state}")
        if load.warning:
            console.print(f"    [yellow]warning:[/] {load.warning}")
    if not any(load.changed for load in loads):
        console.print("reference layers are up to date (nothing to do)")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="CSV, GeoJSON or GeoParquet file in the canonical record")],
    fmt: Annotated[str | None, typer.Option("--format", help="csv, geojson, parquet, or dansmarue (the Paris export)")] = None,
    source: Annotated[str | None, typer.Option(help="Source name for rows without a source column")] = None,
    crs: Annotated[str | None, typer.Option(help="CRS of lon/lat when not WGS84, e.g. EPSG:2154")] = None,
    rejects: Annotated[Path | None, typer.Option(help="Where to write refused rows (default: FILE-stem.rejects.csv here)")] = None,
) -> None:
    """Load a file of events; print accepted, rejected by reason, duplicates and time."""
    from geo_monitor.store.ingest import ingest_file
    from geo_monitor.store.readers import FORMATS

    settings = _settings()
    adapter = None
    if fmt == "dansmarue":
        adapter, fmt = "dansmarue", None
    elif fmt is not None and fmt not in FORMATS:
        _fail(ValueError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)} or dansmarue"))
    rejects = rejects or Path.cwd() / f"{file.stem}.rejects.csv"
    try:
        with db.connect(settings) as conn, _progress() as bar:
            task = bar.add_task(f"ingest {file.name}", total=None)
            report = ingest_file(conn, file, fmt=fmt, adapter=adapter, source=source, crs=crs,
                                 rejects_path=rejects, settings=settings,
                                 progress=lambda n: bar.update(task, completed=n))
    except GeoMonitorError as exc:
        _fail(exc)
    console.print("\n".join(report.summary()))


@app.command()
def sample(
    out: Annotated[Path, typer.Option(help="Output file (.csv or .parquet)")] = Path("var/sample.csv"),
    events: Annotated[int, typer.Option(help="Number of events, 1,000 to 10,000,000")] = 200_000,
    seed: Annotated[int, typer.Option(help="Random seed (same seed and size, same file)")] = 42,
) -> None:
    """Write a realistic synthetic data set (incidents, outreach, works; 2019-2021)."""
    from geo_monitor.store.sample import generate_sample

    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        with _progress() as bar:
            task = bar.add_task(f"sample {out.name}", total=events)
            summary = generate_sample(out, events, seed=seed, settings=_settings(),
                                      progress=lambda n: bar.update(task, completed=n))
    except GeoMonitorError as exc:
        _fail(exc)
    console.print(f"wrote {summary.events:,} events to {out} in {summary.seconds:.1f} s")


@app.command()
def aggregate() -> None:
    """Rebuild the hexagon rollups and the residents per hexagon from the stored events."""
    import time

    from geo_monitor.grid import build_population
    from geo_monitor.store import rollups

    settings = _settings()
    started = time.perf_counter()
    try:
        with db.connect(settings) as conn:
            events = rollups.refresh(conn)
            rows = {table: dict(conn.execute(f"SELECT resolution, count(*) FROM {table} GROUP BY 1").fetchall())
                    for table in rollups.TABLES}
            for r in settings.resolutions:
                build_population(conn, r)
    except GeoMonitorError as exc:
        _fail(exc)
    console.print(f"rollups rebuilt from {events:,} events in {time.perf_counter() - started:.1f} s")
    for table, period in rollups.TABLES.items():
        for r in sorted(rows[table]):
            console.print(f"  resolution {r:>2}: {rows[table][r]:>10,} ({period}, category, cell) rows")
    console.print(f"residents per hexagon computed for resolutions {', '.join(map(str, settings.resolutions))}")


