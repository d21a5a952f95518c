"""GeoPackage: every PostGIS table a planner would export converts with ``ogr2ogr -f GPKG``; /exports offers .gpkg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import shapely

from geo_monitor import db
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings
from geo_monitor.zones.edit import create_zone

TABLES = ["zones", "zone_history", "events", "rollup_monthly", "release_cells", "release_totals", "works_sites",
          "arrondissements", "quartiers", "stations", "rail_lines", "iris", "study_area"]
SLICE = {"start": "2020-03-01", "end": "2020-04-01", "resolution": "9"}


def ogr(*args: str) -> str:
    """Run a GDAL tool; return its output (fails with GDAL's message)."""
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def zones_without_partners(api_settings: Settings, api_data, tokens) -> None:
    """A zone with no partner team (the case that broke) and one with partners (team-a has a token), committed."""
    with db.connect(api_settings) as conn:
        centre = shapely.from_wkb(conn.execute(
            "SELECT ST_AsBinary(ST_PointOnSurface(geom)) FROM quartiers WHERE code = 7511803").fetchone()[0])
        police = Principal(role="police", team="brigade-gpkg")
        create_zone(conn, police, name="gpkg alone", geometry=centre.buffer(0.002))
        create_zone(conn, police, name="gpkg shared", geometry=centre.buffer(0.003), partner_teams=["team-a"])
        conn.commit()


@pytest.mark.parametrize("table", TABLES)
def test_postgis_table_converts_to_geopackage(api_settings: Settings, zones_without_partners, table: str,
                                              sql, tmp_path: Path) -> None:
    out = tmp_path / f"{table}.gpkg"
    ogr("ogr2ogr", "-f", "GPKG", str(out), f"PG:{api_settings.database_url}", table)
    rows = sql(f"SELECT count(*) FROM {table}")[0][0]  # noqa: S608 - names from the list above
    assert f"Feature Count: {rows}" in ogr("ogrinfo", "-ro", "-so", str(out), table)


def test_planner_export_as_geopackage(client, headers, tmp_path: Path) -> None:
    answer = client.get("/exports/hexagons.gpkg", params=SLICE, headers=headers["planner"])
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/geopackage+sqlite3"
    assert answer.headers["content-disposition"].endswith('.gpkg"')
    path = tmp_path / "hexagons.gpkg"
    path.write_bytes(answer.content)
    listing = ogr("ogrinfo", "-ro", "-al", "-q", "-geom=NO", str(path))
    counts = sum(int(line.split("=")[1]) for line in listing.splitlines() if line.strip().startswith("count ("))
    assert "count (Integer64)" in listing  # written as geo-monitor export FILE writes it, count an integer field
    same = client.get("/hexagons", params=SLICE, headers=headers["planner"]).json()
    assert counts == same["metadata"]["total"] > 0
    assert client.get("/exports/hexagons.gpkg", params=SLICE, headers=headers["police"]).status_code == 403
