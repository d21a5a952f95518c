"""The `geo-monitor` Typer application, its consoles and the helpers every command uses."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from geo_monitor import __version__
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

Kinds = Annotated[list[str] | None, typer.Option("--kind", help="incident, outreach or works (repeatable)")]
Categories = Annotated[list[str] | None, typer.Option("--category", help="A category of data/categories.csv (repeatable)")]
Out = Annotated[Path | None, typer.Option(help="Write the table: .geojson, .csv, .parquet or .gpkg")]


def _fail(exc: Exception) -> None:
    err.print("[bold red]error:[/] " + " ".join(str(exc).split()).replace("[", "\\["))  # one line, no markup
    raise typer.Exit(code=1)


def _settings() -> Settings:
    """Return the settings, turning a bad environment variable into one readable error."""
    try:
        return get_settings()
    except ValidationError as exc:
        _fail(ValueError(settings_problem(exc)))
        raise  # unreachable: _fail exits


def settings_problem(exc: ValidationError) -> str:
    """Return invalid settings as one line naming each variable."""
    return "invalid settings: " + "; ".join(
        f"GEO_MONITOR_{'_'.join(map(str, e['loc'])).upper()}: {e['msg'].removeprefix('Value error, ')}"
        for e in exc.errors())


def _progress() -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed:,.0f} rows"),
                    TimeElapsedColumn(), console=err, transient=True, disable=not err.is_terminal)


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False) -> None:
    """Anonymised monitoring of public space: PostGIS store, H3 aggregates, API and maps."""
    if version:
        console.print(__version__)
        raise typer.Exit()
