"""The yearly report on demo-like data: its numbers against direct SQL, the public edition against the releases."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from geo_monitor import db
from geo_monitor.errors import InvalidArgumentError, NotFoundError
from geo_monitor.plan.loader import load_plan
from geo_monitor.privacy.release import create_release
from geo_monitor.report.build import build_report
from geo_monitor.report.files import write_report
from geo_monitor.report.public import build_public_report
from geo_monitor.report.render import render_html
from geo_monitor.settings import Settings
from geo_monitor.store.ingest import ingest_file
from geo_monitor.store.sample import generate_sample
from tests.builders import own_database

DATA = Path(__file__).resolve().parents[1] / "data"
YEAR = 2021
IN_YEAR = ("occurred_at >= '2021-01-01'::timestamp AT TIME ZONE 'Europe/Paris' "
           "AND occurred_at < '2022-01-01'::timestamp AT TIME ZONE 'Europe/Paris'")


@pytest.fixture(scope="module")
def demo(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, psycopg.Connection]]:
    """A database of its own, like the demo's: reference layers, a sample, the plan, 2021 released."""
    tmp = tmp_path_factory.mktemp("report")
    with own_database(settings, "report", tmp / "cache") as own, db.connect(own) as conn:
        sample = generate_sample(tmp / "sample.parquet", 30_000, seed=5, settings=own).path
        ingest_file(conn, sample, source="sample", settings=own)
        load_plan(conn, DATA / "plan_2019_2021.yaml")
        load_plan(conn, DATA / "demo_plan_2019_2021.yaml")
        conn.commit()
        for month in range(1, 13):
            create_release(conn, f"{YEAR}-{month:02d}", settings=own)
            conn.commit()
        yield own, conn


def one(conn: psycopg.Connection, query: str, params: tuple = ()) -> float:
    return float(conn.execute(query, params).fetchone()[0] or 0)


def test_the_2021_report_matches_direct_sql(demo: tuple[Settings, psycopg.Connection]) -> None:
    settings, conn = demo
    data = build_report(conn, YEAR, settings=settings, today=date(2026, 1, 1))
    fig = data.figure

    # 1. accompany users
    assert fig("outreach").value == one(conn, f"SELECT count(*) FROM events WHERE kind_id = 2 AND {IN_YEAR}")
    days = one(conn, "SELECT count(DISTINCT (occurred_at AT TIME ZONE 'Europe/Paris')::date) FROM events "
                     f"WHERE kind_id = 2 AND {IN_YEAR}")
    assert fig("seven_days").value == pytest.approx(days / 365)
    # 2. accommodation: places open on 31 December against the seed's targets
    assert fig("places_perennial_accommodation").value == one(
        conn, "SELECT sum(places) FROM plan_places WHERE type = 'perennial_accommodation' AND opens_on <= '2021-12-31' "
              "AND (closes_on IS NULL OR closes_on > '2021-12-31')") == 142
    assert (fig("places_perennial_accommodation").target, fig("places_hotel_shelter").target,
            fig("places_specialised_housing").target) == (152, 60, 68)
    # 3. public space
    assert fig("incidents").value == one(conn, f"SELECT count(*) FROM events WHERE kind_id = 1 AND {IN_YEAR}")
    assert fig("incidents").previous == one(
        conn, "SELECT count(*) FROM events WHERE kind_id = 1 AND occurred_at >= '2020-01-01'::timestamp AT TIME ZONE "
              "'Europe/Paris' AND occurred_at < '2021-01-01'::timestamp AT TIME ZONE 'Europe/Paris'")
    # 4. knowledge
    assert fig("sources").value == one(conn, f"SELECT count(DISTINCT source_id) FROM events WHERE {IN_YEAR}")
    # execution
    done = one(conn, "SELECT count(*) FROM (SELECT DISTINCT ON (action_id) status FROM plan_updates "
                     "WHERE on_date <= '2021-12-31' ORDER BY action_id, on_date DESC, id DESC) s WHERE status = 'done'")
    assert fig("actions_done").value == done and fig("actions_done").target == 10
    assert fig("budget").target == one(conn, "SELECT sum(amount) FROM plan_budgets WHERE year = 2021") == 1_200_000


