"""OGC API Features at /ogc over real HTTP: the documents, paging, filters, roles, and GDAL's OAPIF driver.

GDAL (Debian's gdal-bin) is the client QGIS is built on: ``ogrinfo`` and ``ogr2ogr`` run
against a real uvicorn process, for the public and for a planner (token in GDAL_HTTP_HEADERS).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

from geo_monitor import db
from geo_monitor.privacy.release import create_release
from geo_monitor.settings import Settings

MONTH = "2020-06"  # released once for this module (the API tests ask nothing else of this month's release)
CORE = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core"


@pytest.fixture(scope="module")
def released(api_settings: Settings, api_data) -> str:
    """Publish one month of the sample (committed, so the app sees it)."""
    with db.connect(api_settings) as conn:
        create_release(conn, MONTH, settings=api_settings)
        conn.commit()
    return MONTH


def rels(document: dict) -> dict[str, dict]:
    """Return a document's links by relation."""
    return {link["rel"]: link for link in document["links"]}


def test_landing_conformance_and_collections_for_the_public(client, released) -> None:
    landing = client.get("/ogc")
    assert landing.status_code == 200, landing.text
    links = rels(landing.json())
    assert {"self", "service-desc", "service-doc", "conformance", "data"} <= set(links)
    assert links["service-desc"]["type"].startswith("application/vnd.oai.openapi+json")
    assert client.get(links["service-desc"]["href"]).json()["openapi"].startswith("3.")
    assert CORE in client.get(links["conformance"]["href"]).json()["conformsTo"]
    listed = client.get(links["data"]["href"]).json()["collections"]
    ids = {c["id"] for c in listed}
    assert {"release-cells", "release-totals", "works", "arrondissements"} <= ids
    assert not ids & {"hexagons", "zones"}  # a token's collections are not shown to the public
    for c in listed:
        assert c["crs"] == ["http://www.opengis.net/def/crs/OGC/1.3/CRS84"]
        assert rels(c)["items"]["type"] == "application/geo+json"
        bbox = c["extent"]["spatial"]["bbox"][0]
        assert 2.2 < bbox[0] < bbox[2] < 2.5 and 48.8 < bbox[1] < bbox[3] < 48.95


def test_a_token_adds_what_its_role_may_read(client, headers, released) -> None:
    def ids(role: str) -> set[str]:
        return {c["id"] for c in client.get("/ogc/collections", headers=headers[role]).json()["collections"]}

    assert {"hexagons", "zones"} <= ids("planner")
    assert {"hexagons", "zones"} <= ids("police")
    assert client.get("/ogc/collections/hexagons/items").status_code == 401
    assert client.get("/ogc/collections/zones/items").status_code == 401
    assert client.get("/ogc/collections/nothing").status_code == 404


