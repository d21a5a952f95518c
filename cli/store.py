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

    if not file.is_file():
        _fail(FileNotFoundError(f"no file {file}: check the path (ingest reads one CSV, GeoJSON or GeoParquet file)"))
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
def aggregate(
    engine: Annotated[str, typer.Option(help="postgres (in the database) or dask (from the event lake, on a cluster)")] = "postgres",
    lake: Annotated[Path | None, typer.Option(help="The event lake (--engine dask); brought up to date first")] = None,
    scheduler: Annotated[str | None, typer.Option(help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 "
                                                       "(default: a local cluster of 2 worker processes)")] = None,
) -> None:
    """Rebuild the hexagon rollups and the residents per hexagon from the stored events.

    With --engine dask the rollups are counted on a Dask cluster from the event lake (exported
    first, incrementally) and loaded into the database in one transaction: the same rows.
    """
    import time

    from geo_monitor.grid import build_population
    from geo_monitor.store import rollups

    if engine not in ("postgres", "dask"):
        _fail(ValueError(f"--engine {engine!r}: expected postgres or dask"))
    if engine == "dask" and lake is None:
        _fail(ValueError("--engine dask reads the event lake: give --lake DIR (geo-monitor export --lake DIR writes it)"))
    if engine == "postgres" and (lake is not None or scheduler is not None):
        _fail(ValueError("--lake and --scheduler go with --engine dask"))
    settings = _settings()
    started = time.perf_counter()
    try:
        with db.connect(settings) as conn:
            if engine == "dask":
                events = _aggregate_on_dask(conn, lake, scheduler)
            else:
                events = rollups.refresh(conn)
            rows = {table: dict(conn.execute(f"SELECT resolution, count(*) FROM {table} GROUP BY 1").fetchall())
                    for table in rollups.TABLES}
            for r in settings.resolutions:
                build_population(conn, r)
    except GeoMonitorError as exc:
        _fail(exc)
    console.print(f"rollups rebuilt from {events:,} events in {time.perf_counter() - started:.1f} s ({engine})")
    for table, period in rollups.TABLES.items():
        for r in sorted(rows[table]):
            console.print(f"  resolution {r:>2}: {rows[table][r]:>10,} ({period}, category, cell) rows")
    console.print(f"residents per hexagon computed for resolutions {', '.join(map(str, settings.resolutions))}")


def _aggregate_on_dask(conn, lake: Path, scheduler: str | None) -> int:
    """Bring the lake up to date, count the rollups on the cluster, load them; return the events."""
    from geo_monitor.batch.cluster import dask_client
    from geo_monitor.batch.rollups import rollups_from_lake
    from geo_monitor.store.lake import export_lake

    for line in export_lake(conn, lake).summary():
        console.print(line)
    with dask_client(scheduler) as client:
        console.print(f"dask: {len(client.scheduler_info()['workers'])} worker(s) at {client.scheduler.address}")
        result = rollups_from_lake(conn, client, lake)
    console.print(f"  {result.months} month(s) counted on the cluster and loaded with COPY in {result.seconds:.1f} s")
    return result.events
