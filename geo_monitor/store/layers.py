"""The reference layers of the study area as every surface reads them (maps, API, exports).

One query per layer, in ``geo_monitor/sql/layer_<name>.sql``: the selection (which features
belong to the study area, how far beyond its boundary a station or a line still counts) is
decided there once, for the maps, the API and any later surface; they pick the columns they
show and how they draw them. Each query names its geometry ``geom``; it leaves as WKB or GeoJSON.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import geopandas as gpd
import pandas as pd
import psycopg
import shapely
from psycopg import sql

from geo_monitor.db import query_text
from geo_monitor.errors import InvalidArgumentError

# Columns of each layer, in order, besides the geometry (Python values: ints, text, datetimes).
LAYERS: dict[str, list[str]] = {
    "arrondissements": ["code", "number", "name"],
    "quartiers": ["code", "arrondissement", "name"],
    "stations": ["station_id", "name", "line", "mode", "arrondissement"],
    "lines": ["line", "mode", "colour"],
    "works": ["id", "street", "purpose", "owner", "starts_at", "ends_at", "arrondissement"],
}
# How far beyond the study area's boundary a station or a rail line still belongs to it, in degrees
# (about 150 m east-west, 220 m north-south here): the stations of the boundary boulevards (line 2
# runs under the 10e/19e/20e border) serve both sides.
EDGE_DEGREES = 0.002
_ENCODINGS = {"wkb": sql.SQL("ST_AsBinary(layer.geom)"), "geojson": sql.SQL("ST_AsGeoJSON(layer.geom, 6)")}


def layer_rows(conn: psycopg.Connection, layer: str, *, geometry: str = "wkb", start: date | None = None,
               end: date | None = None, modes: Sequence[str] | None = None) -> list[tuple]:
    """Return a reference layer of the study area as rows: the columns of ``LAYERS``, then the geometry.

    Parameters
    ----------
    layer
        One of ``LAYERS``.
    geometry
        ``wkb`` (bytes) or ``geojson`` (text, 6 decimals: about 10 cm).
    start, end
        Works sites only: keep those active in ``[start, end)`` (either may be None).
    modes
        Stations and lines only: keep these modes (``METRO``, ``RER``, ``TRAMWAY``...); None keeps all.
    """
    if layer not in LAYERS:
        raise InvalidArgumentError(f"unknown reference layer {layer[:40]!r}; layers are {', '.join(LAYERS)}",
                                   "layer")
    if geometry not in _ENCODINGS:
        raise InvalidArgumentError(f"geometry must be one of {', '.join(_ENCODINGS)}", "geometry")
    # A sorted subquery is not flattened into the outer query: its rows come out in its order.
    query = sql.SQL("SELECT {columns}, {geometry} FROM ({layer}) AS layer").format(
        columns=sql.SQL(", ").join(sql.Identifier("layer", column) for column in LAYERS[layer]),
        geometry=_ENCODINGS[geometry], layer=sql.SQL(query_text(f"layer_{layer}")))
    params = {"start": start, "end": end, "modes": list(modes) if modes is not None else None,
              "edge": EDGE_DEGREES}
    return conn.execute(query, params).fetchall()


def read_layer(conn: psycopg.Connection, layer: str, *, start: date | None = None, end: date | None = None,
               modes: Sequence[str] | None = None) -> gpd.GeoDataFrame:
    """Return a reference layer of the study area (EPSG:4326), its columns as in ``LAYERS`` (see ``layer_rows``)."""
    rows = layer_rows(conn, layer, start=start, end=end, modes=modes)
    table = pd.DataFrame([r[:-1] for r in rows], columns=LAYERS[layer], dtype=object)
    geometry = shapely.from_wkb([bytes(r[-1]) if r[-1] is not None else None for r in rows]) if rows else []
    return gpd.GeoDataFrame(table, geometry=list(geometry), crs="EPSG:4326")
