"""The hardened API over HTTP: body limits, proxies, the reference cache, headers, ETags, audit, /hotspots areas."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import shapely
from servers import free_port, server_env, start_server, stop_server

from geo_monitor import hexagons

SAMPLE = {"start": "2020-03-01", "end": "2020-04-01"}
GEO_MONITOR = Path(sys.executable).parent / "geo-monitor"
ZONE = {"type": "Feature", "geometry": shapely.geometry.mapping(shapely.box(2.37, 48.88, 2.375, 48.885)),
        "properties": {"name": "hardening", "partner_teams": [], "schedule": []}}


def last_audit(sql, n: int = 1) -> list[tuple]:
    return sql("SELECT token_id, role, team, action, params, status FROM audit_log ORDER BY id DESC LIMIT %s", (n,))


# --- 2. body limits before parsing -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/zones", "/tokens"])
def test_json_bodies_over_the_limit_are_413_before_parsing(client, headers, api_settings, path) -> None:
    limit = api_settings.api_max_json_bytes
    junk = b"{" + b" " * (limit + 10)  # not even JSON: a parser would say 400, the limit says 413 first
    declared = client.post(path, content=junk, headers={**headers["admin"], "Content-Type": "application/json"})
    assert declared.status_code == 413, declared.text[:200]
    assert f"{limit:,} bytes" in declared.json()["error"]["message"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        for _ in range(limit // 65536 + 2):
            yield b" " * 65536

    streamed = client.post(path, content=chunks(), headers={**headers["admin"], "Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.headers["X-Content-Type-Options"] == "nosniff"


def test_a_body_under_the_limit_is_still_parsed(client, headers) -> None:
    answer = client.post("/zones", json=ZONE, headers=headers["planner"])
    assert answer.status_code == 201, answer.text[:300]
    assert client.post("/zones", content=b"{not json", headers={**headers["planner"],
                                                                "Content-Type": "application/json"}).status_code == 400


# --- 3. X-Forwarded-For only from trusted proxies, the reference cache ------------------------------

@pytest.fixture
def serve(api_settings, api_data, tmp_path) -> Iterator:
    """``serve(**env) -> base URL``: ``geo-monitor serve`` in a subprocess, stopped after the test."""
    started = []

    def start(**env: str) -> str:
        port = free_port()
        started.append(start_server([str(GEO_MONITOR), "serve", "--port", str(port)], server_env(api_settings, **env),
                                    tmp_path, port))
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        stop_server(process)


def _answered(base: str, forwarded: list[str]) -> int:
    with httpx.Client(base_url=base, timeout=30) as http:
        return sum(http.get("/public/releases", headers={"X-Forwarded-For": f}).status_code == 200 for f in forwarded)


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(serve) -> None:
    """30 requests that each claim another client: one bucket of 10 unless the proxy is trusted."""
    forwarded = [f"203.0.113.{i}" for i in range(30)]
    direct = serve(GEO_MONITOR_PUBLIC_RATE_PER_MINUTE="40")
    assert _answered(direct, forwarded) <= 12  # a bucket of 40/4 = 10, plus what refills meanwhile
    proxied = serve(GEO_MONITOR_PUBLIC_RATE_PER_MINUTE="40", GEO_MONITOR_API_TRUSTED_PROXIES='["127.0.0.1"]')
    assert _answered(proxied, forwarded) == 30
    # behind a trusted proxy, what the client itself wrote (left of the proxy's entry) is not believed
    spoofed = [f"198.51.100.{i}, 192.0.2.1" for i in range(30)]
    assert _answered(proxied, spoofed) <= 12


def test_reference_query_strings_do_not_grow_the_cache(client) -> None:
    cache = client.app.state.cache
    assert client.get("/reference/arrondissements").status_code == 200
    size = len(cache)
    for i in range(50):
        answer = client.get("/reference/arrondissements", params={"v": i})
        assert answer.status_code == 400 and answer.json()["error"]["parameter"] == "v"
    assert len(cache) == size


# --- 4. headers ----------------------------------------------------------------------------------------

def test_security_headers_on_every_kind_of_answer(client, headers) -> None:
    answers = {"data": client.get("/hexagons", params=SAMPLE, headers=headers["planner"]),
               "refused": client.get("/hexagons", params=SAMPLE),
               "public": client.get("/reference/arrondissements"),
               "map": client.get("/maps/public"), "docs": client.get("/docs")}
    for name, answer in answers.items():
        assert answer.headers["X-Content-Type-Options"] == "nosniff", name
        assert answer.headers["Referrer-Policy"] == "no-referrer", name
        assert answer.headers["X-Frame-Options"] == "DENY", name
        assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"], name
    assert answers["data"].headers["Cache-Control"] == "no-store"
    assert answers["refused"].headers["Cache-Control"] == "no-store"
    assert answers["public"].headers["Cache-Control"] == "public, no-cache"
    assert answers["data"].headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "script-src 'self' 'unsafe-inline'" in answers["map"].headers["Content-Security-Policy"]
    for path in ("/maps/coordination", "/tokens", "/audit", "/zones"):
        role = "admin" if path in ("/tokens", "/audit") else "planner"
        assert client.get(path, headers=headers[role]).headers["Cache-Control"] == "no-store", path


# --- 5. public ETags carry no internal state -----------------------------------------------------------

def test_public_etag_is_the_body_and_does_not_move_when_data_arrive(client, headers) -> None:
    first = client.get("/reference/quartiers")
    assert first.headers["ETag"] == f'"{hashlib.sha256(first.content).hexdigest()[:32]}"'
    event = {"kind": "incident", "category": "dealing", "occurred_at": "2020-03-15T22:00:00+01:00",
             "lon": 2.3795, "lat": 48.8832, "source": "api-hardening", "external_id": "etag-public"}
    posted = client.post("/events", json={"events": [event]}, headers=headers["admin"])
    assert posted.status_code == 200 and posted.json()["accepted"] == 1, posted.text
    after = client.get("/reference/quartiers", headers={"If-None-Match": first.headers["ETag"]})
    assert after.status_code == 304 and after.headers["ETag"] == first.headers["ETag"]


# --- 6. audit --------------------------------------------------------------------------------------------

def test_refused_attempts_are_audited_with_actor_and_parameters(client, headers, sql, tokens) -> None:
    client.get("/hexagons", params=SAMPLE, headers={"Authorization": "Bearer gm_not-a-real-token"})
    (token_id, role, _, action, params, status), = last_audit(sql)
    assert (token_id, role, action, status) == (None, "public", "refused", 401)
    assert params["path"] == "/hexagons" and params["query"]["start"] == "2020-03-01"
    assert params["token_prefix"] == "gm_not-a"

    client.get("/coverage", params=SAMPLE, headers=headers["police"])
    (token_id, role, team, action, params, status), = last_audit(sql)
    assert (role, team, action, status) == ("police", "brigade-19", "refused", 403) and token_id is not None
    assert params["path"] == "/coverage" and "police" in params["reason"]

    client.get("/hexagons", params={**SAMPLE, "kind": "outreach", "resolution": 11}, headers=headers["police"])
    (_, role, _, action, params, status), = last_audit(sql)
    assert (role, action, status) == ("police", "refused", 403) and params["query"]["resolution"] == "11"

    client.get("/zones/987654", headers=headers["outreach"])
    (_, role, _, action, params, status), = last_audit(sql)
    assert (role, action, status, params["path"]) == ("outreach", "refused", 404, "/zones/987654")

    before = sql("SELECT count(*) FROM audit_log")[0][0]
    client.get("/no/such/path")  # the public on an unknown path: nothing protected, nothing written
    assert sql("SELECT count(*) FROM audit_log")[0][0] == before


def test_an_audited_value_that_reads_as_sql_is_stored_as_it_came(client, headers, sql) -> None:
    """The audit line and its COMMIT go as one message with the values bound client-side: quotes,
    backslashes, semicolons and a statement in a caller's parameters stay data."""
    evil = "x'); DELETE FROM audit_log; COMMIT; --\\ \\'' \u00e9 $$ $q$ E'\\x00'"
    before = sql("SELECT count(*) FROM audit_log")[0][0]
    client.get("/hexagons", params={**SAMPLE, "note": evil}, headers={"Authorization": "Bearer gm_not-a-real-token"})
    (_, role, _, action, params, status), = last_audit(sql)
    assert (role, action, status) == ("public", "refused", 401)
    assert params["query"]["note"] == evil[:200]
    assert sql("SELECT count(*) FROM audit_log")[0][0] == before + 1
    answer = client.get("/hexagons", params={**SAMPLE, "resolution": 7}, headers=headers["planner"])
    assert answer.status_code == 200 and last_audit(sql)[0][3] == "hexagons"


