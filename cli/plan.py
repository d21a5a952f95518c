"""Commands of the plan: load its actions and places, record an update, list them; the yearly report."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from cli.app import _fail, _settings, app, console, err
from geo_monitor import db
from geo_monitor.errors import GeoMonitorError

plan_app = typer.Typer(help="The plan: objectives, actions, their updates and accommodation places.",
                       no_args_is_help=True)
app.add_typer(plan_app, name="plan")


@plan_app.command("load")
def plan_load(
    file: Annotated[Path, typer.Argument(help="A plan file: .yaml or .csv (e.g. data/plan_2019_2021.yaml)")],
    author: Annotated[str, typer.Option(help="Who records the file's updates that name no author")] = "cli",
) -> None:
    """Load actions, budgets, indicators, places and updates; a file with a bad record loads nothing."""
    from geo_monitor.plan.loader import load_plan

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            report = load_plan(conn, file, author=author)
    except GeoMonitorError as exc:
        _fail(exc)
    console.print(f"{report.file_name}: " + ("loaded" if report.changed else "nothing new"))
    for line in report.summary():
        console.print(f"  {line}")


@plan_app.command("update")
def plan_update(
    action: Annotated[str, typer.Argument(help="The action's id, e.g. A03")],
    status: Annotated[str, typer.Option(help="planned, started, done or dropped")],
    on: Annotated[str, typer.Option("--date", help="Date of the update, YYYY-MM-DD (today by default)")] = "",
    committed: Annotated[float | None, typer.Option(help="Amount committed to date (euros)")] = None,
    spent: Annotated[float | None, typer.Option(help="Amount spent to date (euros)")] = None,
    payer: Annotated[str | None, typer.Option(help="Partner the amounts belong to (e.g. ville_paris)")] = None,
    value: Annotated[list[str] | None, typer.Option(help="Indicator value code=number (repeatable)")] = None,
    note: Annotated[str | None, typer.Option(help="A short note (no names)")] = None,
    author: Annotated[str, typer.Option(help="Who records the update")] = "cli",
) -> None:
    """Append an update to an action (the history is the record: nothing is ever edited)."""
    from geo_monitor.plan.loader import check_records
    from geo_monitor.plan.objectives import partners
    from geo_monitor.plan.updates import add_update

    fields = {"action": action, "date": on or date.today().isoformat(), "status": status, "committed": committed,
              "spent": spent, "payer": payer, "values": ";".join(value or []), "note": note, "author": author}
    settings = _settings()
    try:
        with db.connect(settings) as conn:
            known = {r[0] for r in conn.execute("SELECT id FROM plan_actions")}
            record = check_records([("update", "update", fields)], set(partners(conn)), known, author).updates[0]
            added = add_update(conn, record)
            conn.commit()
    except GeoMonitorError as exc:
        _fail(exc)
    console.print(f"{action}: update of {record['on_date']} ({status}) " + ("recorded" if added else "already recorded"))


@plan_app.command("show")
def plan_show(
    on: Annotated[str, typer.Option("--as-of", help="Status as of this day, YYYY-MM-DD (today by default)")] = "",
) -> None:
    """List the actions by objective with their status, lead partner and planned budget."""
    from geo_monitor.plan.actions import list_actions

    settings = _settings()
    try:
        with db.connect(settings) as conn:
            actions = list_actions(conn, as_of=date.fromisoformat(on) if on else None)
    except (GeoMonitorError, ValueError) as exc:
        _fail(exc)
    if not actions:
        err.print("no action loaded yet: run `geo-monitor plan load data/plan_2019_2021.yaml`")
    for a in actions:
        budget = sum(float(b["amount"]) for b in a["budget"])
        console.print(f"{a['id']:<5} {a['objective']:<14} {a['status']:<8} {a['lead_partner']:<18} "
                      f"{budget:>12,.0f} €  {a['title']}")


@app.command()
def report(
    year: Annotated[int, typer.Option(help="The year to evaluate, e.g. 2021")],
    out: Annotated[Path | None, typer.Option(help="HTML file to write (default: OUTPUT_DIR/report-YEAR[-public]-LANG.html)")] = None,
    lang: Annotated[str, typer.Option(help="fr (default) or en")] = "fr",
    public: Annotated[bool, typer.Option("--public", help="The public edition: published releases and public plan information only")] = False,
    pdf: Annotated[bool, typer.Option(help="Also write a PDF twin (needs WeasyPrint)")] = True,
) -> None:
    """Write the yearly evaluation of the plan as one self-contained HTML page (and its PDF)."""
    from geo_monitor.report.files import write_report

    if lang not in ("fr", "en"):
        _fail(ValueError(f"--lang {lang!r}: fr or en"))
    settings = _settings()
    out = out or settings.output_dir / f"report-{year}{'-public' if public else ''}-{lang}.html"
    try:
        with db.connect(settings) as conn:
            written = write_report(conn, year, out, public=public, lang=lang, pdf=pdf, settings=settings,
                                   progress=lambda step: err.print(f"  {step}…"))
    except GeoMonitorError as exc:
        _fail(exc)
    size = written.html.stat().st_size / 1e6
    console.print(f"{'wrote' if written.changed else 'unchanged'} {written.html} ({size:.2f} MB)")
    if written.pdf:
        console.print(f"PDF: {written.pdf}")
    elif pdf:
        console.print("no PDF: WeasyPrint is not installed (pip install weasyprint)")
