"""The role matrix of the API issue, cell by cell, then what each role's answers hold.

Roles: admin (steward), planner, police, outreach (team-a's token), public (no token).
"""

from __future__ import annotations

import pytest

from geo_monitor import hexagons

SAMPLE = {"start": "2020-03-01", "end": "2020-04-01"}
TEAMS = {"start": "2008-03-01", "end": "2008-04-01"}
HALF_YEAR = {"start": "2020-01-01", "end": "2020-07-01"}
IMPACT = {"before_start": "2020-01-01", "before_end": "2020-03-01",
          "after_start": "2020-04-01", "after_end": "2020-06-01"}
ROLES = ("admin", "planner", "police", "outreach", "public")
ONE_EVENT = {"events": [{"kind": "incident", "category": "drug_litter", "occurred_at": "2009-01-15T10:00:00+01:00",
                         "lon": 2.3795, "lat": 48.8832, "source": "api-matrix", "external_id": "matrix-1"}]}


def _release_importable() -> bool:
    try:
        import geo_monitor.privacy.release  # noqa: F401
    except ImportError:
        return False
    return True


# The public pages serve the release module's snapshots; while it cannot be imported the API says 503.
PUBLIC_OK = 200 if _release_importable() else 503
PUBLIC_MISSING = 404 if _release_importable() else 503

#      method, path, query/body, {role: status}
MATRIX = [
    ("GET", "/health", {}, dict.fromkeys(ROLES, 200)),
    ("GET", "/ready", {}, dict.fromkeys(ROLES, 200)),
    ("GET", "/hexagons", SAMPLE, {"admin": 200, "planner": 200, "police": 200, "outreach": 200, "public": 401}),
    ("GET", "/hexagons", {**SAMPLE, "kind": "incident"},
     {"admin": 200, "planner": 200, "police": 200, "outreach": 200, "public": 401}),
    ("GET", "/hexagons", {**SAMPLE, "kind": "works"},
     {"admin": 200, "planner": 200, "police": 200, "outreach": 200, "public": 401}),
    ("GET", "/hexagons", {**SAMPLE, "kind": "outreach"},
     {"admin": 200, "planner": 200, "police": 403, "outreach": 200, "public": 401}),
    ("GET", "/hexagons", {**SAMPLE, "kind": "outreach", "resolution": 8},
     {"admin": 200, "planner": 200, "police": 200, "outreach": 200, "public": 401}),
    ("GET", "/hexagons", {**SAMPLE, "kind": "outreach", "resolution": 11},
     {"admin": 200, "planner": 200, "police": 403, "outreach": 200, "public": 401}),
    ("GET", "/hexagons", {**SAMPLE, "kind": ["incident", "outreach"]},
     {"admin": 200, "planner": 200, "police": 400, "outreach": 400, "public": 401}),
    *[("GET", f"/exports/hexagons.{fmt}", SAMPLE,
       {"admin": 200, "planner": 200, "police": 403, "outreach": 403, "public": 401})
      for fmt in ("csv", "geojson", "parquet", "gpkg")],
    ("GET", "/hotspots", SAMPLE, {"admin": 200, "planner": 200, "police": 200, "outreach": 403, "public": 401}),
    ("GET", "/hotspots", {**SAMPLE, "kind": "outreach"},
     {"admin": 200, "planner": 200, "police": 403, "outreach": 403, "public": 401}),
    ("GET", "/hotspots/emerging", HALF_YEAR,
     {"admin": 200, "planner": 200, "police": 200, "outreach": 403, "public": 401}),
    ("GET", "/hotspots/emerging", {**HALF_YEAR, "kind": "outreach"},
     {"admin": 200, "planner": 200, "police": 403, "outreach": 403, "public": 401}),
    ("GET", "/coverage", SAMPLE, {"admin": 200, "planner": 200, "police": 403, "outreach": 403, "public": 401}),
    ("GET", "/impact/{site}", IMPACT, {"admin": 200, "planner": 200, "police": 200, "outreach": 403, "public": 401}),
    ("GET", "/impact/{site}", {**IMPACT, "kind": "outreach"},
     {"admin": 200, "planner": 200, "police": 403, "outreach": 403, "public": 401}),
    *[("GET", f"/reference/{layer}", {}, dict.fromkeys(ROLES, 200))
      for layer in ("arrondissements", "quartiers", "stations", "lines", "works")],
    ("GET", "/public/releases", {}, dict.fromkeys(ROLES, PUBLIC_OK)),
    ("GET", "/public/releases/2020-03", {}, dict.fromkeys(ROLES, PUBLIC_MISSING)),
    ("GET", "/public/rolling/2020-03", {}, dict.fromkeys(ROLES, PUBLIC_MISSING)),
    ("POST", "/events", ONE_EVENT, {"admin": 200, "planner": 403, "police": 403, "outreach": 403, "public": 401}),
    ("GET", "/tokens", {}, {"admin": 200, "planner": 403, "police": 403, "outreach": 403, "public": 401}),
    ("POST", "/tokens", {"role": "planner", "team": "matrix"},
     {"admin": 201, "planner": 403, "police": 403, "outreach": 403, "public": 401}),
    ("DELETE", "/tokens/{token_id}", {}, {"admin": 204, "planner": 403, "police": 403, "outreach": 403, "public": 401}),
    ("GET", "/audit", {}, {"admin": 200, "planner": 403, "police": 403, "outreach": 403, "public": 401}),
]
CELLS = [(method, path, query, role, statuses[role]) for method, path, query, statuses in MATRIX for role in ROLES]


