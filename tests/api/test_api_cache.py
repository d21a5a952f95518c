"""ETags and the response cache: 304 for what the client has, a new ETag after new data."""

from __future__ import annotations

SAMPLE = {"start": "2020-03-01", "end": "2020-04-01", "resolution": 8}


def test_same_request_with_its_etag_is_304(client, headers) -> None:
    first = client.get("/hexagons", params=SAMPLE, headers=headers["planner"])
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('"') and etag.endswith('"')
    assert first.headers["Cache-Control"] == "no-store"  # not public: never kept by any cache
    again = client.get("/hexagons", params=SAMPLE, headers=headers["planner"])
    assert again.headers["ETag"] == etag and again.content == first.content
    revalidated = client.get("/hexagons", params=SAMPLE, headers={**headers["planner"], "If-None-Match": etag})
    assert revalidated.status_code == 304 and revalidated.content == b""
    assert revalidated.headers["ETag"] == etag
    stale = client.get("/hexagons", params=SAMPLE, headers={**headers["planner"], "If-None-Match": '"other"'})
    assert stale.status_code == 200 and stale.content == first.content


def test_etag_depends_on_the_query_and_on_who_asks(client, headers) -> None:
    planner = client.get("/hexagons", params=SAMPLE, headers=headers["planner"]).headers["ETag"]
    other_window = client.get("/hexagons", params={**SAMPLE, "end": "2020-05-01"},
                              headers=headers["planner"]).headers["ETag"]
    reordered = client.get("/hexagons", params={"resolution": 8, "end": "2020-04-01", "start": "2020-03-01"},
                           headers=headers["planner"]).headers["ETag"]
    police = client.get("/hexagons", params=SAMPLE, headers=headers["police"])
    team_a = client.get("/hexagons", params={**SAMPLE, "kind": "outreach"}, headers=headers["outreach"])
    team_b = client.get("/hexagons", params={**SAMPLE, "kind": "outreach"}, headers=headers["outreach-b"])
    assert other_window != planner and reordered == planner
    assert police.headers["ETag"] != planner
    assert team_a.headers["ETag"] != team_b.headers["ETag"]
    # another role's ETag is not a way into the cache of a wider view
    borrowed = client.get("/hexagons", params=SAMPLE, headers={**headers["police"], "If-None-Match": planner})
    assert borrowed.status_code == 200 and borrowed.content == police.content


def test_a_new_ingest_changes_the_etag(client, headers) -> None:
    first = client.get("/hexagons", params=SAMPLE, headers=headers["planner"])
    event = {"kind": "incident", "category": "dealing", "occurred_at": "2020-03-14T22:00:00+01:00",
             "lon": 2.3795, "lat": 48.8832, "source": "api-cache", "external_id": "etag-1"}
    posted = client.post("/events", json={"events": [event]}, headers=headers["admin"])
    assert posted.status_code == 200 and posted.json()["accepted"] == 1, posted.text
    after = client.get("/hexagons", params=SAMPLE, headers={**headers["planner"], "If-None-Match": first.headers["ETag"]})
    assert after.status_code == 200
    assert after.headers["ETag"] != first.headers["ETag"]
    assert after.json()["metadata"]["total"] == first.json()["metadata"]["total"] + 1


def test_reference_layers_revalidate_too(client) -> None:
    first = client.get("/reference/quartiers")
    assert first.status_code == 200 and len(first.json()["features"]) > 0
    again = client.get("/reference/quartiers", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
