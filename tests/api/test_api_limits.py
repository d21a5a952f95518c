"""Every limit of the API issue: bad parameters name themselves, uploads have bounds, no SQL from text."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.main import create_app

SAMPLE = {"start": "2020-03-01", "end": "2020-04-01"}
SQL_TEXT = "x'; DROP TABLE events;--"

# (query on top of SAMPLE, status, parameter named, words of the reason); FastAPI's own checks of types
# and bounds answer 400 like the others
BAD = [
    ({"category": "no_such_category"}, 400, "category", "unknown category"),
    ({"kind": "incident", "category": "contact"}, 400, "category", "unknown category"),
    ({"kind": "gossip"}, 400, "kind", "unknown kind"),
    ({"resolution": 3}, 400, "resolution", "greater than or equal to 7"),
    ({"resolution": 6}, 400, "resolution", "greater than or equal to 7"),
    ({"resolution": 12}, 400, "resolution", "less than or equal to 11"),
    ({"resolution": "nine"}, 400, "resolution", "integer"),
    ({"start": "2020-04-01", "end": "2020-03-01"}, 400, "end", "must come after"),
    ({"start": "2020-03-01", "end": "2020-03-01"}, 400, "end", "must come after"),
    ({"start": "2020-13-01"}, 400, "start", "date"),
    ({"end": "yesterday"}, 400, "end", "date"),
    ({"bbox": "1,2,3"}, 400, "bbox", "4 finite numbers"),
    ({"bbox": "1,2,3,4,5"}, 400, "bbox", "4 finite numbers"),
    ({"bbox": "a,b,c,d"}, 400, "bbox", "4 finite numbers"),
    ({"bbox": "nan,48.85,2.40,48.90"}, 400, "bbox", "4 finite numbers"),
    ({"bbox": "inf,48.85,2.40,48.90"}, 400, "bbox", "4 finite numbers"),
    ({"bbox": "2.35,-inf,2.40,48.90"}, 400, "bbox", "4 finite numbers"),
    ({"bbox": "1e999,48.85,2.40,48.90"}, 400, "bbox", "4 finite numbers"),
    ({"bbox": ""}, 400, "bbox", "4 finite numbers"),
    ({"bbox": "2.40,48.85,2.35,48.90"}, 400, "bbox", "minlon < maxlon"),
    ({"bbox": "2.0,48.5,2.7,49.2"}, 400, "bbox", "larger than the study area"),
    ({"bbox": "3.0,45.0,3.1,45.1"}, 400, "bbox", "outside the study area"),
    ({"bbox": "2.265,48.81,2.27,48.815"}, 400, "area", "outside the study area"),  # in the box, not the area
    ({"bbox": "2.35,48.85,2.40,48.90", "area": "arrondissement:75119"}, 400, "bbox", "not both"),
    ({"area": "arrondissement:abc"}, 400, "area", "expected arrondissement:CODE"),
    ({"area": "arrondissement:75001"}, 400, "area", "no arrondissement with INSEE code 75001"),
    ({"area": "quartier:1"}, 400, "area", "no quartier"),
    ({"limit": 20_001}, 400, "limit", "over the maximum of 20000"),
    ({"limit": 10**12}, 400, "limit", "over the maximum"),
    ({"limit": 0}, 400, "limit", "greater than or equal to 1"),
    ({"offset": -1}, 400, "offset", "greater than or equal to 0"),
    ({"category": SQL_TEXT}, 400, "category", "unknown category"),
    ({"kind": SQL_TEXT}, 400, "kind", "unknown kind"),
    ({"area": "arrondissement:75119' OR '1'='1"}, 400, "area", "expected arrondissement:CODE"),
    ({"bbox": "2.35,48.85,2.40,48.90); DROP TABLE events;--"}, 400, "bbox", "4 finite numbers"),
]


def _id(case: tuple) -> str:
    return "&".join(f"{k}={v}" for k, v in case[0].items())[:60]


@pytest.mark.parametrize(("query", "status", "parameter", "reason"), BAD, ids=[_id(c) for c in BAD])
def test_bad_hexagon_parameters_name_the_parameter_and_the_reason(client, headers, query, status, parameter,
                                                                  reason) -> None:
    answer = client.get("/hexagons", params={**SAMPLE, **query}, headers=headers["planner"])
    assert answer.status_code == status, answer.text[:300]
    error = answer.json()["error"]
    assert error["parameter"] == parameter
    assert reason in error["message"]


OTHER_SLICES = [
    (path, query, parameter)
    for path, takes in (("/exports/hexagons.csv", {"resolution", "category", "end", "bbox"}),
                        ("/hotspots", {"resolution", "category", "end"}),  # the whole grid: no bbox
                        ("/hotspots/emerging", {"resolution", "category", "end"}),
                        ("/coverage", {"resolution", "end"}))  # its categories are fixed
    for query, parameter in (({"resolution": 12}, "resolution"), ({"category": SQL_TEXT}, "category"),
                             ({"start": "2020-04-01", "end": "2020-03-01"}, "end"), ({"bbox": "nan,1,2,3"}, "bbox"))
    if parameter in takes
]


@pytest.mark.parametrize(("path", "query", "parameter"), OTHER_SLICES, ids=[f"{p}-{n}" for p, _, n in OTHER_SLICES])
def test_the_other_slices_check_the_same_way(client, headers, path, query, parameter) -> None:
    answer = client.get(path, params={**SAMPLE, **query}, headers=headers["planner"])
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error"]["parameter"] == parameter


def test_sql_text_in_filters_reaches_no_sql(client, headers, sql) -> None:
    before = sql("SELECT count(*) FROM events")[0][0]
    for query in ({"category": SQL_TEXT}, {"category": ["drug_litter", SQL_TEXT]}, {"kind": SQL_TEXT},
                  {"area": f"quartier:{SQL_TEXT}"}, {"area": "arrondissement:1;DELETE FROM events"}):
        assert client.get("/hexagons", params={**SAMPLE, **query}, headers=headers["planner"]).status_code == 400
    assert sql("SELECT to_regclass('events') IS NOT NULL")[0][0]
    assert sql("SELECT count(*) FROM events")[0][0] == before


def test_page_size_is_refused_over_the_maximum_not_clamped(client, headers, api_settings) -> None:
    most = api_settings.api_max_page
    exactly = client.get("/hexagons", params={**SAMPLE, "limit": most}, headers=headers["planner"])
    assert exactly.status_code == 200 and exactly.json()["metadata"]["limit"] == most
    over = client.get("/hexagons", params={**SAMPLE, "limit": most + 1}, headers=headers["planner"])
    assert over.status_code == 400
    assert over.json()["error"] == {"message": f"limit {most + 1} is over the maximum of {most}", "parameter": "limit"}
    # paging works: pages add up to the whole
    whole = client.get("/hexagons", params={**SAMPLE, "resolution": 10}, headers=headers["planner"]).json()
    n = whole["metadata"]["features"]
    pages = [client.get("/hexagons", params={**SAMPLE, "resolution": 10, "limit": 50, "offset": o},
                        headers=headers["planner"]).json()["features"] for o in range(0, n, 50)]
    assert [f["properties"]["h3"] for page in pages for f in page] == [f["properties"]["h3"] for f in whole["features"]]
    assert all(len(page) <= 50 for page in pages)


# --- POST /events --------------------------------------------------------------------------------

GOOD = {"kind": "incident", "category": "drug_litter", "occurred_at": "2009-02-03T10:00:00+01:00",
        "lon": 2.3795, "lat": 48.8832, "source": "api-limits"}


@pytest.fixture(scope="module")
def small_upload_client(api_settings) -> Iterator[TestClient]:
    """An app that accepts uploads of at most 1,000 bytes."""
    with TestClient(create_app(api_settings.model_copy(update={"api_max_upload_bytes": 1000}))) as client:
        yield client


def test_upload_over_the_limit_is_413(small_upload_client, headers, sql) -> None:
    before = sql("SELECT count(*) FROM ingest_batches")[0][0]
    rows = "".join(f"incident,drug_litter,2009-02-0{1 + i % 9}T10:00:00+01:00,2.3795,48.8832,api-limits,big-{i}\n"
                   for i in range(40))
    body = ("kind,category,occurred_at,lon,lat,source,external_id\n" + rows).encode()
    assert len(body) > 1000
    declared = small_upload_client.post("/events", content=body, headers={**headers["admin"], "Content-Type": "text/csv"})
    assert declared.status_code == 413, declared.text
    assert "1,000 bytes" in declared.json()["error"]["message"]
    # without a Content-Length (chunked), the stream is cut as soon as it passes the limit
    streamed = small_upload_client.post("/events", content=iter([body[:600], body[600:]]),
                                        headers={**headers["admin"], "Content-Type": "text/csv"})
    assert streamed.status_code == 413, streamed.text
    assert sql("SELECT count(*) FROM ingest_batches")[0][0] == before
    small = small_upload_client.post("/events", content=body[:300].rsplit(b"\n", 1)[0] + b"\n",
                                     headers={**headers["admin"], "Content-Type": "text/csv"})
    assert small.status_code == 200, small.text


@pytest.mark.parametrize(("body", "words"), [
    (b"a,b\n1,2\n", "missing required column"),
    (b"kind,category\nincident,drug_litter\n", "missing required column"),
    (b"\xff\xfe\x00k\x00i\x00n\x00d", "UTF-8"),
])
def test_malformed_csv_is_400_naming_the_problem(client, headers, body, words) -> None:
    answer = client.post("/events", content=body, headers={**headers["admin"], "Content-Type": "text/csv"})
    assert answer.status_code == 400, answer.text
    assert words in answer.json()["error"]["message"]


def test_csv_with_a_personal_column_is_refused_row_by_row_without_its_values(client, headers) -> None:
    body = (b"kind,category,occurred_at,lon,lat,source,external_id,phone\n"
            b"incident,drug_litter,2009-02-04T10:00:00+01:00,2.3795,48.8832,api-limits,phone-1,0612345678\n")
    answer = client.post("/events", content=body, headers={**headers["admin"], "Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"] == 1 and "phone" in answer.json()["rejected_rows"][0]["reason"]
    assert "0612345678" not in answer.text


def test_json_list_upload_reports_each_refused_record_without_its_values(client, headers, sql) -> None:
    records = [
        {**GOOD, "external_id": "json-ok"},
        {**GOOD, "external_id": "json-cat", "category": "secret_category_value"},
        {**GOOD, "external_id": "json-far", "lon": 5.123456, "lat": 43.987654},
        {**GOOD, "external_id": "json-name", "name": "Jean Dupont"},
        {**GOOD, "external_id": "json-when", "occurred_at": "le 3 mars vers midi"},
    ]
    answer = client.post("/events", json={"events": records}, headers=headers["admin"])
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert (report["received"], report["accepted"], report["rejected"]) == (5, 1, 4) or \
        (report["received"], report["accepted"] + report["duplicates_in_store"], report["rejected"]) == (5, 1, 4)
    reasons = {r["record"]: r["reason"] for r in report["rejected_rows"]}
    assert set(reasons) == {2, 3, 4, 5}
    assert "unknown category" in reasons[2] and "outside the study area" in reasons[3]
    assert "name" in reasons[4] and "occurred_at" in reasons[5]
    for value in ("secret_category_value", "5.123456", "43.987654", "Jean Dupont", "le 3 mars"):
        assert value not in answer.text
    stored = sql("SELECT rejected_by_reason::text FROM ingest_batches WHERE id = %s", (report["batch_id"],))[0][0]
    for value in ("secret_category_value", "Jean Dupont", "le 3 mars"):
        assert value not in stored
    # a bare list works too
    bare = client.post("/events", content=json.dumps([{**GOOD, "external_id": "json-bare"}]),
                       headers={**headers["admin"], "Content-Type": "application/json"})
    assert bare.status_code == 200 and bare.json()["received"] == 1


SMUGGLED = "Jean Dupont 0612345678"


@pytest.mark.parametrize(("content_type", "body"), [
    ("application/json", json.dumps({"events": [{**GOOD, "external_id": "smuggle-1", "_geometry_error": SMUGGLED},
                                                {**GOOD, "external_id": "smuggle-2", "_nom": SMUGGLED}]})),
    ("text/csv", "kind,category,occurred_at,lon,lat,source,external_id,_geometry_error,_nom\n"
                 f"incident,drug_litter,2009-02-06T10:00:00+01:00,2.3795,48.8832,api-limits,smuggle-3,{SMUGGLED},\n"
                 f"incident,drug_litter,2009-02-06T10:00:00+01:00,2.3795,48.8832,api-limits,smuggle-4,,{SMUGGLED}\n"),
    ("application/geo+json", json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": SMUGGLED, "coordinates": []},
         "properties": {k: v for k, v in GOOD.items() if k not in ("lon", "lat")} | {"external_id": "smuggle-5"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [2.3795, 48.8832]},
         "properties": {k: v for k, v in GOOD.items() if k not in ("lon", "lat")}
         | {"external_id": "smuggle-6", "_geometry_error": SMUGGLED}}]})),
], ids=["json", "csv", "geojson"])
def test_uploads_cannot_smuggle_text_into_reasons(client, headers, sql, content_type, body) -> None:
    """A sender's '_' columns never put their text into a reason or the store.

    A ``_geometry_error`` sent in the data refuses its row with a fixed reason; any other
    '_' column (beyond the rejects file's ``_record`` and ``_reason``) is refused like every
    column outside the canonical record.
    """
    answer = client.post("/events", content=body.encode(), headers={**headers["admin"], "Content-Type": content_type})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rejected"] >= 1
    assert set(answer.json()["rejected_by_reason"]) <= {
        "geometry is missing or not a Point",
        "field '_nom' is not part of the canonical record (personal data cannot be stored)",
    }
    assert "Jean Dupont" not in answer.text and "0612345678" not in answer.text
    stored = sql("SELECT rejected_by_reason::text FROM ingest_batches WHERE id = %s", (answer.json()["batch_id"],))
    assert "Jean Dupont" not in stored[0][0]


@pytest.mark.parametrize(("body", "parameter"), [(b"{not json", "body"), (b'{"events": 3}', "body"),
                                                 (b'{"events": [1, 2]}', "body"), (b'"text"', "body"),
                                                 (b"", "body")])
def test_malformed_json_upload_is_400(client, headers, body, parameter) -> None:
    answer = client.post("/events", content=body, headers={**headers["admin"], "Content-Type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["parameter"] == parameter


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", "multipart/form-data; boundary=x", ""])
def test_unsupported_content_type_is_415(client, headers, content_type) -> None:
    answer = client.post("/events", content=b"<events/>", headers={**headers["admin"], "Content-Type": content_type})
    assert answer.status_code == 415, answer.text
    assert answer.json()["error"]["parameter"] == "content-type"


def test_format_parameter_overrides_the_content_type(client, headers) -> None:
    body = (b"kind,category,occurred_at,lon,lat,source,external_id\n"
            b"incident,drug_litter,2009-02-05T10:00:00+01:00,2.3795,48.8832,api-limits,override-1\n")
    answer = client.post("/events", params={"format": "csv"}, content=body,
                         headers={**headers["admin"], "Content-Type": "application/octet-stream"})
    assert answer.status_code == 200 and answer.json()["received"] == 1, answer.text
    bad = client.post("/events", params={"format": "xls"}, content=body, headers=headers["admin"])
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "format"


# --- windows at the edges of the calendar, analyses too large to compute --------------------------

@pytest.mark.parametrize("path", ["/hexagons", "/exports/hexagons.csv", "/hotspots", "/coverage"])
@pytest.mark.parametrize("window", [{"start": "9999-12-15", "end": "9999-12-31"},
                                    {"start": "0001-01-01", "end": "0001-01-02"},
                                    {"start": "0001-01-01", "end": "9999-12-31"}])
def test_any_calendar_window_is_answered(client, headers, path, window) -> None:
    answer = client.get(path, params=window, headers=headers["planner"])
    assert answer.status_code == 200, answer.text[:300]


@pytest.mark.parametrize(("query", "words"), [
    ({"start": "0001-01-01", "end": "9999-12-31"}, "at most 520 steps"),
    ({"start": "2000-01-01", "end": "2012-01-01", "step": "week", "resolution": 7}, "at most 520 steps"),
    ({"start": "2019-01-01", "end": "2022-01-01", "step": "week", "resolution": 11}, "too large to compute"),
    ({"start": "2019-01-01", "end": "2022-01-01", "resolution": 11, "k": 5}, "too large to compute"),
])
def test_emerging_hotspots_too_large_to_compute_are_refused(client, headers, query, words) -> None:
    answer = client.get("/hotspots/emerging", params=query, headers=headers["planner"])
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error"]["parameter"] == "end" and words in answer.json()["error"]["message"]


def test_emerging_hotspots_of_three_years_of_months_at_the_finest_resolution_are_served(client, headers) -> None:
    answer = client.get("/hotspots/emerging", params={"start": "2019-01-01", "end": "2022-01-01", "resolution": 11},
                        headers=headers["planner"])
    assert answer.status_code == 200 and len(answer.json()["metadata"]["steps"]) == 36


def test_an_upload_is_recorded_under_a_name_that_says_what_came_in(client, headers, sql) -> None:
    body = (b"kind,category,occurred_at,lon,lat,source,external_id\n"
            b"incident,drug_litter,2009-02-05T10:00:00+01:00,2.3795,48.8832,api-limits,named-1\n")
    named = client.post("/events?filename=maraude-nord_2009-02.csv", content=body,
                        headers={**headers["admin"], "Content-Type": "text/csv"})
    assert named.status_code == 200, named.text
    unnamed = client.post("/events", json={"events": [{**GOOD, "external_id": "named-2"}]}, headers=headers["admin"])
    assert unnamed.status_code == 200, unnamed.text
    names = dict(sql("SELECT id, file_name FROM ingest_batches WHERE id IN (%s, %s)",
                     (named.json()["batch_id"], unnamed.json()["batch_id"])))
    team = sql("SELECT team FROM api_tokens WHERE role = 'admin' ORDER BY id LIMIT 1")[0][0]
    assert names[named.json()["batch_id"]] == f"api:{team}:maraude-nord_2009-02.csv"
    assert re.fullmatch(rf"api:{re.escape(team)}:\d{{8}}T\d{{6}}Z\.json", names[unnamed.json()["batch_id"]])
    refused = client.post("/events?filename=../etc/passwd", content=body,
                          headers={**headers["admin"], "Content-Type": "text/csv"})
    assert refused.status_code == 400 and "filename" in refused.text