def test_reads_of_tokens_audit_log_and_zones_are_audited(client, headers, sql) -> None:
    client.get("/tokens", headers=headers["admin"])
    assert last_audit(sql)[0][3] == "tokens.list"
    client.get("/audit", params={"limit": 3}, headers=headers["admin"])
    assert last_audit(sql)[0][3:] == ("audit.read", {"limit": 3, "before_id": None}, 200)
    made = client.post("/zones", json=ZONE, headers=headers["police"]).json()
    client.get("/zones", headers=headers["police"])
    assert last_audit(sql)[0][1:4] == ("police", "brigade-19", "zones.list")
    client.get(f"/zones/{made['id']}", headers=headers["police"])
    assert last_audit(sql)[0][3:5] == ("zones.read", {"zone": made["id"], "at": None})
    client.get(f"/zones/{made['id']}/history", headers=headers["police"])
    assert last_audit(sql)[0][3:5] == ("zones.history", {"zone": made["id"]})


# --- 8. /hotspots honours area and bbox -------------------------------------------------------------------

def _by_cell(answer) -> dict[str, tuple]:
    assert answer.status_code == 200, answer.text[:300]
    return {f["properties"]["h3"]: (f["properties"]["count"], f["properties"]["z"]) for f in answer.json()["features"]}


