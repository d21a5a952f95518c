"""Coordination zones through HTTP on the real app and a real PostGIS.

Two teams, a partner, a planner; 404 for another team's zone on read and write; a conflicting
edit (409); a bow-tie and a zone outside the area (400); police summaries without outreach;
history and past state; and the gap report on a case built so its answer is known.

Zones are global state (the gap report reads every zone), so this module runs the app on a
database of its own, created next to the session's and dropped at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import h3
import numpy as np
import pytest
import shapely
import shapely.geometry
from builders import bearer, ingest_frame, make_tokens, own_database, records_at
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes.zones import ZoneCollection, ZoneOut, ZoneSummary
from geo_monitor import db
from geo_monitor.settings import Settings
from geo_monitor.zones.edit import zone_cells

TEAMS = {"brigade-19": "police", "brigade-18": "police", "maraude-a": "outreach", "maraude-b": "outreach",
         "urbanism": "planner"}
BOX = shapely.box(2.366, 48.880, 2.374, 48.886)  # Stalingrad / Jaurès, 19e
WEEKDAYS = [{"day": d, "start": "08:00", "end": "20:00", "team": "brigade-19"} for d in range(5)]
MARCH = {"start": "2013-03-01", "end": "2013-04-01"}
JUNE = {"start": "2012-06-01", "end": "2012-07-01"}


@pytest.fixture(scope="module")
def zsettings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """This module's own database (migrated, reference loaded), dropped at the end."""
    with own_database(settings, "zones_api", tmp_path_factory.mktemp("zones-api-cache"),
                      public_rate_per_minute=1_000_000) as own:
        yield own


@pytest.fixture(scope="module")
def h(zsettings: Settings) -> dict[str, dict[str, str]]:
    """The Authorization header of each team (its role in ``TEAMS``); ``public`` has none."""
    made = make_tokens(zsettings, {team: (role, team) for team, role in TEAMS.items()})
    return {"public": {}, **{team: bearer(token) for team, (_, token) in made.items()}}


@pytest.fixture(scope="module")
def client(zsettings: Settings, h: dict) -> Iterator[TestClient]:
    """The app on this module's database, lifespan running."""
    with TestClient(create_app(zsettings)) as test_client:
        yield test_client


def feature(geometry: shapely.Geometry | dict, name: str = "zone", partners: list[str] | None = None,
            schedule: list[dict] | None = None, **extra: object) -> dict:
    """A zone as the GeoJSON Feature a GIS would send."""
    geojson = geometry if isinstance(geometry, dict) else shapely.geometry.mapping(geometry)
    return {"type": "Feature", "geometry": geojson,
            "properties": {"name": name, "partner_teams": partners or [], "schedule": schedule or [], **extra}}


def create(client: TestClient, headers: dict, body: dict) -> dict:
    """POST a zone, check 201 and its shape, return the body."""
    response = client.post("/zones", json=body, headers=headers)
    assert response.status_code == 201, response.text
    ZoneOut.model_validate(response.json())
    assert response.headers["ETag"] == f'"zone-{response.json()["id"]}-v1"'
    assert response.headers["Location"].endswith(f'/zones/{response.json()["id"]}')
    return response.json()


# --- create, read, who sees what -------------------------------------------------------------


def test_public_has_no_zones(client: TestClient, h: dict) -> None:
    assert client.get("/zones").status_code == 401
    assert client.post("/zones", json=feature(BOX)).status_code == 401


def test_two_teams_and_a_partner(client: TestClient, h: dict) -> None:
    mine = create(client, h["brigade-19"], feature(BOX, "Jaurès", ["maraude-a"],
                                                     [*WEEKDAYS, {"day": 6, "start": "22:00", "end": "02:00",
                                                                  "team": "maraude-a"}]))
    theirs = create(client, h["brigade-18"], feature(shapely.box(2.350, 48.884, 2.356, 48.889), "Barbès"))
    assert mine["properties"]["owner_team"] == "brigade-19"
    assert mine["properties"]["coverage_hours_per_week"] == 64
    assert mine["properties"]["coverage_hours_by_team"] == {"brigade-19": 60, "maraude-a": 4}

    def listed(team: str) -> set[int]:
        response = client.get("/zones", headers=h[team])
        assert response.status_code == 200
        return {f.id for f in ZoneCollection.model_validate(response.json()).features}

    assert mine["id"] in listed("brigade-19") and theirs["id"] not in listed("brigade-19")
    assert theirs["id"] in listed("brigade-18") and mine["id"] not in listed("brigade-18")
    assert mine["id"] in listed("maraude-a") and mine["id"] not in listed("maraude-b")
    assert {mine["id"], theirs["id"]} <= listed("urbanism")

    zone, etag = f"/zones/{mine['id']}", f'"zone-{mine["id"]}-v1"'
    for method, path, body in (("GET", zone, None), ("GET", f"{zone}/history", None),
                               ("GET", f"{zone}/summary?start=2013-03-01&end=2013-04-01", None),
                               ("PATCH", zone, {"properties": {"name": "taken"}}),
                               ("PUT", zone, feature(BOX, "taken")), ("POST", f"{zone}/archive", None)):
        response = client.request(method, path, json=body, headers={**h["brigade-18"], "If-Match": etag})
        assert response.status_code == 404, (method, path, response.text)
        assert "no zone" in response.json()["error"]["message"]
    for team in ("maraude-a", "urbanism"):  # they see it, but only the owner edits it
        assert client.get(zone, headers=h[team]).status_code == 200
        response = client.patch(zone, json={"properties": {"name": "taken"}}, headers={**h[team], "If-Match": etag})
        assert response.status_code == 403 and "only its owner" in response.json()["error"]["message"]
    again = client.get(zone, headers={**h["brigade-19"], "If-None-Match": etag})
    assert again.status_code == 304


