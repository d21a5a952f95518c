"""The plan in the store: the seed's commitments, bad files refused whole, updates append-only."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from geo_monitor.errors import PlanFileError
from geo_monitor.plan.loader import load_plan
from geo_monitor.plan.updates import add_update
from geo_monitor.settings import Settings

SEED = Path(__file__).resolve().parents[1] / "data" / "plan_2019_2021.yaml"


@pytest.fixture
def seeded(conn: psycopg.Connection) -> psycopg.Connection:
    """The session database with the seed loaded (committed: loading it again changes nothing)."""
    load_plan(conn, SEED)
    conn.commit()
    return conn


def test_the_seed_holds_the_commitments_of_27_may_2019_with_their_figures(seeded: psycopg.Connection) -> None:
    budgets = {(a, p, y): amount for a, p, y, amount in seeded.execute(
        "SELECT action_id, partner, year, amount FROM plan_budgets")}
    targets = dict(seeded.execute("SELECT code, target FROM plan_indicators WHERE target IS NOT NULL"))
    titles = dict(seeded.execute("SELECT id, title FROM plan_actions"))

    assert {k: v for k, v in budgets.items() if k[0] == "A03"} == {
        ("A03", "prefecture_idf", y): Decimal("1200000.00") for y in (2019, 2020, 2021)}
    assert budgets[("A02", "ars_idf", 2019)] == Decimal("1300000.00")
    assert budgets[("A05", "ville_paris", 2019)] == Decimal("1000000.00")
    assert (targets["perennial_places"], targets["hotel_places"], targets["specialised_places"]) == (152, 60, 68)
    assert "7 jours sur 7" in titles["A01"] and "ASSORE" in titles["A04"] and "octobre 2018" in titles["A07"]
    assert "RATP" in titles["A09"] and "68 places" in titles["A10"]
    assert seeded.execute("SELECT starts_on FROM plan_actions WHERE id = 'A07'").fetchone()[0].isoformat() == "2018-10-01"
    assert load_plan(seeded, SEED).changed is False


BAD_CSV = """record,id,objective,title,lead_partner,partners,starts_on,ends_on,action,partner,year,amount,date,status,type,operator,places,arrondissement,opens_on
action,T1,accompany,ok,ville_paris,,2020-01-01,2020-12-31,,,,,,,,,,,
action,T2,health,bad objective,ville_paris,,,,,,,,,,,,,,
action,T3,1,bad partner,mairie_inconnue,,,,,,,,,,,,,,
action,T1,1,duplicate,ville_paris,,,,,,,,,,,,,,
budget,,,,,,,,T1,ville_paris,2020,-5,,,,,,,
action,T4,2,ends first,ars_idf,,2021-01-01,2020-01-01,,,,,,,,,,,
update,,,,,,,,T1,,,,2020-05-01,finished,,,,,
place,P1,,,,,,,,,,,,,hotel_shelter,Aurore,-3,19,2020-01-01
"""


def test_a_file_with_bad_rows_loads_nothing_and_names_every_bad_row(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV, encoding="utf-8")
    before = conn.execute("SELECT count(*) FROM plan_actions").fetchone()[0]

    with pytest.raises(PlanFileError) as caught:
        load_plan(conn, path)

    problems = caught.value.problems
    assert len(problems) == 7, problems
    expected = {3: "unknown objective", 4: "unknown partner 'mairie_inconnue'", 5: "duplicate id 'T1'",
                6: "negative amount", 7: "end before start", 8: "unknown status 'finished'", 9: "negative amount"}
    for line, words in expected.items():
        assert any(p.startswith(f"line {line} ") and words in p for p in problems), (line, problems)
    assert conn.execute("SELECT count(*) FROM plan_actions WHERE id LIKE 'T%'").fetchone()[0] == 0
    assert conn.execute("SELECT count(*) FROM plan_actions").fetchone()[0] == before


def test_a_place_is_never_stored_with_an_address(conn: psycopg.Connection, tmp_path: Path) -> None:
    path = tmp_path / "place.yaml"
    path.write_text("places:\n  - {id: X1, type: rest_space, operator: O, places: 5, arrondissement: 18, "
                    "opens_on: 2020-01-01, address: 1 rue Exemple}\n", encoding="utf-8")
    with pytest.raises(PlanFileError, match=r"places\[1\] \(X1\): unexpected field\(s\) address .*never by address"):
        load_plan(conn, path)
    columns = {r[0] for r in conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'plan_places'")}
    assert not {"address", "street", "lon", "lat", "geom"} & columns


def test_updates_are_append_only(seeded: psycopg.Connection, settings: Settings) -> None:
    record = {"action_id": "A01", "on_date": "2021-03-01", "status": "started", "author": "test", "note": "append"}
    assert add_update(seeded, record) is True
    assert add_update(seeded, record) is False  # the same update sent twice is stored once
    seeded.commit()
    for statement in ("UPDATE plan_updates SET status = 'done'", "DELETE FROM plan_updates", "TRUNCATE plan_updates"):
        with pytest.raises(psycopg.errors.RestrictViolation, match="add a new update instead"):
            seeded.execute(statement)
        seeded.rollback()
    assert seeded.execute("SELECT count(*) FROM plan_updates WHERE note = 'append'").fetchone()[0] == 1
