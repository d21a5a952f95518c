"""Export commands: the event lake (GeoParquet by month) that the batch path on Dask reads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.app import _fail, _progress, _settings, app, console
from geo_monitor import db
from geo_monitor.errors import GeoMonitorError


@app.command()
def export(
    lake: Annotated[Path, typer.Option("--lake", help="The event lake folder (created if missing)")],
) -> None:
    """Write the stored events not yet in the lake as GeoParquet, one folder per Paris month.

    Incremental: only ingest batches missing from the lake's manifest are written, so running
    it after every ingest costs the new events only. DuckDB, geopandas and dask-geopandas read
    the folder as it is.
    """
    from geo_monitor.store.lake import export_lake

    settings = _settings()
    try:
        with db.connect(settings) as conn, _progress() as bar:
            task = bar.add_task(f"export to {lake}", total=None)
            report = export_lake(conn, lake, progress=lambda n: bar.update(task, completed=n))
    except GeoMonitorError as exc:
        _fail(exc)
    console.print("\n".join(report.summary()))