def test_conflicting_edit_gets_409(client: TestClient, h: dict) -> None:
    zone = create(client, h["brigade-19"], feature(BOX, "contested"))
    path = f"/zones/{zone['id']}"
    first = client.get(path, headers=h["brigade-19"]).headers["ETag"]
    second = client.get(path, headers=h["brigade-19"]).headers["ETag"]  # two coordinators read v1
    winner = client.patch(path, json={"properties": {"name": "A's name"}}, headers={**h["brigade-19"], "If-Match": first})
    assert winner.status_code == 200 and winner.json()["properties"]["version"] == 2
    loser = client.patch(path, json={"properties": {"name": "B's name"}}, headers={**h["brigade-19"], "If-Match": second})
    assert loser.status_code == 409
    assert loser.headers["ETag"] == winner.headers["ETag"] == f'"zone-{zone["id"]}-v2"'
    assert "at version 2" in loser.json()["error"]["message"]
    assert client.get(path, headers=h["brigade-19"]).json()["properties"]["name"] == "A's name"
    missing = client.patch(path, json={"properties": {"name": "x"}}, headers=h["brigade-19"])
    assert missing.status_code == 428 and missing.json()["error"]["parameter"] == "If-Match"
    other = client.patch(path, json={"properties": {"name": "x"}}, headers={**h["brigade-19"], "If-Match": '"zone-999-v2"'})
    assert other.status_code == 400


def test_bow_tie_is_refused_with_the_reason(client: TestClient, h: dict) -> None:
    bow_tie = {"type": "Polygon", "coordinates": [[[2.366, 48.880], [2.374, 48.886], [2.374, 48.880],
                                                   [2.366, 48.886], [2.366, 48.880]]]}
    response = client.post("/zones", json=feature(bow_tie, "bow tie"), headers=h["brigade-19"])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["parameter"] == "geometry" and "Self-intersection" in error["message"]


def test_repairable_polygon_is_repaired_and_gis_extras_noted(client: TestClient, h: dict) -> None:
    spike = shapely.Polygon([(2.366, 48.880), (2.374, 48.880), (2.374, 48.883), (2.378, 48.883), (2.374, 48.883),
                             (2.374, 48.886), (2.366, 48.886), (2.366, 48.880)])
    body = create(client, h["brigade-19"], feature(spike, "spike", fid=12))
    assert any(n.startswith("repaired") for n in body["notes"])
    assert "ignored properties: fid" in body["notes"]
    assert shapely.geometry.shape(body["geometry"]).equals(shapely.MultiPolygon([BOX]))


def test_zone_outside_the_area_is_refused_and_a_straddling_one_clipped(client: TestClient, h: dict) -> None:
    louvre = client.post("/zones", json=feature(shapely.box(2.330, 48.858, 2.340, 48.863)), headers=h["brigade-19"])
    assert louvre.status_code == 400
    assert louvre.json()["error"] == {"message": "the zone lies outside the study area", "parameter": "geometry"}
    edge = create(client, h["brigade-18"], feature(shapely.box(2.318, 48.885, 2.332, 48.892), "edge"))
    assert 0 < edge["properties"]["clipped_share"] < 1
    assert any("clipped to the study area" in n for n in edge["notes"])
    bad_schedule = client.post("/zones", json=feature(BOX, schedule=[{"day": 9, "start": "08:00", "end": "09:00",
                                                                       "team": "brigade-19"}]),
                               headers=h["brigade-19"])
    assert bad_schedule.status_code == 400 and "schedule[0].day" in bad_schedule.json()["error"]["message"]


# --- history -----------------------------------------------------------------------------------