def test_hotspots_honour_area_and_bbox_without_changing_the_statistic(client, headers, sql) -> None:
    query = {**SAMPLE, "resolution": 9}
    whole = _by_cell(client.get("/hotspots", params=query, headers=headers["planner"]))
    arrondissement = sql("SELECT ST_AsBinary(geom) FROM arrondissements WHERE code = 75118")[0][0]
    for extra, shape in (({"area": "arrondissement:75118"}, shapely.from_wkb(bytes(arrondissement))),
                         ({"bbox": "2.36,48.88,2.38,48.89"}, shapely.box(2.36, 48.88, 2.38, 48.89))):
        part = _by_cell(client.get("/hotspots", params={**query, **extra}, headers=headers["planner"]))
        cells = np.array([hexagons.str_to_cell(c) for c in whole], dtype=np.int64)
        lat, lng = hexagons.cells_to_latlng(cells)
        inside = {hexagons.cell_to_str(c) for c in cells[shapely.contains_xy(shape, lng, lat)]}
        assert set(part) == inside and 0 < len(part) < len(whole), extra
        assert all(part[c] == whole[c] or (part[c][1] is None and whole[c][1] is None) for c in part)
    both = client.get("/hotspots", params={**query, "area": "arrondissement:75118", "bbox": "2.36,48.88,2.38,48.89"},
                      headers=headers["planner"])
    assert both.status_code == 400 and both.json()["error"]["parameter"] == "bbox"
    bad = client.get("/hotspots", params={**query, "bbox": "1,2,3"}, headers=headers["planner"])
    assert bad.status_code == 400 and bad.json()["error"]["parameter"] == "bbox"
