"""What the map builders read from the store: reference layers and default windows.

All SQL of the maps package lives here, and the reference layers come from the library
(the API serves the same ones); values always go in as placeholders.
"""

from __future__ import annotations

from datetime import date, datetime

import geopandas as gpd
import pandas as pd
import psycopg

from geo_monitor.calendar import LOCAL_TZ
from geo_monitor.store.layers import read_layer
from maps.layers import ReferenceLayers

MODES = ("METRO", "RER")

_SQL = {
    "last_event": f"""
        SELECT max(e.occurred_at AT TIME ZONE '{LOCAL_TZ}')::date FROM events e JOIN kinds k ON k.id = e.kind_id
        WHERE k.name = ANY(%(kinds)s)""",
    "has_releases": "SELECT to_regclass('releases')",
    "has_zones": "SELECT to_regclass('zones')",
    "last_release": "SELECT max(month) FROM releases",
}


def _local_days(values: pd.Series) -> list[str | None]:
    """Return timestamps as Paris days in ISO form (``None`` for a missing one)."""
    stamps = pd.to_datetime(values, utc=True).dt.tz_convert(LOCAL_TZ)
    return [None if pd.isna(t) else t.date().isoformat() for t in stamps]


def _one_per_station(stations: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return one point per station name: its lines joined, its first mode, the centre of its entrances."""
    if stations.empty:
        return gpd.GeoDataFrame({"name": [], "lines": [], "mode": []}, geometry=[], crs="EPSG:4326")
    frame = stations.assign(x=stations.geometry.x, y=stations.geometry.y)
    grouped = frame.groupby("name", sort=True).agg(
        lines=("line", lambda lines: ", ".join(sorted(set(lines)))), mode=("mode", "min"), x=("x", "mean"),
        y=("y", "mean")).reset_index()
    return gpd.GeoDataFrame(grouped[["name", "lines", "mode"]], geometry=gpd.points_from_xy(grouped.x, grouped.y),
                            crs="EPSG:4326")


def reference_layers(conn: psycopg.Connection, *, start: date | None = None, end: date | None = None,
                     modes: tuple[str, ...] = MODES) -> ReferenceLayers:
    """Return the study area's reference layers; works sites only when active in [start, end)."""
    works = read_layer(conn, "works", start=start, end=end)
    works = works.assign(starts=_local_days(works["starts_at"]), ends=_local_days(works["ends_at"]))
    return ReferenceLayers(
        arrondissements=arrondissements(conn),
        quartiers=read_layer(conn, "quartiers")[["code", "name", "geometry"]],
        stations=_one_per_station(read_layer(conn, "stations", modes=modes)),
        lines=read_layer(conn, "lines", modes=modes)[["line", "mode", "colour", "geometry"]],
        works=works[["id", "purpose", "street", "starts", "ends", "geometry"]],
    )


def arrondissements(conn: psycopg.Connection) -> gpd.GeoDataFrame:
    """Return the study area's arrondissements (code, number, name, geometry)."""
    return read_layer(conn, "arrondissements")


def last_event_day(conn: psycopg.Connection, kinds: list[str]) -> date | None:
    """Return the Paris day of the latest event of these kinds (``None`` on an empty store)."""
    row = conn.execute(_SQL["last_event"], {"kinds": kinds}).fetchone()
    return row[0] if row else None


def last_release_month(conn: psycopg.Connection) -> date | None:
    """Return the month of the latest public release, ``None`` when none exists (or no table)."""
    if conn.execute(_SQL["has_releases"]).fetchone()[0] is None:
        return None
    value = conn.execute(_SQL["last_release"]).fetchone()[0]
    return value.date() if isinstance(value, datetime) else value


def has_zones_table(conn: psycopg.Connection) -> bool:
    """Return whether the store has coordination zones (migration 005)."""
    return conn.execute(_SQL["has_zones"]).fetchone()[0] is not None