def test_history_and_past_state(client: TestClient, h: dict) -> None:
    zone = create(client, h["brigade-19"], feature(BOX, "before", schedule=WEEKDAYS[:1]))
    path = f"/zones/{zone['id']}"
    created_at = zone["properties"]["updated_at"]
    bigger = shapely.box(2.364, 48.879, 2.376, 48.887)
    put = client.put(path, json=feature(bigger, "after", ["maraude-b"]),
                     headers={**h["brigade-19"], "If-Match": f'"zone-{zone["id"]}-v1"'})
    assert put.status_code == 200 and put.json()["properties"]["schedule"] == []
    archived = client.post(f"{path}/archive", headers={**h["brigade-19"], "If-Match": put.headers["ETag"]})
    assert archived.status_code == 200 and archived.json()["properties"]["archived_at"]
    assert client.patch(path, json={"properties": {"name": "x"}},
                        headers={**h["brigade-19"], "If-Match": archived.headers["ETag"]}).status_code == 409

    history = client.get(f"{path}/history", headers=h["maraude-b"])
    assert history.status_code == 200
    entries = history.json()
    assert [(e["version"], e["action"]) for e in entries] == [(1, "create"), (2, "update"), (3, "archive")]
    assert entries[1]["changed_by"] == {"role": "police", "team": "brigade-19"}
    assert entries[1]["before"]["name"] == "before" and entries[1]["after"]["name"] == "after"

    then = client.get(path, params={"at": created_at}, headers=h["brigade-19"])
    assert then.status_code == 200
    assert then.json()["properties"]["name"] == "before" and then.json()["properties"]["version"] == 1
    assert shapely.geometry.shape(then.json()["geometry"]).equals(shapely.MultiPolygon([BOX]))
    unencoded = client.get(f"{path}?at={created_at}", headers=h["brigade-19"])  # "+00:00" read as " 00:00"
    assert unencoded.status_code == 200 and unencoded.json()["properties"]["version"] == 1
    assert client.get(path, params={"at": "2001-01-01"}, headers=h["brigade-19"]).status_code == 404
    assert client.get(path, params={"at": "soon"}, headers=h["brigade-19"]).status_code == 400
    assert zone["id"] not in {f["id"] for f in client.get("/zones", headers=h["brigade-19"]).json()["features"]}
    listed = client.get("/zones", params={"include_archived": True}, headers=h["brigade-19"]).json()
    assert zone["id"] in {f["id"] for f in listed["features"]}


# --- summaries -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def summary_zone(zsettings: Settings, client: TestClient, h: dict) -> int:
    """A zone with incidents and two outreach teams' contacts in March 2013."""
    rng = np.random.default_rng(5)
    def points(n: int) -> list[tuple[float, float]]:
        return list(zip(rng.uniform(2.363, 2.377, n), rng.uniform(48.878, 48.888, n), strict=True))
    ingest_frame(zsettings, records_at(points(80), kind="incident", category="drug_litter", day="2013-03-05",
                                       source="api-zones-incidents", snap=True))
    ingest_frame(zsettings, records_at(points(30), kind="outreach", category="contact", day="2013-03-06",
                                       source="api-zones-maraude-a", snap=True), team="maraude-a")
    ingest_frame(zsettings, records_at(points(20), kind="outreach", category="contact", day="2013-03-07",
                                       source="api-zones-maraude-b", snap=True), team="maraude-b")
    return create(client, h["brigade-19"], feature(BOX, "summary", ["maraude-a", "maraude-b"], WEEKDAYS))["id"]


def summary(client: TestClient, headers: dict, zone_id: int) -> dict:
    """GET a zone summary for March 2013, checked against the response model."""
    response = client.get(f"/zones/{zone_id}/summary", params=MARCH, headers=headers)
    assert response.status_code == 200, response.text
    ZoneSummary.model_validate(response.json())
    return response.json()


def test_police_summary_never_has_outreach(client: TestClient, h: dict, summary_zone: int) -> None:
    police = summary(client, h["brigade-19"], summary_zone)
    assert "outreach" not in police
    team_a = summary(client, h["maraude-a"], summary_zone)["outreach"]
    team_b = summary(client, h["maraude-b"], summary_zone)["outreach"]
    planner = summary(client, h["urbanism"], summary_zone)
    assert team_a["count"] > 0 and team_b["count"] > 0
    assert planner["outreach"]["count"] == team_a["count"] + team_b["count"]
    assert police["incidents"] == planner["incidents"] and police["incidents"]["count"] > 0
    assert police["coverage_hours_per_week"] == 60
    assert "Jaurès" in {s["name"] for s in police["stations"]}


