"""The ``geo-monitor`` command line: one entry point, one sub-command per job."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from geo_monitor import __version__, db, reference
from geo_monitor.errors import GeoMonitorError
from geo_monitor.settings import Settings, get_settings

app = typer.Typer(help="geo_monitor: anonymised monitoring of public space in north-east Paris.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database: create it, apply migrations.", no_args_is_help=True)
reference_app = typer.Typer(help="Reference layers (boundaries, IRIS population, stations, works).",
                            no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(reference_app, name="reference")
console = Console(stderr=False, soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {exc}")
    raise typer.Exit(code=1)


def _settings() -> Settings:
    """Return the settings, turning a bad environment variable into one readable error."""
    try:
        return get_settings()
    except ValidationError as exc:
        problems = "; ".join(f"GEO_MONITOR_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors())
        _fail(ValueError(f"invalid settings: {problems}"))
        raise  # unreachable: _fail exits


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f} rows"),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    """Anonymised monitoring of public space: PostGIS store, H3 aggregates, API and maps."""
    if version:
        console.print(__version__)
        raise typer.Exit()


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
    from geo_monitor.ingest import ingest_file
    from geo_monitor.readers import FORMATS

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
    from geo_monitor.sample import generate_sample

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
def demo(
    events: Annotated[int, typer.Option(help="Size of the synthetic sample")] = 200_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic sample")] = 42,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API and maps at the end")] = True,
    port: Annotated[int, typer.Option(help="Port of the API")] = 8000,
) -> None:
    """Set everything up on sample and reference data, build the maps, then serve the API."""
    from geo_monitor.demo import run_demo

    settings = _settings()
    try:
        with _progress() as bar:
            tasks: dict[str, object] = {}

            def progress(step: str, done: int, total: int) -> None:
                if step not in tasks:
                    tasks[step] = bar.add_task(step, total=total)
                bar.update(tasks[step], completed=done)

            state = run_demo(settings, events=events, seed=seed, say=lambda text: err.print(f"[bold]{text}[/]"),
                             progress=progress)
    except GeoMonitorError as exc:
        _fail(exc)
    console.rule("done")
    for line in state.lines:
        console.print(line)
    console.print("everything was already in place: nothing changed" if not state.changed else "demo data is ready")
    out = settings.output_dir
    console.print(f"maps (open from disk): {(out / 'maps').resolve()}/{{planner,coordination,public}}.html")
    console.print(f"tokens (planner, police, outreach, admin): {(out / 'demo-tokens.json').resolve()}")
    if serve_api:
        console.print(f"API: http://127.0.0.1:{port}/docs   public map: http://127.0.0.1:{port}/maps/public   "
                      f"(Ctrl-C to stop)")
        serve(host="127.0.0.1", port=port, workers=1)


def _window_option(text: str, name: str) -> tuple[str, str]:
    """Parse START:END (Paris days, END exclusive)."""
    start, sep, end = text.partition(":")
    if not sep:
        _fail(ValueError(f"--{name} {text!r}: expected START:END, e.g. 2019-01-01:2019-07-01"))
    return start, end


@app.command()
def aggregate() -> None:
    """Rebuild the hexagon rollups and the residents per hexagon from the stored events."""
    import time

    from geo_monitor import rollups
    from geo_monitor.population import build_population

    settings = _settings()
    started = time.perf_counter()
    try:
        with db.connect(settings) as conn:
            events = rollups.refresh(conn)
            rows = dict(conn.execute("SELECT resolution, count(*) FROM rollup_monthly GROUP BY 1").fetchall())
            for r in settings.resolutions:
                build_population(conn, r)
    except GeoMonitorError as exc:
        _fail(exc)
    console.print(f"rollups rebuilt from {events:,} events in {time.perf_counter() - started:.1f} s")
    for r in sorted(rows):
        console.print(f"  resolution {r:>2}: {rows[r]:>9,} (month, category, cell) rows")
    console.print(f"residents per hexagon computed for resolutions {', '.join(map(str, settings.resolutions))}")


Kinds = Annotated[list[str] | None, typer.Option("--kind", help="incident, outreach or works (repeatable)")]
Categories = Annotated[list[str] | None, typer.Option("--category", help="A category of data/categories.csv (repeatable)")]
Out = Annotated[Path | None, typer.Option(help="Write the table: .geojson, .csv or .parquet")]


@app.command("hotspots")
def hotspots_command(
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD (Europe/Paris)")],
    end: Annotated[str, typer.Option(help="Day after the last, YYYY-MM-DD (exclusive)")],
    resolution: Annotated[int, typer.Option(help="H3 resolution, 7-11")] = 10,
    kind: Kinds = None,
    category: Categories = None,
    k: Annotated[int, typer.Option(help="Neighbourhood radius in rings (1: 7 cells, 2: 19)")] = 1,
    emerging: Annotated[bool, typer.Option("--emerging", help="Emerging hotspots over time steps instead")] = False,
    step: Annotated[str, typer.Option(help="Time step of --emerging: month or week")] = "month",
    out: Out = None,
) -> None:
    """Find significant hot and cold spots (Getis-Ord Gi*, FDR-corrected), or how they evolve."""
    from geo_monitor import analysis
    from geo_monitor.export import write_frame

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            if emerging:
                result = analysis.emerging(conn, start=start, end=end, resolution=resolution, step=step,
                                           kinds=kind, categories=category, k=k, settings=settings)
                column = "pattern"
            else:
                result = analysis.hotspots(conn, start=start, end=end, resolution=resolution, kinds=kind,
                                           categories=category, k=k, settings=settings)
                column = "label"
        if out:
            write_frame(result, out)
    except GeoMonitorError as exc:
        _fail(exc)
    what = f"emerging hotspots by {step}" if emerging else "Gi* hotspots (FDR)"
    console.print(f"{what}, resolution {resolution}, {start} to {end} (exclusive), k={k}: {len(result):,} cells")
    for label, n in result[column].value_counts().items():
        console.print(f"  {n:>6,}  {label}")
    if not emerging:
        top = result[result["gi_bin"] > 0].nlargest(5, "z")
        for row in top.itertuples():
            console.print(f"  hottest: {row.h3}  count {row.count:,}  z {row.z:.2f}")
    if out:
        console.print(f"written to {out}")


@app.command()
def impact(
    site: Annotated[str, typer.Argument(help="Works site id, e.g. CP000617 (see the works reference layer)")],
    before: Annotated[str | None, typer.Option(help="Before window START:END (default: as long as the works, just before)")] = None,
    after: Annotated[str | None, typer.Option(help="After window START:END (default: as long as the works, just after)")] = None,
    resolution: Annotated[int, typer.Option(help="H3 resolution of the areas, 9-11")] = 10,
    ring: Annotated[int, typer.Option(help="Width of the displacement ring, in cells")] = 1,
    kind: Kinds = None,
    category: Categories = None,
    out: Out = None,
) -> None:
    """Before/after counts around a works site, with WDQ and the weighted displacement difference."""
    from geo_monitor.export import write_frame
    from geo_monitor.impact import works_impact

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            result = works_impact(conn, site, before=_window_option(before, "before") if before else None,
                                  after=_window_option(after, "after") if after else None,
                                  resolution=resolution, ring=ring, kinds=kind or None, categories=category,
                                  settings=settings)
        if out:
            write_frame(result.to_frame(), out)
    except GeoMonitorError as exc:
        _fail(exc)
    console.print("\n".join(result.summary()))
    if out:
        console.print(f"written to {out}")


@app.command()
def coverage(
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD (Europe/Paris)")],
    end: Annotated[str, typer.Option(help="Day after the last, YYYY-MM-DD (exclusive)")],
    resolution: Annotated[int, typer.Option(help="H3 resolution, 7-11")] = 9,
    out: Out = None,
) -> None:
    """Where incidents meet no outreach: incidents vs outreach contacts per hexagon."""
    from geo_monitor.coverage import coverage_gap
    from geo_monitor.export import write_frame

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            result = coverage_gap(conn, start=start, end=end, resolution=resolution, settings=settings)
        if out:
            write_frame(result, out)
    except GeoMonitorError as exc:
        _fail(exc)
    uncovered = result[result["uncovered"]] if "uncovered" in result else result.iloc[0:0]
    console.print(f"coverage, resolution {resolution}, {start} to {end}: {len(uncovered):,} of {len(result):,} "
                  "cells have incidents and little or no outreach")
    for row in uncovered.nlargest(5, "incidents").itertuples():
        console.print(f"  {row.h3}  incidents {row.incidents:,}  outreach {row.outreach:,}")
    if out:
        console.print(f"written to {out}")


@app.command()
def release(
    month: Annotated[str, typer.Option(help="Calendar month to publish, YYYY-MM (a whole past month)")],
    new_version: Annotated[bool, typer.Option("--new-version", help="Publish again (spends privacy budget again)")] = False,
    out: Out = None,
) -> None:
    """Publish one month for the public: protected counts that cannot single anyone out."""
    import json

    from geo_monitor.release import create_release

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


token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="admin, planner, police or outreach")],
    team: Annotated[str, typer.Option(help="Team name (outreach teams see their own records)")],
    days: Annotated[int, typer.Option(help="Days until it expires (1-730)")] = 90,
    description: Annotated[str | None, typer.Option(help="What it is for")] = None,
) -> None:
    """Create a token; it is printed once and stored only as a hash."""
    from geo_monitor.tokens import create_token

    try:
        with db.connect(_settings()) as conn:
            token_id, token = create_token(conn, role=role, team=team, days=days, description=description)
    except GeoMonitorError as exc:
        _fail(exc)
    err.print(f"token {token_id} for {role}/{team}, valid {days} days; store it now, it is not kept:")
    console.print(token)


@token_app.command("list")
def token_list() -> None:
    """List tokens (never the tokens themselves)."""
    from geo_monitor.tokens import list_tokens

    with db.connect(_settings()) as conn:
        for row in list_tokens(conn):
            state = "revoked" if row["revoked_at"] else f"expires {row['expires_at']:%Y-%m-%d}"
            console.print(f"{row['id']:>4}  {row['prefix']}…  {row['role']:<9} {row['team']:<20} {state}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Token id (see token list)")]) -> None:
    """Revoke a token at once."""
    from geo_monitor.tokens import revoke_token

    try:
        with db.connect(_settings()) as conn:
            revoke_token(conn, token_id)
    except GeoMonitorError as exc:
        _fail(exc)
    console.print(f"token {token_id} revoked")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
) -> None:
    """Serve the API (OpenAPI docs at /docs)."""
    import uvicorn

    console.print(f"serving the API on http://{host}:{port} (docs: http://{host}:{port}/docs)")
    uvicorn.run("api.main:app_factory", factory=True, host=host, port=port, workers=workers, log_level="info")


def run() -> None:  # pragma: no cover - console entry
    """Entry point that turns unexpected errors into one readable line."""
    try:
        app()
    except GeoMonitorError as exc:
        err.print(f"error: {exc}")
        sys.exit(1)
