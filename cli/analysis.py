"""Commands for the analyses: Gi* and emerging hotspots, works impact, coverage gap."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import Categories, Kinds, Out, _fail, _settings, app, console
from geo_monitor import db
from geo_monitor.errors import GeoMonitorError


def _window_option(text: str, name: str) -> tuple[str, str]:
    """Parse START:END (Paris days, END exclusive)."""
    start, sep, end = text.partition(":")
    if not sep:
        _fail(ValueError(f"--{name} {text!r}: expected START:END, e.g. 2019-01-01:2019-07-01"))
    return start, end


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
    from geo_monitor.export import write_frame

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            if emerging:
                from geo_monitor.analysis.emerging import emerging as find_emerging

                result = find_emerging(conn, start=start, end=end, resolution=resolution, step=step,
                                           kinds=kind, categories=category, k=k, settings=settings)
                column = "pattern"
            else:
                from geo_monitor.analysis.hotspots import hotspots as find_hotspots

                result = find_hotspots(conn, start=start, end=end, resolution=resolution, kinds=kind,
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
    from geo_monitor.analysis.impact import works_impact
    from geo_monitor.export import write_frame

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
    from geo_monitor.analysis.coverage import coverage_gap
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