def test_the_page_is_self_contained_and_shows_the_seed_commitments(demo: tuple[Settings, psycopg.Connection],
                                                                   tmp_path: Path) -> None:
    settings, conn = demo
    written = write_report(conn, YEAR, tmp_path / "r.html", pdf=False, settings=settings, today=date(2026, 1, 1))
    html = written.html.read_text(encoding="utf-8")

    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//|url\((https?:)?//|@import""", html)
    for words in ("7 jours sur 7", "1\u202f300\u202f000 €", "1\u202f200\u202f000 €", "1\u202f000\u202f000 €",
                  "ASSORE", "octobre 2018", "RATP", "68 places", "152", "Définition"):
        assert words in html, words
    again = write_report(conn, YEAR, tmp_path / "r.html", pdf=False, settings=settings, today=date(2026, 1, 1))
    assert again.changed is False
    english = render_html(written.data, lang="en", generated=date(2026, 1, 1))
    assert "Definition" in english and "Crack plan" in english


def test_every_public_number_is_a_sum_of_released_values(demo: tuple[Settings, psycopg.Connection]) -> None:
    settings, conn = demo
    data = build_public_report(conn, YEAR, settings=settings, today=date(2026, 1, 1))
    latest = ("SELECT t.grp, t.arrondissement, t.value, r.month FROM release_totals t JOIN releases r ON r.id = t.release_id "
              "WHERE (r.month, r.version) IN (SELECT month, max(version) FROM releases GROUP BY month) "
              "AND r.month >= '2021-01-01' AND r.month < '2022-01-01'")
    rows = conn.execute(latest).fetchall()
    released = [f for f in data.figures if f.key.startswith("released_") and f.key != "released_months"]
    assert released
    for figure in released:
        group = figure.key.removeprefix("released_")
        monthly = {m: v for g, a, v, m in rows if g == group and a is None}
        assert len(monthly) == 12
        expected = None if None in monthly.values() else float(sum(monthly.values()))
        assert figure.value == expected, group
        assert figure.monthly == [None if v is None else float(v) for _, v in sorted(monthly.items())]
        for row in figure.table:
            values = [v for g, a, v, _ in rows if g == group and a == int(row["arrondissement"])]
            assert row["year"] == (None if None in values else float(sum(values)))
    cells = dict(conn.execute(
        "SELECT c.cell, CASE WHEN bool_or(c.value IS NULL) THEN NULL ELSE sum(c.value) END FROM release_cells c "
        "JOIN releases r ON r.id = c.release_id WHERE r.month >= '2021-01-01' AND r.month < '2022-01-01' "
        "GROUP BY c.cell").fetchall())
    shown = [v for v in data.maps["released"]["values"] if v is not None]
    assert sorted(shown) == sorted(float(v) for v in cells.values() if v is not None)
    # no figure of the public edition comes from the events
    assert {f.source for f in data.figures} <= {"published monthly releases (protected counts)",
                                                "plan places (geo-monitor plan load)", "plan actions and their updates",
                                                "plan budgets and updates"}


@pytest.mark.parametrize(("year", "error", "words"), [
    (2027, InvalidArgumentError, "has not begun"),
    (2017, InvalidArgumentError, "before any plan"),
    (2030, NotFoundError, "no data for 2030"),
])
def test_years_without_a_report_say_why(demo: tuple[Settings, psycopg.Connection], year: int, error: type,
                                         words: str) -> None:
    settings, conn = demo
    with pytest.raises(error, match=words):
        build_report(conn, year, settings=settings, today=date(2031, 1, 1) if year == 2030 else date(2026, 1, 1))
