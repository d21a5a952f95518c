"""Vector tiles: decoded (mapbox-vector-tile), they hold the same counts as /hexagons; GDAL's MVT driver reads them."""

from __future__ import annotations

import math
import subprocess

import mapbox_vector_tile
import pytest

WINDOW = {"start": "2020-03-01", "end": "2020-04-01", "resolution": "8", "kind": "incident"}
ZOOM = 12


def tiles_over(bounds: list[float], z: int) -> list[tuple[int, int]]:
    """Return the XYZ tiles that cover a lon/lat box at zoom z."""
    n = 2 ** z

    def col(lon: float) -> int:
        return int((lon + 180) / 360 * n)

    def row(lat: float) -> int:
        return int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)

    return [(x, y) for x in range(col(bounds[0]), col(bounds[2]) + 1) for y in range(row(bounds[3]), row(bounds[1]) + 1)]


def decoded(client, collection: str, params: dict, header: dict, tilejson: dict) -> dict[str, dict]:
    """Fetch every tile of the TileJSON's bounds; return the features' properties by their h3 (or id) key."""
    found: dict[str, dict] = {}
    for x, y in tiles_over(tilejson["bounds"], ZOOM):
        answer = client.get(f"/tiles/{collection}/{ZOOM}/{x}/{y}.pbf", params=params, headers=header)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/vnd.mapbox-vector-tile"
        if answer.content:
            for feature in mapbox_vector_tile.decode(answer.content)[collection]["features"]:
                props = feature["properties"]
                found[props.get("h3", str(props))] = props
    return found


def test_hexagon_tiles_decode_to_the_counts_of_hexagons(client, headers) -> None:
    planner = headers["planner"]
    route = client.get("/hexagons", params=WINDOW, headers=planner).json()
    tilejson = client.get("/tiles/hexagons.json", params=WINDOW, headers=planner).json()
    assert tilejson["tilejson"] == "3.0.0" and "resolution=8" in tilejson["tiles"][0]
    assert tilejson["vector_layers"][0]["id"] == "hexagons"
    found = decoded(client, "hexagons", WINDOW, planner, tilejson)
    assert {h: p["count"] for h, p in found.items()} == \
        {f["properties"]["h3"]: f["properties"]["count"] for f in route["features"]}
    assert sum(p["count"] for p in found.values()) == route["metadata"]["total"] > 0
    assert client.get("/tiles/hexagons/12/2074/1408.pbf", params=WINDOW).status_code == 401


def test_police_outreach_tiles_hide_what_hexagons_hides(client, headers, api_data) -> None:
    month = {"start": "2008-03-01", "end": "2008-04-01", "kind": "outreach", "resolution": "8"}
    route = client.get("/hexagons", params=month, headers=headers["police"]).json()
    tilejson = client.get("/tiles/hexagons.json", params=month, headers=headers["police"]).json()
    found = decoded(client, "hexagons", month, headers["police"], tilejson)
    assert {h: p.get("count") for h, p in found.items()} == \
        {f["properties"]["h3"]: f["properties"]["count"] for f in route["features"]}  # null: no MVT attribute
    assert "count" not in found[f"{api_data.small_a:x}"]
    assert client.get("/tiles/hexagons/12/2074/1408.pbf", params={**month, "resolution": "11"},
                      headers=headers["police"]).status_code == 403


@pytest.mark.parametrize("bad", ["/tiles/hexagons/3/8/0.pbf", "/tiles/nothing/12/1/1.pbf"])
def test_tiles_out_of_range_or_unknown_are_404(client, headers, bad) -> None:
    assert client.get(bad, params=WINDOW, headers=headers["planner"]).status_code == 404


def test_gdal_mvt_driver_reads_a_tile(client, headers, tmp_path) -> None:
    tilejson = client.get("/tiles/arrondissements.json").json()
    x, y = tiles_over(tilejson["bounds"], ZOOM)[0]
    for x, y in tiles_over(tilejson["bounds"], ZOOM):
        content = client.get(f"/tiles/arrondissements/{ZOOM}/{x}/{y}.pbf").content
        if content:
            break
    path = tmp_path / str(ZOOM) / str(x) / f"{y}.pbf"
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    done = subprocess.run(["ogrinfo", "-ro", "-al", "-so", f"MVT:{path}"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Layer name: arrondissements" in done.stdout and "Feature Count: " in done.stdout
    assert "Feature Count: 0" not in done.stdout