def _cell_id(value: object) -> str:
    if isinstance(value, dict):
        keys = [f"{k}={v}" for k, v in value.items() if k in ("kind", "resolution")]
        return ",".join(keys) or "-"
    return str(value)


@pytest.mark.parametrize(("method", "path", "query", "role", "expected"), CELLS, ids=_cell_id)
def test_role_matrix(client, headers, works_site, method: str, path: str, query: dict, role: str,
                     expected: int) -> None:
    path = path.replace("{site}", works_site)
    if "{token_id}" in path:  # a throwaway token, so revoking it costs nothing
        made = client.post("/tokens", json={"role": "planner", "team": "throwaway"}, headers=headers["admin"])
        path = path.replace("{token_id}", str(made.json()["id"]))
    if method == "GET":
        response = client.get(path, params=query, headers=headers[role])
    else:
        response = client.request(method, path, json=query or None, headers=headers[role])
    assert response.status_code == expected, response.text[:500]
    if expected >= 400:
        error = response.json()["error"]
        assert error["message"]
        if expected == 401:
            assert response.headers["WWW-Authenticate"] == "Bearer"


def _features(response) -> dict[str, int | None]:
    assert response.status_code == 200, response.text[:500]
    return {f["properties"]["h3"]: f["properties"]["count"] for f in response.json()["features"]}


def _sql_total(sql, window: dict, kinds: tuple[str, ...], sources: tuple[str, ...] | None = None) -> int:
    query = ("SELECT count(*) FROM events e JOIN categories c ON c.id = e.category_id JOIN kinds k ON k.id = c.kind_id "
             "JOIN sources s ON s.id = e.source_id WHERE k.name = ANY(%(kinds)s) "
             "AND e.occurred_at >= (%(start)s::date)::timestamp AT TIME ZONE 'Europe/Paris' "
             "AND e.occurred_at < (%(end)s::date)::timestamp AT TIME ZONE 'Europe/Paris' "
             "AND (%(sources)s::text[] IS NULL OR s.name = ANY(%(sources)s))")
    return sql(query, {**window, "kinds": list(kinds), "sources": list(sources) if sources else None})[0][0]


def test_police_outreach_is_coarse_and_suppressed_under_k(client, headers, api_data, api_settings) -> None:
    k = api_settings.release_k
    fine = client.get("/hexagons", params={**TEAMS, "kind": "outreach", "resolution": 9}, headers=headers["police"])
    assert fine.status_code == 403 and fine.json()["error"]["parameter"] == "resolution"

    answer = client.get("/hexagons", params={**TEAMS, "kind": "outreach", "resolution": 8}, headers=headers["police"])
    counts = _features(answer)
    big, small_a, small_b = (hexagons.cell_to_str(c) for c in (api_data.big, api_data.small_a, api_data.small_b))
    assert counts[big] in (17, None)  # team-a 15 + team-b 2: shown, or hidden to protect the small ones
    assert counts[small_a] is None and counts[small_b] is None  # 3 and 4 events, under k
    assert all(c is None or c >= k for c in counts.values())
    for feature in answer.json()["features"]:
        if feature["properties"]["count"] is None:
            assert feature["properties"]["share"] is None and feature["properties"]["rate_per_1000"] is None
    meta = answer.json()["metadata"]
    assert meta["suppressed_under"] == k and meta["total"] == sum(c for c in counts.values() if c)
    shown = [v for v in (*meta["arrondissements"].values(), meta["partition_total"]) if v is not None]
    assert all(v == 0 or v >= k for v in shown)  # no total under k either (secondary suppression, privacy §12)

    planner = _features(client.get("/hexagons", params={**TEAMS, "kind": "outreach", "resolution": 8},
                                   headers=headers["planner"]))
    assert (planner[big], planner[small_a], planner[small_b]) == (17, 3, 4)


