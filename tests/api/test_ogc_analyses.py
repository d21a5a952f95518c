"""OGC collections of the analyses (hotspots, coverage), queryables and feature schemas, through HTTP and GDAL.

The analyses answer through /ogc exactly as through /hotspots and /coverage, and a role the
routes refuse is refused the collection too (the attack: reaching an analysis through the OGC
surface). Every collection declares its properties' types; GDAL reads them from the
``describedBy`` schema, so a field whose first page is all null keeps its numeric type.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import httpx
import pytest
import shapely
from test_ogc import MONTH, gdal, rels

from geo_monitor import db
from geo_monitor.privacy.release import create_release
from geo_monitor.privacy.releases import list_releases
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings
from geo_monitor.zones.edit import create_zone

SAMPLE = {"start": "2020-03-01", "end": "2020-04-01", "resolution": "8"}
JSON_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict,
              "array": list}


@pytest.fixture(scope="module")
def released(api_settings: Settings, api_data) -> str:
    """The month test_ogc publishes (published here when that module did not run first) and a zone, committed."""
    with db.connect(api_settings) as conn:
        if MONTH not in {r["month"] for r in list_releases(conn)}:
            create_release(conn, MONTH, settings=api_settings)
        centre = shapely.from_wkb(conn.execute(
            "SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM quartiers WHERE code = 7511803").fetchone()[0])
        create_zone(conn, Principal(role="planner", team="urbanism"), name="ogc schema",
                    geometry=centre.buffer(0.002), partner_teams=["team-a"])
        conn.commit()
    return MONTH


def ids(client, role: str, headers) -> set[str]:
    """Return the ids of the collections a role sees."""
    answer = client.get("/ogc/collections", headers=headers[role])
    assert answer.status_code == 200, answer.text
    return {c["id"] for c in answer.json()["collections"]}


def test_the_analyses_are_listed_for_the_roles_the_policy_allows(client, headers) -> None:
    assert {"hotspots", "coverage"} <= ids(client, "planner", headers)
    assert {"hotspots", "coverage"} <= ids(client, "admin", headers)
    assert "hotspots" in ids(client, "police", headers) and "coverage" not in ids(client, "police", headers)
    assert not {"hotspots", "coverage"} & ids(client, "outreach", headers)
    assert not {"hotspots", "coverage"} & ids(client, "public", headers)


def test_hotspots_collection_answers_as_the_hotspots_route(client, headers) -> None:
    for role in ("planner", "police"):
        route = client.get("/hotspots", params=SAMPLE, headers=headers[role]).json()
        ogc = client.get("/ogc/collections/hotspots/items", params={**SAMPLE, "limit": 5000},
                         headers=headers[role]).json()
        assert ogc["numberMatched"] == len(route["features"]) > 0, role
        want = {f["properties"]["h3"]: (f["properties"]["count"], f["properties"]["gi_bin"], f["properties"]["z"])
                for f in route["features"]}
        got = {f["id"]: (f["properties"]["count"], f["properties"]["gi_bin"], f["properties"]["z"])
               for f in ogc["features"]}
        assert got == want, role
        assert ogc["metadata"]["kinds"] == route["metadata"]["kinds"]
    k2 = client.get("/hotspots", params={**SAMPLE, "k": 2}, headers=headers["planner"]).json()
    ogc2 = client.get("/ogc/collections/hotspots/items", params={**SAMPLE, "k": 2, "limit": 5000},
                      headers=headers["planner"]).json()
    assert {f["id"]: f["properties"]["gi_bin"] for f in ogc2["features"]} == \
        {f["properties"]["h3"]: f["properties"]["gi_bin"] for f in k2["features"]}


def test_coverage_collection_answers_as_the_coverage_route(client, headers) -> None:
    route = client.get("/coverage", params=SAMPLE, headers=headers["planner"]).json()
    ogc = client.get("/ogc/collections/coverage/items", params={**SAMPLE, "limit": 5000},
                     headers=headers["planner"]).json()
    assert ogc["numberMatched"] == len(route["features"]) > 0
    assert {f["id"]: (f["properties"]["status"], f["properties"]["ratio"]) for f in ogc["features"]} == \
        {f["properties"]["h3"]: (f["properties"]["status"], f["properties"]["ratio"]) for f in route["features"]}


REFUSED = [  # (role, route, its parameters, the collection): the route refuses them
    ("outreach", "/hotspots", SAMPLE, "hotspots"),
    ("police", "/coverage", SAMPLE, "coverage"),
    ("outreach", "/coverage", SAMPLE, "coverage"),
    ("police", "/hotspots", {**SAMPLE, "kind": "outreach"}, "hotspots"),
    ("public", "/hotspots", SAMPLE, "hotspots"),
    ("public", "/coverage", SAMPLE, "coverage"),
]


@pytest.mark.parametrize(("role", "route", "params", "collection"), REFUSED)
def test_a_role_refused_the_route_is_refused_the_collection(client, headers, role, route, params,
                                                            collection) -> None:
    status = client.get(route, params=params, headers=headers[role]).status_code
    assert status in (401, 403)
    answer = client.get(f"/ogc/collections/{collection}/items", params=params, headers=headers[role])
    assert answer.status_code == status, answer.text
    assert "features" not in answer.json()
    if params.get("kind") is None:  # the whole collection is refused, not only this question
        for path in ("", "/queryables", "/schema", "/items/8a1fb46622dffff"):
            assert client.get(f"/ogc/collections/{collection}{path}", params=params,
                              headers=headers[role]).status_code == status, path


def test_analysis_parameters_are_checked_by_name(client, headers) -> None:
    for params, named in (({"k": "9"}, "k"), ({"resolution": "x"}, "resolution"), ({"start": "2020-03-01"}, "end")):
        answer = client.get("/ogc/collections/hotspots/items", params=params, headers=headers["planner"])
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"]["parameter"] == named


def _matches(value: object, declared: dict) -> bool:
    if value is None:
        return True  # suppressed or undefined, whatever the type
    expected = JSON_TYPES[declared["type"]]
    if declared["type"] in ("integer", "number") and isinstance(value, bool):
        return False
    if declared.get("format") == "date":
        return isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value) is not None
    if declared.get("format") == "date-time":
        return isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value) is not None
    return isinstance(value, expected)


def test_every_collection_has_queryables_and_a_schema_its_features_follow(client, headers, released) -> None:
    listed = client.get("/ogc/collections", headers=headers["admin"]).json()["collections"]
    assert {"hexagons", "zones", "hotspots", "coverage", "release-cells", "works"} <= {c["id"] for c in listed}
    for collection in listed:
        links = rels(collection)
        schema_link = links["describedBy"]
        assert schema_link["type"] == "application/schema+json"
        queryables_link = links["http://www.opengis.net/def/rel/ogc/1.0/queryables"]
        queryables = client.get(queryables_link["href"], params=SAMPLE, headers=headers["admin"])
        assert queryables.status_code == 200 and queryables.headers["content-type"] == "application/schema+json"
        document = queryables.json()
        assert document["type"] == "object" and document["properties"]["geometry"]["x-ogc-role"] == \
            "primary-geometry"
        fields = {k: v for k, v in document["properties"].items() if k != "geometry"}
        feature = client.get(schema_link["href"], params=SAMPLE, headers=headers["admin"]).json()
        assert feature["properties"]["properties"]["properties"] == fields
        page = client.get(f"/ogc/collections/{collection['id']}/items", params={**SAMPLE, "limit": 2000},
                          headers=headers["admin"]).json()
        assert page["features"], collection["id"]
        for f in page["features"]:
            assert set(f["properties"]) == set(fields), collection["id"]
            wrong = {k: v for k, v in f["properties"].items() if not _matches(v, fields[k])}
            assert wrong == {}, (collection["id"], wrong)
    assert "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables" in \
        client.get("/ogc/conformance").json()["conformsTo"]


# --- GDAL's OAPIF driver against a real server ------------------------------------------------


def _field_types(summary: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+): (\w+)", summary.split("Geometry Column")[-1], flags=re.MULTILINE))


def test_gdal_opens_a_planners_hotspots_as_the_route_counts_them(start_server, tokens, headers) -> None:
    base = start_server()
    query = {**SAMPLE, "kind": "incident"}
    summary = gdal(["ogrinfo", "-ro", "-so", f"OAPIF:{base}/ogc?{urlencode(query)}", "hotspots"],
                   token=tokens["planner"])
    route = httpx.get(f"{base}/hotspots", params=query, headers=headers["planner"], timeout=120).json()
    assert f"Feature Count: {len(route['features'])}" in summary and len(route["features"]) > 0
    types = _field_types(summary)
    assert (types["count"], types["z"], types["p"], types["gi_bin"], types["label"]) == \
        ("Integer", "Real", "Real", "Integer", "String")
    assert "hotspots" not in gdal(["ogrinfo", "-ro", "-q", f"OAPIF:{base}/ogc"], token=tokens["outreach"])


def test_gdal_types_fields_by_the_schema_when_the_first_page_is_null(start_server, tokens, released) -> None:
    base = start_server()
    quiet = {"start": "2008-03-01", "end": "2008-04-01", "resolution": "8"}  # outreach only: no ratio anywhere
    cases = [("release-cells", "value", "Integer", None, {}), ("coverage", "ratio", "Real", "planner", quiet)]
    for collection, name, typed, role, query in cases:
        token = tokens[role] if role else None
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        first = httpx.get(f"{base}/ogc/collections/{collection}/items", params={**query, "limit": 10},
                          headers=auth, timeout=120).json()["features"]
        assert first and all(f["properties"][name] is None for f in first), f"{collection}: pick a null first page"
        url = f"OAPIF:{base}/ogc" + (f"?{urlencode(query)}" if query else "")
        guessed = _field_types(gdal(["ogrinfo", "-ro", "-so", "-oo", "IGNORE_SCHEMA=YES", url, collection],
                                    token=token))
        assert guessed[name] == "String"  # what GDAL made of the first page alone
        assert _field_types(gdal(["ogrinfo", "-ro", "-so", url, collection], token=token))[name] == typed
