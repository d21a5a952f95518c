"""The maps' HTML: offline assets, no point coordinates on the public map, fixed scales, helpers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pytest
import shapely
from folium.plugins import Fullscreen
from map_data import COORDINATION_END, PLANNER_END, demo_zones, fake_release

from geo_monitor import db, hexagons
from geo_monitor.settings import Settings
from maps import (
    MapAssetsError,
    StepCounts,
    build_all,
    build_planner,
    coordination_map,
    install_assets,
    planner_map,
    public_map,
    render,
    uncovered_hotspots,
)
from maps.assets import check_offline
from maps.coordination import schedule_table
from maps.data import arrondissements
from maps.hexlayer import PRECISION
from maps.styles import fixed_scale

NUMBER_PAIR = re.compile(r"(-?\d{1,3}\.\d+)\s*,\s*(-?\d{1,3}\.\d+)")
LAT, LNG = (48.0, 49.5), (1.5, 3.5)  # anything near Paris: where a leaked point would be


def _vertices(geometries) -> set[tuple[float, float]]:
    """Return every vertex as (lng, lat) rounded as the maps round them."""
    coords = shapely.get_coordinates(np.asarray(geometries))
    return {(round(x, PRECISION), round(y, PRECISION)) for x, y in coords}


def foreign_pairs(html: str, allowed: set[tuple[float, float]]) -> list[tuple[float, float]]:
    """Return the number pairs near Paris, in either order, that are not an allowed (lng, lat) vertex."""
    found = []
    for a, b in NUMBER_PAIR.findall(html):
        a, b = float(a), float(b)
        if LNG[0] <= a <= LNG[1] and LAT[0] <= b <= LAT[1]:
            pair = (a, b)
        elif LAT[0] <= a <= LAT[1] and LNG[0] <= b <= LNG[1]:
            pair = (b, a)
        else:
            continue
        if pair not in allowed:
            found.append(pair)
    return found


def _steps(n: int) -> list[date]:
    return [date(2021 + i // 12, i % 12 + 1, 1) for i in range(n)]


def _synthetic(cells: np.ndarray, t: int = 6, seed: int = 1) -> StepCounts:
    rng = np.random.default_rng(seed)
    return StepCounts(_steps(t), "month", cells, rng.poisson(3, (t, len(cells))),
                      rng.uniform(0, 2000, len(cells)))


@pytest.fixture(scope="module")
def cells() -> np.ndarray:
    return hexagons.polygon_to_cells(shapely.box(2.35, 48.87, 2.39, 48.89), 9)


# --- the public map --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def public(maps_db: Settings) -> tuple[str, dict, gpd.GeoDataFrame]:
    with db.connect(maps_db) as conn:
        release = fake_release(conn, maps_db)
        boundaries = arrondissements(conn)
    return render(public_map(release, boundaries=boundaries)), release, boundaries


def test_public_map_holds_only_hexagon_and_boundary_vertices(public) -> None:
    html, release, boundaries = public
    cells = np.array([int(f["properties"]["h3"], 16) for f in release["features"]], dtype=np.int64)
    allowed = _vertices(hexagons.cells_to_polygons(np.unique(cells))) | _vertices(boundaries.geometry)
    pairs = NUMBER_PAIR.findall(html)
    assert len(pairs) > 1000  # the audit does see the hexagons
    assert foreign_pairs(html, allowed) == []
    assert len(html) < 1_000_000


def test_public_map_never_reads_release_geometry(maps_db: Settings, public) -> None:
    """Even a release whose features carry event points yields a page without them."""
    _, release, boundaries = public
    poisoned = json.loads(json.dumps(release))
    points = []
    for i, feature in enumerate(poisoned["features"]):
        point = [2.3601234 + i * 1e-6, 48.8801234]
        points.append(tuple(point))
        feature["geometry"] = {"type": "Point", "coordinates": point}
    html = render(public_map(poisoned, boundaries=boundaries))
    cells = np.array([int(f["properties"]["h3"], 16) for f in release["features"]], dtype=np.int64)
    allowed = _vertices(hexagons.cells_to_polygons(np.unique(cells))) | _vertices(boundaries.geometry)
    assert foreign_pairs(html, allowed) == []
    assert "48.8801234" not in html


def test_coordinate_audit_catches_a_point(public) -> None:
    html, release, boundaries = public
    m = public_map(release, boundaries=boundaries)
    folium.CircleMarker([48.8801234, 2.3601234], radius=3).add_to(m)
    allowed = _vertices(boundaries.geometry)
    assert (2.3601234, 48.8801234) in foreign_pairs(render(m), allowed)


def test_public_map_of_a_real_release(maps_db: Settings) -> None:
    """``build_public`` on a release made by geo_monitor.privacy.release: the same audit."""
    from geo_monitor.privacy.release import create_release
    from geo_monitor.privacy.releases import get_release
    from maps import build_public

    with db.connect(maps_db) as conn:
        create_release(conn, "2021-06", settings=maps_db)
        conn.commit()
        html = render(build_public(conn, month=date(2021, 6, 1), settings=maps_db))
        features = get_release(conn, "2021-06", settings=maps_db).to_geojson()["features"]
        boundaries = arrondissements(conn)
    cells = np.unique(np.array([int(f["properties"]["h3"], 16) for f in features], dtype=np.int64))
    allowed = _vertices(hexagons.cells_to_polygons(cells)) | _vertices(boundaries.geometry)
    assert foreign_pairs(html, allowed) == []
    assert len(html) < 1_000_000


def test_public_map_without_release(public) -> None:
    _, _, boundaries = public
    html = render(public_map(None, boundaries=boundaries))
    assert "Aucune publication" in html and "Nothing is published yet" in html


# --- offline assets --------------------------------------------------------------------------


def test_no_network_resource_and_no_jquery(cells: np.ndarray) -> None:
    html = render(planner_map(_synthetic(cells)))
    check_offline(html)
    for cdn in ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "code.jquery.com", "netdna.bootstrapcdn.com"):
        assert cdn not in html
    assert "L.heatLayer" in html and "simpleheat" in html  # leaflet.heat, inlined
    linked = render(planner_map(_synthetic(cells)), asset_url="/maps/assets")
    assert '<script src="/maps/assets/leaflet/leaflet.js"></script>' in linked
    assert '<link rel="stylesheet" href="/maps/assets/leaflet/leaflet.css"/>' in linked
    assert len(html) - len(linked) > 100_000  # inlined Leaflet


def test_an_asset_without_local_copy_is_refused(cells: np.ndarray) -> None:
    m = planner_map(_synthetic(cells))
    Fullscreen().add_to(m)
    with pytest.raises(MapAssetsError, match="no local copy"):
        render(m)


def test_missing_assets_without_npm_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(MapAssetsError, match="install Node.js and npm"):
        install_assets(tmp_path / "assets", npm="no-such-npm-here")


def test_a_tarball_that_is_not_the_registry_s_is_refused(tmp_path: Path) -> None:
    from maps.assets import LEAFLET, _check_integrity

    tarball = tmp_path / "leaflet-1.9.4.tgz"
    tarball.write_bytes(b"not leaflet")
    with pytest.raises(MapAssetsError, match="differs from the registry"):
        _check_integrity(tarball, LEAFLET.integrity)


def test_geo_monitor_never_imports_folium_or_maps() -> None:
    code = ("import sys, geo_monitor.analysis.cubes, geo_monitor.analysis.counts, geo_monitor.analysis.coverage, cli.main; "
            "print(sorted(m for m in ('folium', 'branca', 'maps') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- the stepped layer and its scale ---------------------------------------------------------


def test_scale_is_fitted_to_all_steps_and_stays_fixed() -> None:
    quiet, busy = np.array([[1, 2, 0, 1]]), np.array([[40, 80, 5, 120]])
    scale = fixed_scale(np.vstack([quiet, busy]))
    assert scale.breaks[0] == 1 and scale.breaks[-1] > 2
    assert scale.colour(120) == scale.colors[-1] and scale.colour(1) == scale.colors[0]
    assert scale.colour(0) == scale.zero and scale.colour(None) is None
    assert scale.labels()[-1].startswith("≥")
    assert list(scale.breaks) == sorted(set(scale.breaks))


def test_hexagons_are_written_once_whatever_the_number_of_steps(cells: np.ndarray) -> None:
    short, long = (render(planner_map(_synthetic(cells, t), heat=False)) for t in (2, 24))
    vertex = hexagons.cells_to_polygons(cells[:1])[0].exterior.coords[0]
    needle = f"[{round(vertex[1], PRECISION)},{round(vertex[0], PRECISION)}]"
    assert short.count(needle) == long.count(needle) >= 1
    assert len(long) - len(short) < 22 * len(cells) * 6  # a few bytes per cell and step


def test_heat_layer_is_built_from_hexagon_centres(cells: np.ndarray) -> None:
    html = render(planner_map(_synthetic(cells)))
    data = json.loads(re.search(r"L\.heatLayer\(\s*(\[\[.*?\]\])", html, re.S).group(1))
    lat, lng = hexagons.cells_to_latlng(cells)
    centres = {(round(a, PRECISION), round(b, PRECISION)) for a, b in zip(lat, lng, strict=True)}
    assert data and {(p[0], p[1]) for p in data} <= centres


def test_rates_use_population(cells: np.ndarray) -> None:
    counts = _synthetic(cells)
    counts.population[:3] = 0
    rates = counts.rates()
    assert np.isnan(rates[:, :3]).all()
    html = render(planner_map(counts, measure="rate"))
    assert "pour 1 000 habitants" in html
    with pytest.raises(ValueError, match="measure"):
        planner_map(counts, measure="share")


# --- the coordination map --------------------------------------------------------------------


def test_schedule_table_reads_day_names_and_numbers() -> None:
    table = schedule_table([{"day": "sunday", "start": "20:00", "end": "23:00", "team": "B"},
                            {"day": 0, "start": "08:00", "end": "10:00", "team": "<A>"},
                            {"day": "mer", "start": "09:00", "end": "12:00", "team": "C"}])
    assert table.index("lundi") < table.index("mercredi") < table.index("dimanche")
    assert "&lt;A&gt;" in table and "<A>" not in table
    with pytest.raises(ValueError, match="unknown day"):
        schedule_table([{"day": "someday", "start": "1", "end": "2", "team": "x"}])


def test_uncovered_hotspots_are_hot_cells_outside_every_zone(cells: np.ndarray) -> None:
    polygons = hexagons.cells_to_polygons(cells)
    hot = gpd.GeoDataFrame({"cell": cells, "gi_bin": np.where(np.arange(len(cells)) % 2 == 0, 3, 0),
                            "count": 1, "label": "hot 99%"}, geometry=polygons, crs="EPSG:4326")
    zone = gpd.GeoDataFrame({"name": ["z"], "owner_team": ["t"], "partner_teams": [[]], "schedule": [[]]},
                            geometry=[shapely.union_all(polygons[:10]).buffer(1e-6)], crs="EPSG:4326")
    everything = uncovered_hotspots(hot, None)
    assert (everything["gi_bin"] >= 2).all() and len(everything) == (hot["gi_bin"] >= 2).sum()
    outside = uncovered_hotspots(hot, zone)
    assert set(outside["cell"]) == set(everything["cell"]) - set(cells[:10])


def test_zone_names_cannot_break_out_of_the_script(cells: np.ndarray) -> None:
    zone = gpd.GeoDataFrame({"name": ["</script><script>alert(1)</script>"], "owner_team": ["t"],
                             "partner_teams": [["p"]], "schedule": [[]]},
                            geometry=[hexagons.cells_to_polygons(cells[:1])[0]], crs="EPSG:4326")
    counts = _synthetic(cells, 4)
    counts.step = "week"
    html = render(coordination_map(zone, counts, None, None, None))
    assert "<script>alert(1)" not in html


# --- from the store --------------------------------------------------------------------------


def test_planner_map_from_the_store(maps_db: Settings) -> None:
    with db.connect(maps_db) as conn:
        html = render(build_planner(conn, end=PLANNER_END, settings=maps_db))
    data = re.search(r"gm\.stepLayer\(map_\w+, (\{.*?\}), \{\"scale\"", html, re.S)
    frames = json.loads(data.group(1))["frames"]
    assert [f["key"] for f in frames][:2] == ["2019-01-01", "2019-02-01"] and len(frames) == 36
    assert len(html) < 5_000_000


def test_build_all_writes_three_standalone_pages(maps_db: Settings, tmp_path: Path) -> None:
    with db.connect(maps_db) as conn:
        paths = build_all(conn, tmp_path / "inline", maps_db)
        linked = build_all(conn, tmp_path / "linked", maps_db, inline=False)
    assert [p.name for p in paths] == ["planner.html", "coordination.html", "public.html"]
    for path in paths:
        check_offline(path.read_text())
    assert (tmp_path / "linked" / "assets" / "leaflet" / "leaflet.js").is_file()
    assert 'src="assets/leaflet/leaflet.js"' in linked[0].read_text()
    assert COORDINATION_END.weekday() == 0
    with db.connect(maps_db) as conn:
        zones = demo_zones(conn)
    assert len(zones) == 3