def test_release_items_page_with_next_links_to_the_whole_release(client, released) -> None:
    whole = client.get("/public/releases/" + released).json()
    expected = {(f["properties"]["group"], f["properties"]["h3"]): f["properties"]["value"] for f in whole["features"]}
    seen: dict[tuple, int | None] = {}
    url: str | None = f"/ogc/collections/release-cells/items?datetime={released}-15&limit=100"
    pages = 0
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"] == "application/geo+json"
        body = page.json()
        assert body["numberMatched"] == len(expected) and body["numberReturned"] == len(body["features"]) <= 100
        for f in body["features"]:
            assert f["properties"]["month"] == released and f["id"].startswith(released)
            seen[(f["properties"]["group"], f["properties"]["h3"])] = f["properties"]["value"]
        url = rels(body).get("next", {}).get("href")
        pages += 1
    assert seen == expected and pages == -(-len(expected) // 100)
    one = next(iter(client.get("/ogc/collections/release-cells/items?limit=1").json()["features"]))
    single = client.get(f"/ogc/collections/release-cells/items/{one['id']}")
    assert single.status_code == 200 and single.json()["properties"] == one["properties"]
    assert client.get("/ogc/collections/release-cells/items/1999-01-x").status_code == 404


def test_bbox_and_datetime_filter_and_bad_ones_are_named(client, released) -> None:
    everything = client.get("/ogc/collections/release-totals/items").json()
    assert {f["properties"]["month"] for f in everything["features"]} >= {released}
    assert client.get("/ogc/collections/release-totals/items", params={"datetime": "1990-01-01/1990-12-31"}
                      ).json()["numberMatched"] == 0
    arr = client.get("/ogc/collections/arrondissements/items").json()
    assert arr["numberMatched"] == 4
    small = client.get("/ogc/collections/arrondissements/items", params={"bbox": "2.395,48.87,2.40,48.875"}).json()
    assert 1 <= small["numberMatched"] < 4
    for params, named in (({"bbox": "1,2,3"}, "bbox"), ({"datetime": "yesterday"}, "datetime"),
                          ({"colour": "red"}, "colour"), ({"crs": "EPSG:2154"}, "crs"), ({"limit": "0"}, "limit")):
        answer = client.get("/ogc/collections/arrondissements/items", params=params)
        assert answer.status_code in (400, 422), (params, answer.text)
        assert answer.json()["error"]["parameter"] == named


def test_hexagons_collection_answers_as_the_hexagons_route(client, headers) -> None:
    window = {"start": "2020-03-01", "end": "2020-04-01", "resolution": 8, "kind": "incident"}
    route = client.get("/hexagons", params=window, headers=headers["planner"]).json()
    ogc = client.get("/ogc/collections/hexagons/items", params={**window, "limit": 5000},
                     headers=headers["planner"]).json()
    assert {f["id"]: f["properties"]["count"] for f in ogc["features"]} == \
        {f["properties"]["h3"]: f["properties"]["count"] for f in route["features"]}
    assert sum(f["properties"]["count"] for f in ogc["features"]) == route["metadata"]["total"] > 0
    same = client.get("/ogc/collections/hexagons/items", headers=headers["planner"],
                      params={"datetime": "2020-03-01/2020-03-31", "resolution": 8, "kind": "incident", "limit": 5000})
    assert same.json()["numberMatched"] == ogc["numberMatched"]


def test_police_outreach_through_ogc_follows_the_same_rules(client, headers, api_data) -> None:
    month = {"start": "2008-03-01", "end": "2008-04-01", "kind": "outreach"}
    refused = client.get("/ogc/collections/hexagons/items", params={**month, "resolution": 11},
                         headers=headers["police"])
    assert refused.status_code == client.get("/hexagons", params={**month, "resolution": 11},
                                             headers=headers["police"]).status_code == 403
    for role in ("police", "outreach"):
        route = client.get("/hexagons", params={**month, "resolution": 8}, headers=headers[role]).json()
        ogc = client.get("/ogc/collections/hexagons/items", params={**month, "resolution": 8},
                         headers=headers[role]).json()
        assert {f["id"]: f["properties"]["count"] for f in ogc["features"]} == \
            {f["properties"]["h3"]: f["properties"]["count"] for f in route["features"]}, role
    police = client.get("/ogc/collections/hexagons/items", params={**month, "resolution": 8},
                        headers=headers["police"]).json()
    shown = {f["id"]: f["properties"]["count"] for f in police["features"]}
    assert shown.get(f"{api_data.small_a:x}") is None and shown.get(f"{api_data.small_b:x}") is None
    team = client.get("/ogc/collections/hexagons/items", params={**month, "resolution": 8},
                      headers=headers["outreach"]).json()
    assert {f["id"]: f["properties"]["count"] for f in team["features"]} == \
        {f"{c:x}": n for c, n in api_data.counts["team-a"].items()}


# --- GDAL's OAPIF driver against a real server ------------------------------------------------


def gdal(args: list[str], token: str | None = None, cwd: Path | None = None) -> str:
    """Run a GDAL command line tool; return its output (fails with GDAL's message)."""
    env = {**os.environ, "GDAL_HTTP_TIMEOUT": "60", "CPL_DEBUG": "OFF"}
    if token:
        env["GDAL_HTTP_HEADERS"] = f"Authorization: Bearer {token}"
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def refused(args: list[str]) -> str:
    """Run a GDAL tool that must fail; return what it said."""
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0, done.stdout
    return done.stdout + done.stderr


def layers(listing: str) -> set[str]:
    """Return the layer names of an ``ogrinfo`` listing (``1: name (title: ...) (type)``)."""
    return set(re.findall(r"^\d+: (\S+)", listing, flags=re.MULTILINE))


def test_gdal_reads_the_public_collections(start_server, released, tmp_path) -> None:
    base = start_server()
    listing = layers(gdal(["ogrinfo", "-ro", "-q", f"OAPIF:{base}/ogc"]))
    assert {"release-cells", "release-totals", "works", "arrondissements"} <= listing
    assert not listing & {"hexagons", "zones"}
    out = tmp_path / "public.gpkg"
    gdal(["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}/ogc", "release-cells", "arrondissements"])
    counted = gdal(["ogrinfo", "-ro", "-so", "-al", str(out)])
    matched = httpx.get(f"{base}/ogc/collections/release-cells/items?limit=1").json()["numberMatched"]
    assert f"Feature Count: {matched}" in counted and "Feature Count: 4" in counted
    summary = gdal(["ogrinfo", "-ro", "-so", f"OAPIF:{base}/ogc", "release-cells"])
    assert "value: " in summary and "suppressed: Integer(Boolean)" in summary and "month: String" in summary


def test_gdal_reads_a_planners_hexagons_with_the_token(start_server, tokens, headers, tmp_path) -> None:
    base = start_server()
    listing = layers(gdal(["ogrinfo", "-ro", "-q", f"OAPIF:{base}/ogc"], token=tokens["planner"]))
    assert {"hexagons", "zones", "release-cells"} <= listing
    # the query of the connection string goes with every request GDAL makes: the slice of a planner
    window = {"start": "2020-03-01", "end": "2020-04-01", "resolution": "8", "kind": "incident"}
    out = tmp_path / "hexagons.gpkg"
    gdal(["ogr2ogr", "-f", "GPKG", str(out), f"OAPIF:{base}/ogc?{urlencode(window)}", "hexagons"],
         token=tokens["planner"])
    read = gdal(["ogrinfo", "-ro", "-al", "-q", "-geom=NO", str(out)])
    counts = {h: int(n) for h, n in re.findall(r"h3 \(String\) = (\w+)\n\s+count \(Integer\) = (\d+)", read)}
    route = httpx.get(f"{base}/hexagons", params=window, headers=headers["planner"], timeout=60).json()
    assert counts == {f["properties"]["h3"]: f["properties"]["count"] for f in route["features"]}
    assert sum(counts.values()) == route["metadata"]["total"] > 0
    assert "hexagons" in refused(["ogrinfo", "-ro", "-so", f"OAPIF:{base}/ogc", "hexagons"])  # not listed without the token
