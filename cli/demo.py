"""The demo: every step on sample and reference data, idempotent, saying what it changed.

Database and layers, a synthetic sample ingested, twelve monthly public releases, three
coordination zones with their teams' tokens, the three maps, the static public site
(geo-monitor publish), the plan and its 2021 evaluation report. A second run finds
everything in place and says so.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg

from geo_monitor import db
from geo_monitor.privacy.tokens import Principal, authenticate, create_token
from geo_monitor.settings import Settings
from geo_monitor.store import reference

RELEASE_MONTHS = [f"2021-{m:02d}" for m in range(1, 13)]
TEAMS = {"steward": "admin", "ville-planification": "planner", "maraude-nord": "outreach",
         "police-18e": "police", "police-19e": "police"}


@dataclass
class DemoState:
    """What the demo did, step by step: a line per step and whether anything changed."""

    lines: list[str] = field(default_factory=list)
    changed: bool = False

    def step(self, text: str, changed: bool) -> None:
        """Record one step's outcome."""
        self.lines.append(f"{text}{'' if changed else '  (unchanged)'}")
        self.changed |= changed


def demo_tokens(conn: psycopg.Connection, path: Path) -> tuple[dict[str, str], bool]:
    """Return a valid token per demo team, reusing those saved in ``path`` (mode 600)."""
    saved = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    tokens, changed = {}, False
    for team, role in TEAMS.items():
        token = saved.get(team)
        principal = authenticate(conn, token) if token else None
        if principal is None or principal.role != role:
            _, token = create_token(conn, role=role, team=team, days=30, description="demo")
            changed = True
        tokens[team] = token
    if changed:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(tokens, indent=1), encoding="utf-8")
        os.chmod(path, 0o600)
    return tokens, changed


def demo_zones(conn: psycopg.Connection, settings: Settings) -> int:
    """Create the demo coordination zones that do not exist yet; return how many were created."""
    from geo_monitor.zones.edit import create_zone

    features = json.loads((settings.data_dir / "demo_zones.geojson").read_text(encoding="utf-8"))["features"]
    existing = {r[0] for r in conn.execute("SELECT name FROM zones WHERE archived_at IS NULL").fetchall()}
    created = 0
    for feature in features:
        props = feature["properties"]
        if props["name"] in existing:
            continue
        owner = Principal(role=TEAMS[props["owner_team"]], team=props["owner_team"])
        create_zone(conn, owner, name=props["name"], geometry=feature["geometry"],
                    partner_teams=props["partner_teams"], schedule=props["schedule"])
        created += 1
    conn.commit()
    return created


_ELEMENT_ID = re.compile(r"_[0-9a-f]{32}(?![0-9a-f])")  # folium names elements with random uuids


def write_if_changed(path: Path, text: str) -> bool:
    """Write a page only when it differs beyond folium's random element ids; True when written."""
    if path.exists() and _ELEMENT_ID.sub("", path.read_text(encoding="utf-8")) == _ELEMENT_ID.sub("", text):
        return False
    path.write_text(text, encoding="utf-8")
    return True


def run_demo(settings: Settings, *, events: int, seed: int, say: Callable[[str], None],
             progress: Callable[[str, int, int], None] | None = None) -> DemoState:
    """Run every demo step; ``say`` prints a step's heading, ``progress(step, done, total)`` its progress."""
    from geo_monitor.privacy.release import create_release
    from geo_monitor.store.ingest import ingest_file
    from geo_monitor.store.sample import generate_sample

    state = DemoState()
    out = settings.output_dir
    out.mkdir(parents=True, exist_ok=True)
    say("1/7 database")
    up = db.up(settings)
    where = db._safe_url(settings.database_url)
    state.step(f"created database {where}" if up.created_database
               else f"database {where}: {len(up.migrations)} migration(s) applied", up.changed)
    with db.connect(settings) as conn:
        say("2/7 reference layers")
        loads = reference.load_reference(conn, settings)
        state.step("reference layers: " + ", ".join(f"{x.layer} {x.features}" for x in loads),
                   any(x.changed for x in loads))
        say("3/7 sample data")
        sample = out / f"sample-{events}-{seed}.parquet"
        made = not sample.exists()
        if made:
            generate_sample(sample, events, seed=seed, settings=settings,
                            progress=(lambda n: progress("sample", n, events)) if progress else None)
        report = ingest_file(conn, sample, source="sample", settings=settings,
                             rejects_path=out / "sample.rejects.csv",
                             progress=(lambda n: progress("ingest", n, events)) if progress else None)
        state.step(f"sample {sample} ({events:,} events) ingested:", made or report.accepted > 0)
        state.lines.extend(report.summary())
        say("4/7 public releases")
        created = 0
        for month in RELEASE_MONTHS:
            result = create_release(conn, month, settings=settings)
            conn.commit()
            created += result.created
        state.step(f"public releases {RELEASE_MONTHS[0]} to {RELEASE_MONTHS[-1]}: {created} created", created > 0)
        say("5/7 teams and coordination zones")
        tokens, new_tokens = demo_tokens(conn, out / "demo-tokens.json")
        zones = demo_zones(conn, settings)
        state.step(f"tokens for {', '.join(tokens)} in {out / 'demo-tokens.json'}; {zones} zone(s) created",
                   new_tokens or zones > 0)
        say("6/7 maps")
        import maps  # maps imports folium; the library itself never does

        maps_dir = out / "maps"
        maps_dir.mkdir(exist_ok=True)
        written = [name for name, build in maps.build.MAPS.items()
                   if write_if_changed(maps_dir / f"{name}.html", maps.render(build(conn, settings=settings)))]
        state.step(f"maps in {out / 'maps'}: {', '.join(written) or 'none'} rewritten", bool(written))
        say("7/7 the plan, its 2021 evaluation and the static public site")
        state.step(*demo_plan(conn, settings))  # before the site: it carries the public report editions
        from maps.site import publish_site

        site = publish_site(conn, out / "public", settings)
        state.step(f"static public site in {out / 'public'}: {site.summary()}", bool(site.written))
    return state


def demo_plan(conn: psycopg.Connection, settings: Settings) -> tuple[str, bool]:
    """Load the plan's commitments and the demo's invented execution, then write the 2021 report."""
    from geo_monitor.plan.loader import load_plan
    from geo_monitor.report.files import write_report

    loads = [load_plan(conn, settings.data_dir / name, author="demo")
             for name in ("plan_2019_2021.yaml", "demo_plan_2019_2021.yaml")]
    conn.commit()
    # Dated by its data (figures as of the end of 2021), not by the day the demo runs: a second
    # run on another day still changes nothing.
    as_of = date(2022, 1, 1)
    written = write_report(conn, 2021, settings.output_dir / "report-2021-fr.html", settings=settings, today=as_of)
    public = write_report(conn, 2021, settings.output_dir / "report-2021-public-fr.html", public=True,
                          settings=settings, pdf=False, today=as_of)
    pdf = f" and {written.pdf.name}" if written.pdf else " (no PDF: WeasyPrint is not installed)"
    changed = any(x.changed for x in loads) or written.changed or public.changed
    return f"plan loaded; reports {written.html.name}{pdf}, {public.html.name}", changed