def test_zone_count_equals_the_hexagon_counts_over_its_cells(zsettings: Settings, client: TestClient, h: dict,
                                                             summary_zone: int) -> None:
    hexes = client.get("/hexagons", params={**MARCH, "resolution": 10, "kind": "incident"}, headers=h["urbanism"])
    assert hexes.status_code == 200
    counts = {h3.str_to_int(f["properties"]["h3"]): f["properties"]["count"] for f in hexes.json()["features"]}
    with db.connect(zsettings) as conn:
        cells = zone_cells(conn, summary_zone, 10)
    assert summary(client, h["urbanism"], summary_zone)["incidents"]["count"] == sum(counts.get(int(c), 0) for c in cells)


def test_summary_reads_are_audited(zsettings: Settings, client: TestClient, h: dict, summary_zone: int) -> None:
    summary(client, h["maraude-a"], summary_zone)
    with db.connect(zsettings) as conn:
        row = conn.execute("SELECT role, team, params FROM audit_log WHERE action = 'zones.summary' "
                           "ORDER BY id DESC LIMIT 1").fetchone()
    assert row[:2] == ("outreach", "maraude-a") and row[2]["zone"] == summary_zone


# --- the gap report, on a case built so its answer is known ----------------------------------


@pytest.fixture(scope="module")
def gap_case(zsettings: Settings, client: TestClient, h: dict, summary_zone: int) -> dict:
    """Two incident spikes in June 2012: at Crimée (19e), in no zone, and near Stalingrad, inside
    the 'summary' zone (police weekdays 08:00-20:00: 108 uncovered hours). The 'east' zone of
    maraude-b overlaps the summary zone's eastern strip (far from the spike) with outreach on
    Tuesday 19:00-21:00: one hour of clash; it holds the Bolivar and Laumière stations."""
    with db.connect(zsettings, autocommit=True) as conn:
        conn.execute("UPDATE zones SET archived_at = now() WHERE archived_at IS NULL AND id <> %s", (summary_zone,))
    inside, crimee = (2.3680, 48.8830), (2.3770, 48.8909)
    ingest_frame(zsettings, records_at([inside] * 25 + [crimee] * 25, kind="incident", category="dealing",
                                       day="2012-06-20", source="api-zones-spikes", snap=True))
    hot = {name: sorted(h3.grid_disk(h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 11), 10), 1))
           for name, (lon, lat) in {"inside": inside, "crimee": crimee}.items()}
    overlap = create(client, h["maraude-b"], feature(shapely.box(2.3725, 48.876, 2.380, 48.8855), "east",
                                                     schedule=[{"day": 1, "start": "19:00", "end": "21:00",
                                                                "team": "maraude-b"}]))
    return {"hot": hot, "overlap": overlap["id"]}


def test_gap_report_through_http(client: TestClient, h: dict, gap_case: dict, summary_zone: int) -> None:
    response = client.get("/zones/gaps", params=JUNE, headers=h["urbanism"])
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["hotspots"] == {"significant": 14, "uncovered": 7}
    assert {f["properties"]["h3"] for f in report["uncovered_hotspots"]["features"]} == set(gap_case["hot"]["crimee"])
    [zone] = report["hotspot_zones"]
    assert zone["id"] == summary_zone and zone["uncovered_hours"] == 168 - 60
    assert sorted(zone["hotspot_cells"]) == gap_case["hot"]["inside"]
    [conflict] = report["conflicts"]
    assert conflict["zones"] == [summary_zone, gap_case["overlap"]]
    assert conflict["clashes"] == [{"police": {"zone": summary_zone, "zone_name": "summary", "team": "brigade-19"},
                                    "outreach": {"zone": gap_case["overlap"], "zone_name": "east",
                                                 "team": "maraude-b"},
                                    "hours": 1.0, "times": [{"day": 1, "start": "19:00", "end": "20:00"}]}]
    uncovered = {f["properties"]["name"] for f in report["uncovered_stations"]["features"]}
    # maraude-a and maraude-b are partners of the summary zone but never scheduled there: its
    # stations are uncovered; the east zone schedules maraude-b and holds Bolivar and Laumière.
    assert {"Jaurès", "Stalingrad", "Crimée"} <= uncovered and not {"Bolivar", "Laumière"} & uncovered
    assert report["stations"]["uncovered"] == report["stations"]["metro_stations"] - 2

    police_other = client.get("/zones/gaps", params=JUNE, headers=h["brigade-18"]).json()
    assert police_other["hotspot_zones"] == [] and police_other["conflicts"] == []
    assert police_other["hotspots"] == report["hotspots"]
    outreach_b = client.get("/zones/gaps", params=JUNE, headers=h["maraude-b"]).json()  # partner of both zones
    assert outreach_b["conflicts"] == report["conflicts"]
    assert client.get("/zones/gaps", params=JUNE).status_code == 401