def test_police_default_slice_leaves_outreach_out(client, headers, sql) -> None:
    police = client.get("/hexagons", params=SAMPLE, headers=headers["police"]).json()
    planner = client.get("/hexagons", params=SAMPLE, headers=headers["planner"]).json()
    assert police["metadata"]["kinds"] == ["incident", "works"]
    assert police["metadata"]["total"] == _sql_total(sql, SAMPLE, ("incident", "works"))
    assert planner["metadata"]["total"] == _sql_total(sql, SAMPLE, ("incident", "outreach", "works"))
    assert _sql_total(sql, SAMPLE, ("outreach",)) > 0, "the sample has outreach in March 2020"
    assert police["metadata"]["total"] < planner["metadata"]["total"]
    # an outreach category without kind=outreach is not a way around the rule
    sneaky = client.get("/hexagons", params={**SAMPLE, "category": "contact"}, headers=headers["police"])
    assert sneaky.status_code == 400 and sneaky.json()["error"]["parameter"] == "category"


@pytest.mark.parametrize(("role", "team", "sources"), [("outreach", "team-a", ("outreach-team-a",)),
                                                       ("outreach-b", "team-b", ("outreach-team-b",))])
def test_outreach_team_sees_only_its_own_outreach(client, headers, sql, api_data, role, team, sources) -> None:
    answer = client.get("/hexagons", params={**TEAMS, "kind": "outreach", "resolution": 8}, headers=headers[role])
    counts = _features(answer)
    assert answer.json()["metadata"]["team"] == team
    expected = {hexagons.cell_to_str(c): n for c, n in api_data.counts[team].items()}
    assert counts == expected
    total = answer.json()["metadata"]["total"]
    assert total == _sql_total(sql, TEAMS, ("outreach",), sources) == sum(expected.values())
    assert total < _sql_total(sql, TEAMS, ("outreach",))
    # the sample's outreach (no team) is not theirs either
    sample = client.get("/hexagons", params={**SAMPLE, "kind": "outreach"}, headers=headers[role]).json()
    assert sample["metadata"]["total"] == 0 and sample["features"] == []


def test_outreach_sees_all_incidents_and_works(client, headers, sql) -> None:
    default = client.get("/hexagons", params=SAMPLE, headers=headers["outreach"]).json()
    assert default["metadata"]["kinds"] == ["incident"]
    assert default["metadata"]["total"] == _sql_total(sql, SAMPLE, ("incident",))
    works = client.get("/hexagons", params={**SAMPLE, "kind": "works"}, headers=headers["outreach"]).json()
    assert works["metadata"]["total"] == _sql_total(sql, SAMPLE, ("works",))


def test_planner_sees_every_kind_at_every_resolution(client, headers, sql) -> None:
    for resolution in (7, 8, 9, 10, 11):
        for kind in ("incident", "outreach", "works"):
            answer = client.get("/hexagons", params={**SAMPLE, "kind": kind, "resolution": resolution},
                                headers=headers["planner"])
            assert answer.status_code == 200
            assert answer.json()["metadata"]["total"] == _sql_total(sql, SAMPLE, (kind,)), (kind, resolution)


@pytest.mark.parametrize("path", ["/hexagons", "/exports/hexagons.csv", "/hotspots", "/coverage"])
def test_public_never_gets_data_even_with_a_bad_or_odd_header(client, path) -> None:
    for header in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"},
                   {"Authorization": "Bearer gm_not-a-token"}, {"Authorization": "Bearer " + "x" * 500}):
        answer = client.get(path, params=SAMPLE, headers=header)
        assert answer.status_code == 401, (header, answer.text[:200])
        assert "features" not in answer.text
