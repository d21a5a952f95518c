"""What the map builders read from the store: reference layers and default windows.

All SQL of the maps package lives here; values always go in as placeholders.
"""

from __future__ import annotations

from datetime import date, datetime

import geopandas as gpd
import pandas as pd
import psycopg
import shapely

from geo_monitor.calendar import LOCAL_TZ
from maps.layers import ReferenceLayers

MODES = ("METRO", "RER")

_SQL = {
    "arrondissements": """
        SELECT a.code, a.number, a.name, ST_AsBinary(a.geom)
        FROM arrondissements a, study_area s WHERE a.code = ANY(s.codes) ORDER BY a.code""",
    "quartiers": """
        SELECT q.code, q.name, ST_AsBinary(q.geom)
        FROM quartiers q, study_area s WHERE q.arrondissement = ANY(s.codes) ORDER BY q.code""",
    "stations": """
        SELECT st.name, string_agg(DISTINCT st.line, ', ' ORDER BY st.line), min(st.mode),
               ST_AsBinary(ST_Centroid(ST_Collect(st.geom)))
        FROM stations st, study_area s
        WHERE st.mode = ANY(%(modes)s) AND ST_DWithin(st.geom, s.geom, 0.002)
        GROUP BY st.name ORDER BY st.name""",
    "lines": """
        SELECT l.line, l.mode, l.colour, ST_AsBinary(ST_Intersection(l.geom, ST_Buffer(s.geom, 0.002)))
        FROM rail_lines l, study_area s
        WHERE l.mode = ANY(%(modes)s) AND ST_DWithin(l.geom, s.geom, 0.002)""",
    "works": f"""
        SELECT w.id, w.purpose, w.street, (w.starts_at AT TIME ZONE '{LOCAL_TZ}')::date,
               (w.ends_at AT TIME ZONE '{LOCAL_TZ}')::date, ST_AsBinary(w.geom)
        FROM works_sites w, study_area s
        WHERE ST_Intersects(w.geom, s.geom)
          AND (%(end)s::date IS NULL OR w.starts_at IS NULL OR w.starts_at < %(end)s::date)
          AND (%(start)s::date IS NULL OR w.ends_at IS NULL OR w.ends_at >= %(start)s::date)
        ORDER BY w.id""",
    "last_event": f"""
        SELECT max(e.occurred_at AT TIME ZONE '{LOCAL_TZ}')::date FROM events e JOIN kinds k ON k.id = e.kind_id
        WHERE k.name = ANY(%(kinds)s)""",
    "has_releases": "SELECT to_regclass('releases')",
    "has_zones": "SELECT to_regclass('zones')",
    "last_release": "SELECT max(month) FROM releases",
}


def _frame(conn: psycopg.Connection, query: str, columns: list[str], params: dict | None = None) -> gpd.GeoDataFrame:
    rows = conn.execute(_SQL[query], params or {}).fetchall()
    table = pd.DataFrame([r[:-1] for r in rows], columns=columns)
    geometry = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(table, geometry=list(geometry), crs="EPSG:4326")


def reference_layers(conn: psycopg.Connection, *, start: date | None = None, end: date | None = None,
                     modes: tuple[str, ...] = MODES) -> ReferenceLayers:
    """Return the study area's reference layers; works sites only when active in [start, end)."""
    params = {"modes": list(modes), "start": start, "end": end}
    works = _frame(conn, "works", ["id", "purpose", "street", "starts", "ends"], params)
    for column in ("starts", "ends"):
        works[column] = [d.isoformat() if isinstance(d, date) else None for d in works[column]]
    return ReferenceLayers(
        arrondissements=arrondissements(conn),
        quartiers=_frame(conn, "quartiers", ["code", "name"]),
        stations=_frame(conn, "stations", ["name", "lines", "mode"], params),
        lines=_frame(conn, "lines", ["line", "mode", "colour"], params),
        works=works,
    )


def arrondissements(conn: psycopg.Connection) -> gpd.GeoDataFrame:
    """Return the study area's arrondissements (code, number, name, geometry)."""
    return _frame(conn, "arrondissements", ["code", "number", "name"])


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
