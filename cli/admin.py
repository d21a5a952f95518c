"""Commands for the steward: tokens, the API server, the demo."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.app import _fail, _progress, _settings, app, console, err
from geo_monitor import db
from geo_monitor.errors import GeoMonitorError


@app.command()
def demo(
    events: Annotated[int, typer.Option(help="Size of the synthetic sample")] = 200_000,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic sample")] = 42,
    serve_api: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the API and maps at the end")] = True,
    port: Annotated[int, typer.Option(help="Port of the API")] = 8000,
) -> None:
    """Set everything up on sample and reference data, build the maps, then serve the API."""
    from cli.demo import run_demo

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
    console.print(f"report (2021, partners and public editions): {(out / 'report-2021-fr.html').resolve()}, "
                  f"{(out / 'report-2021-public-fr.html').resolve()}")
    console.print(f"static public site (open index.html from disk): {(out / 'public').resolve()}/index.html")
    if serve_api:
        console.print(f"API: http://127.0.0.1:{port}/docs   public map: http://127.0.0.1:{port}/maps/public   "
                      f"(Ctrl-C to stop)")
        serve(host="127.0.0.1", port=port, workers=1)


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
    from geo_monitor.privacy.tokens import create_token

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
    from geo_monitor.privacy.tokens import list_tokens

    with db.connect(_settings()) as conn:
        for row in list_tokens(conn):
            state = "revoked" if row["revoked_at"] else f"expires {row['expires_at']:%Y-%m-%d}"
            console.print(f"{row['id']:>4}  {row['prefix']}…  {row['role']:<9} {row['team']:<20} {state}")


@token_app.command("revoke")
def token_revoke(token_id: Annotated[int, typer.Argument(help="Token id (see token list)")]) -> None:
    """Revoke a token at once."""
    from geo_monitor.privacy.tokens import revoke_token

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
    # The app reads X-Forwarded-For itself, and only from GEO_MONITOR_API_TRUSTED_PROXIES: uvicorn
    # must not rewrite the client address first (by default it believes any local peer).
    uvicorn.run("api.main:app_factory", factory=True, host=host, port=port, workers=workers, log_level="info",
                proxy_headers=False)
