"""The reference layers: one selection, in the library, for the API and the maps alike."""

from __future__ import annotations

import json

import pytest
import shapely

from geo_monitor import db
from geo_monitor.store.layers import EDGE_DEGREES, LAYERS, read_layer
from maps.data import MODES, reference_layers


@pytest.fixture(scope="module")
def layers(api_settings) -> dict:
    """Each layer as the library reads it, and the maps' reference layers."""
    with db.connect(api_settings) as conn:
        return {"library": {name: read_layer(conn, name) for name in LAYERS}, "maps": reference_layers(conn)}


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_the_api_serves_the_library_layer(client, layers, layer: str) -> None:
    answer = client.get(f"/reference/{layer}")
    assert answer.status_code == 200, answer.text[:300]
    features = answer.json()["features"]
    library = layers["library"][layer]
    assert len(features) == len(library) > 0
    assert all(list(f["properties"]) == LAYERS[layer] for f in features)
    served = shapely.from_geojson([json.dumps(f["geometry"]) for f in features])
    # Coordinates are rounded to 6 decimals (about 10 cm) and nothing else changes.
    assert shapely.hausdorff_distance(served, library.geometry.to_numpy()).max() <= 1e-6


def test_the_maps_draw_the_stations_and_lines_the_api_serves(layers) -> None:
    stations, lines = layers["library"]["stations"], layers["library"]["lines"]
    drawn = layers["maps"]
    assert set(drawn.stations["name"]) == set(stations.loc[stations["mode"].isin(MODES), "name"])
    assert len(drawn.stations) == drawn.stations["name"].nunique()  # one point per station
    kept = lines[lines["mode"].isin(MODES)]
    assert len(drawn.lines) == len(kept) > 0
    assert shapely.union_all(drawn.lines.geometry).equals(shapely.union_all(kept.geometry))


def test_stations_of_the_boundary_belong_to_the_study_area(api_settings, layers) -> None:
    """A station just outside the boundary is kept (it serves the area); one farther away is not."""
    stations = layers["library"]["stations"]
    with db.connect(api_settings) as conn:
        outside = conn.execute(
            "SELECT st.station_id, ST_Distance(st.geom, s.geom) FROM stations st, study_area s "
            "WHERE NOT ST_Intersects(st.geom, s.geom) ORDER BY 2").fetchall()
    near = {sid for sid, distance in outside if distance <= EDGE_DEGREES}
    far = {sid for sid, distance in outside if distance > EDGE_DEGREES}
    assert near and far
    assert near <= set(stations["station_id"])
    assert not far & set(stations["station_id"])
