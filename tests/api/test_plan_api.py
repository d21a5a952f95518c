"""The plan and report routes over HTTP: who may read, who may write, audit of the partners' report."""

from __future__ import annotations

from pathlib import Path

import pytest

from geo_monitor import db
from geo_monitor.plan.loader import load_plan

SEED = Path(__file__).resolve().parents[2] / "data" / "plan_2019_2021.yaml"


@pytest.fixture(scope="module", autouse=True)
def seeded(api_settings) -> None:
    with db.connect(api_settings) as conn:
        load_plan(conn, SEED)


@pytest.mark.parametrize("role", ["admin", "planner", "police", "outreach"])
def test_every_internal_role_reads_the_plan(client, headers, role) -> None:
    answer = client.get("/plan/actions", headers=headers[role])
    assert answer.status_code == 200, answer.text
    a03 = next(a for a in answer.json() if a["id"] == "A03")
    assert [b["amount"] for b in a03["budget"]] == [1_200_000.0] * 3
    assert client.get("/plan/places", headers=headers[role]).status_code == 200


def test_the_public_does_not_read_the_internal_plan_routes(client, headers) -> None:
    assert client.get("/plan/actions").status_code == 401
    assert client.get("/reports/2021").status_code == 401


@pytest.mark.parametrize(("role", "status"), [("planner", 201), ("admin", 201), ("police", 403), ("outreach", 403)])
def test_only_planners_and_the_steward_append_updates(client, headers, sql, role, status) -> None:
    body = {"action": "A09", "date": "2020-02-01", "status": "started", "note": f"from {role}"}
    answer = client.post("/plan/updates", json=body, headers=headers[role])
    assert answer.status_code == status, answer.text
    stored = sql("SELECT author FROM plan_updates WHERE note = %s", (f"from {role}",))
    assert (len(stored) == 1) == (status == 201)


def test_a_bad_plan_file_is_400_naming_each_row(client, headers) -> None:
    body = "record,id,objective,title,lead_partner\naction,Z1,9,t,ville_paris\naction,Z2,1,t,nobody\n"
    answer = client.post("/plan/load", content=body, headers={**headers["planner"], "Content-Type": "text/csv"})
    assert answer.status_code == 400, answer.text
    message = answer.json()["error"]["message"]
    assert "line 2 (action Z1): unknown objective" in message and "line 3 (action Z2): unknown partner" in message


def test_the_partners_report_is_for_planners_and_the_steward_and_is_audited(client, headers, sql) -> None:
    before = sql("SELECT count(*) FROM audit_log WHERE action = 'reports.read'")[0][0]
    answer = client.get("/reports/2020?lang=en", headers=headers["planner"])
    assert answer.status_code == 200, answer.text
    assert "Crack plan" in answer.text and "Accompany users" in answer.text
    assert sql("SELECT count(*) FROM audit_log WHERE action = 'reports.read' AND status = 200")[0][0] == before + 1
    refused = client.get("/reports/2020", headers=headers["police"])
    assert refused.status_code == 403
    assert sql("SELECT count(*) FROM audit_log WHERE action = 'refused' AND status = 403 AND role = 'police' "
               "AND params->>'path' = '/reports/2020'")[0][0] >= 1
    public = client.get("/public/reports/2020?lang=en")
    assert public.status_code == 200 and "Public edition" in public.text
    assert client.get("/public/reports/2035").status_code == 400
