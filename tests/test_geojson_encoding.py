"""geojson_bytes writes, column at a time, exactly what ``json.dumps`` of each row's properties writes."""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from geo_monitor import hexagons
from geo_monitor.export import geojson_bytes


def _reference(frame: gpd.GeoDataFrame, properties: list[str], metadata: dict) -> bytes:
    """The plain way: one dict per row through json.dumps, NaN and None as null."""
    features = []
    for geometry, (_, row) in zip(shapely.to_geojson(frame.geometry.to_numpy()), frame.iterrows(), strict=True):
        props = {}
        for name in properties:
            value = row[name]
            value = value.item() if isinstance(value, np.generic) else value
            props[name] = None if value is None or (isinstance(value, float) and np.isnan(value)) else value
        features.append({"type": "Feature", "geometry": json.loads(geometry), "properties": props})
    return json.dumps({"type": "FeatureCollection", "metadata": metadata, "features": features}).encode()


def test_columns_encode_as_json_dumps_does_and_cell_geometries_are_the_polygons() -> None:
    cells = hexagons.polygon_to_cells(shapely.box(2.35, 48.86, 2.40, 48.89), 9)[:40]
    n = len(cells)
    counts = pd.Series(np.arange(n)).astype(object)
    counts[3] = None  # suppressed
    rate = np.linspace(0, 1e-7, n)
    rate[5] = np.nan
    frame = gpd.GeoDataFrame({
        "cell": cells, "h3": hexagons.cells_to_str(cells), "count": counts, "population": np.linspace(0, 1e16, n),
        "rate_per_1000": rate, "label": ['quote " and \\ and é'] * n, "flag": [True, False] * (n // 2) + [True] * (n % 2),
    }, geometry=hexagons.cells_to_polygons(cells), crs="EPSG:4326")
    properties = ["h3", "count", "population", "rate_per_1000", "label", "flag"]
    metadata = {"total": 12, "notes": ["a"]}
    ours = geojson_bytes(frame, properties, metadata)
    assert json.loads(ours) == json.loads(_reference(frame, properties, metadata))
    cached = geojson_bytes(pd.DataFrame(frame.drop(columns="geometry")), properties, metadata,
                           hexagons.cells_geojson(cells))
    assert cached == ours  # the kept hexagons are byte for byte the drawn ones
    assert [hexagons.cell_to_str(c) for c in cells] == hexagons.cells_to_str(cells)


def test_each_value_is_written_as_json_dumps_writes_it() -> None:
    from geo_monitor.export import _json_texts

    floats = np.array([0.1, 1e16, 1e-7, -2.5, 3.0, np.nan, np.inf, -np.inf, 123456789.123456789])
    assert _json_texts(pd.Series(floats)) == [json.dumps(v) if np.isfinite(v) else "null" for v in floats.tolist()]
    assert _json_texts(pd.Series(np.zeros(0))) == []
    texts = ["8a1fb46622dffff", "", "plain"]
    assert _json_texts(pd.Series(texts, dtype=object)) == [json.dumps(t) for t in texts]
    odd = ["tab\there", "é", 'quote"', None, 3]
    assert _json_texts(pd.Series(odd, dtype=object)) == [json.dumps(v) for v in odd]
    assert _json_texts(pd.Series([1, None, 2], dtype=object)) == ["1", "null", "2"]
