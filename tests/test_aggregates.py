"""Hexagon aggregates on the real PostGIS: ``hex_counts`` against a brute-force count.

The brute force reads the stored points (ST_X/ST_Y), filters kinds and categories by name
and the window on the Europe/Paris calendar day in SQL, then indexes each point with h3-py
(resolution 11, then ``cell_to_parent``) in Python: nothing is shared with the library's
path (rollups, ``h3_parent`` in SQL, h3ronpy). The session database is shared with other
test modules that ingest their own events, so every expected count is computed over all
stored events matching the slice, never assumed from this module's file.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import date, timedelta
from functools import cache

import h3
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from builders import ingest_sample
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from geo_monitor.analysis.counts import count_cells, hex_counts
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.grid import study_grid
from geo_monitor.settings import Settings

SOURCE = "test_aggregates"
N_EVENTS = 20_000
SEED = 1818
IRIS_POPULATION = 668_629
INCIDENT = ["consumption_gathering", "drug_litter", "dealing", "aggression", "resident_complaint",
            "police_intervention"]
OUTREACH = ["contact", "harm_reduction_kit", "care_referral", "accommodation_referral",
            "rest_space_referral"]
WORKS = ["redesign", "roadworks", "lighting", "fencing", "cleaning"]
# Around Stalingrad / La Villette: straddles the 10e, 18e and 19e.
STALINGRAD = shapely.box(2.355, 48.878, 2.378, 48.892)
AREAS = [None, "arrondissement:75118", "quartier:7511803", "quartier:7511901", "polygon", "geojson"]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_db(loaded_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session database with a 20,000-event sample ingested under this module's source."""
    ingest_sample(loaded_db, tmp_path_factory.mktemp("aggregates"), N_EVENTS, seed=SEED, source=SOURCE)
    return loaded_db


@pytest.fixture(scope="module")
def mconn(sample_db: Settings, mconn: psycopg.Connection) -> psycopg.Connection:
    """The module's autocommit connection, once the sample is in (hypothesis re-runs a test body many times)."""
    return mconn


# --- brute force -----------------------------------------------------------------------------


@cache
def _fine_cell(lon: float, lat: float) -> str:
    return h3.latlng_to_cell(lat, lon, 11)


def area_shape(conn: psycopg.Connection, area: object) -> shapely.Geometry | None:
    """The geometry of an area argument, read independently of the library."""
    if area is None:
        return None
    if isinstance(area, shapely.Geometry):
        return area
    if isinstance(area, dict):
        return shapely.geometry.shape(area.get("geometry", area))
    kind, _, code = str(area).partition(":")
    table = {"arrondissement": "arrondissements", "quartier": "quartiers"}[kind]
    row = conn.execute(f"SELECT ST_AsBinary(geom) FROM {table} WHERE code = %s", (int(code),)).fetchone()
    return shapely.from_wkb(row[0])


def brute_force(conn: psycopg.Connection, *, start: date | str, end: date | str, resolution: int,
                kinds: list[str] | None = None, categories: list[str] | None = None,
                area: object = None) -> dict[int, int]:
    """Count the stored events of a slice per cell, the slow and obvious way."""
    where = ["(e.occurred_at AT TIME ZONE 'Europe/Paris')::date >= %(start)s",
             "(e.occurred_at AT TIME ZONE 'Europe/Paris')::date < %(end)s"]
    if kinds:
        where.append("k.name = ANY(%(kinds)s)")
    if categories:
        where.append("c.name = ANY(%(categories)s)")
    rows = conn.execute(
        "SELECT ST_X(e.geom), ST_Y(e.geom) FROM events e JOIN kinds k ON k.id = e.kind_id "
        f"JOIN categories c ON c.id = e.category_id WHERE {' AND '.join(where)}",
        {"start": date.fromisoformat(str(start)), "end": date.fromisoformat(str(end)),
         "kinds": kinds, "categories": categories},
    ).fetchall()
    counts: Counter[str] = Counter()
    for lon, lat in rows:
        cell = _fine_cell(lon, lat)
        counts[cell if resolution == 11 else h3.cell_to_parent(cell, resolution)] += 1
    geometry = area_shape(conn, area)
    if geometry is not None:  # hex_counts keeps the cells whose centre lies in the area
        counts = Counter({c: n for c, n in counts.items() if geometry.contains(shapely.Point(h3.cell_to_latlng(c)[::-1]))})
    return {h3.str_to_int(c): n for c, n in counts.items()}


def as_dict(frame: pd.DataFrame) -> dict[int, int]:
    return {int(c): int(n) for c, n in zip(frame["cell"], frame["count"], strict=True)}


def area_argument(name: str | None) -> object:
    if name == "polygon":
        return STALINGRAD
    if name == "geojson":
        return {"type": "Feature", "properties": {}, "geometry": shapely.geometry.mapping(STALINGRAD)}
    return name


def assert_matches(conn: psycopg.Connection, **query: object) -> pd.DataFrame:
    frame = hex_counts(conn, **query)
    expected = brute_force(conn, **{k: v for k, v in query.items() if k != "settings"})
    got = as_dict(frame)
    missing = {c: n for c, n in expected.items() if got.get(c) != n}
    extra = {c: n for c, n in got.items() if c not in expected}
    assert got == expected, f"{query}: {len(missing)} cells differ (e.g. {list(missing.items())[:3]}), {len(extra)} extra"
    return frame


# --- counts against the brute force ----------------------------------------------------------


def test_sample_is_stored_with_the_cells_h3_py_gives(mconn: psycopg.Connection) -> None:
    rows = mconn.execute(
        "SELECT ST_X(e.geom), ST_Y(e.geom), h3_r7, h3_r8, h3_r9, h3_r10, h3_r11 FROM events e "
        "JOIN sources s ON s.id = e.source_id WHERE s.name = %s ORDER BY e.id LIMIT 2000", (SOURCE,)
    ).fetchall()
    assert len(rows) == 2000
    for lon, lat, *cells in rows:
        fine = _fine_cell(lon, lat)
        assert cells == [h3.str_to_int(h3.cell_to_parent(fine, r)) for r in (7, 8, 9, 10)] + [h3.str_to_int(fine)]


WINDOWS = [
    ("2020-03-17", "2020-09-05"),  # partial months at both ends, whole months between, spring DST
    ("2020-10-20", "2020-11-03"),  # across the autumn DST change, no whole month
    ("2021-06-03", "2021-06-21"),  # inside one month
    ("2020-01-01", "2021-01-01"),  # a whole year
    ("2019-01-01", "2022-01-01"),  # everything
    ("2019-12-31", "2020-02-01"),  # one edge day then a whole month
    ("2020-02-29", "2020-03-01"),  # one (leap) day
    ("2021-03-01", "2021-03-28"),  # month start, ends on a DST day
]


@pytest.mark.parametrize("resolution", [7, 8, 9, 10, 11])
@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_all_events_per_window_and_resolution(mconn: psycopg.Connection, start: str, end: str,
                                              resolution: int) -> None:
    frame = assert_matches(mconn, start=start, end=end, resolution=resolution)
    assert frame["count"].sum() > 0


SLICES = [
    {"kinds": ["incident"]},
    {"kinds": ["outreach"]},
    {"kinds": ["works"]},
    {"categories": ["dealing", "drug_litter"]},
    {"kinds": ["incident", "outreach"], "categories": ["consumption_gathering", "contact"]},
    {"categories": ["lighting"]},  # a name both incident and works use
    {"kinds": ["works"], "categories": ["lighting"]},
]


@pytest.mark.parametrize("area", AREAS)
@pytest.mark.parametrize("query", SLICES, ids=lambda q: "-".join(q.get("kinds", []) + q.get("categories", [])))
def test_slices_and_areas(mconn: psycopg.Connection, query: dict, area: str | None) -> None:
    for resolution, (start, end) in ((9, WINDOWS[0]), (10, WINDOWS[2]), (8, WINDOWS[3])):
        assert_matches(mconn, start=start, end=end, resolution=resolution, area=area_argument(area), **query)


@st.composite
def slices(draw: st.DrawFn) -> dict:
    kinds = draw(st.sampled_from([None, ["incident"], ["outreach"], ["works"], ["incident", "outreach"]]))
    names = sorted({c for k in (kinds or ["incident", "outreach", "works"])
                    for c in {"incident": INCIDENT, "outreach": OUTREACH, "works": WORKS}[k]})
    categories = draw(st.none() | st.lists(st.sampled_from(names), min_size=1, max_size=4, unique=True))
    start = draw(st.dates(date(2018, 12, 1), date(2021, 12, 31)))
    length = draw(st.sampled_from([1, 7, 30, 31, 45, 100, 365, 366, 400, 800]) | st.integers(1, 800))
    return {"start": start, "end": start + timedelta(days=length), "kinds": kinds, "categories": categories,
            "resolution": draw(st.integers(7, 11)), "area": area_argument(draw(st.sampled_from(AREAS)))}


@hypothesis_settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=slices())
def test_random_slices(mconn: psycopg.Connection, query: dict) -> None:
    assert_matches(mconn, **query)


def test_count_cells_accepts_dates_and_strings_alike(mconn: psycopg.Connection) -> None:
    by_string = hex_counts(mconn, start="2020-03-17", end="2020-09-05", resolution=9)
    by_date = hex_counts(mconn, start=date(2020, 3, 17), end=date(2020, 9, 5), resolution=9)
    assert as_dict(by_string) == as_dict(by_date)


# --- parents are sums of children ------------------------------------------------------------


@pytest.mark.parametrize(("start", "end"), WINDOWS[:4])
@pytest.mark.parametrize("resolution", [7, 8, 9, 10])
def test_parent_is_the_sum_of_its_children(mconn: psycopg.Connection, start: str, end: str,
                                           resolution: int) -> None:
    parents = as_dict(hex_counts(mconn, start=start, end=end, resolution=resolution, kinds=["incident"]))
    children = hex_counts(mconn, start=start, end=end, resolution=resolution + 1, kinds=["incident"])
    summed: Counter[int] = Counter()
    for cell, n in as_dict(children).items():
        summed[h3.str_to_int(h3.cell_to_parent(h3.int_to_str(cell), resolution))] += n
    assert parents == dict(summed)


# --- the output frame ------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [7, 9, 10, 11])
def test_include_empty_covers_the_study_grid_with_residents_rates_and_shares(mconn: psycopg.Connection,
                                                                               resolution: int) -> None:
    frame = hex_counts(mconn, start="2020-01-01", end="2021-01-01", resolution=resolution, include_empty=True)
    grid = study_grid(mconn, resolution)
    assert len(frame) == len(grid)
    assert np.array_equal(frame["cell"].to_numpy(), grid)
    assert frame["cell"].is_monotonic_increasing and frame["cell"].dtype == np.int64
    assert frame.crs.to_epsg() == 4326
    iris_total = mconn.execute("SELECT sum(population) FROM iris").fetchone()[0]
    assert iris_total == IRIS_POPULATION
    assert abs(frame["population"].sum() - IRIS_POPULATION) <= 1
    expected_rate = np.where(frame["population"] >= 1, frame["count"] / frame["population"] * 1000, np.nan)
    np.testing.assert_allclose(frame["rate_per_1000"].to_numpy(), expected_rate, equal_nan=True)
    assert math.isclose(frame["share"].sum(), 1.0, rel_tol=1e-9)
    np.testing.assert_allclose(frame["share"], frame["count"] / frame["count"].sum())
    non_empty = frame[frame["count"] > 0]
    assert as_dict(non_empty) == brute_force(mconn, start="2020-01-01", end="2021-01-01", resolution=resolution)
    if resolution >= 9:  # at 7 the ten cells all hold events
        assert (frame["count"] == 0).any()


def test_include_empty_with_an_area_keeps_the_grid_cells_centred_in_it(mconn: psycopg.Connection) -> None:
    frame = hex_counts(mconn, start="2021-01-01", end="2021-07-01", resolution=9, area="arrondissement:75118",
                       include_empty=True)
    shape = area_shape(mconn, "arrondissement:75118")
    grid = study_grid(mconn, 9)
    inside = [c for c in grid if shape.contains(shapely.Point(h3.cell_to_latlng(h3.int_to_str(int(c)))[::-1]))]
    assert frame["cell"].tolist() == inside
    assert as_dict(frame[frame["count"] > 0]) == brute_force(mconn, start="2021-01-01", end="2021-07-01",
                                                             resolution=9, area="arrondissement:75118")


def test_frame_columns_hex_strings_and_geometries(mconn: psycopg.Connection) -> None:
    frame = hex_counts(mconn, start="2021-01-01", end="2021-02-01", resolution=9, kinds=["outreach"])
    assert list(frame.columns) == ["cell", "h3", "count", "population", "rate_per_1000", "share", "geometry"]
    assert len(frame) > 0
    for cell, text, polygon in zip(frame["cell"][:20], frame["h3"][:20], frame.geometry[:20], strict=True):
        assert text == h3.int_to_str(int(cell))
        boundary = shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(text)])
        assert polygon.equals_exact(boundary, 1e-9) or polygon.normalize().equals_exact(boundary.normalize(), 1e-9)


def test_empty_slice_gives_an_empty_frame(mconn: psycopg.Connection) -> None:
    frame = hex_counts(mconn, start="2030-01-01", end="2030-03-01", resolution=9)
    assert len(frame) == 0
    assert list(frame.columns) == ["cell", "h3", "count", "population", "rate_per_1000", "share", "geometry"]
    empty = hex_counts(mconn, start="2030-01-01", end="2030-03-01", resolution=8, include_empty=True)
    assert len(empty) == len(study_grid(mconn, 8)) and empty["count"].sum() == 0
    assert (empty["share"] == 0).all()


def test_count_cells_core_query(mconn: psycopg.Connection) -> None:
    from geo_monitor.analysis.counts import category_ids
    from geo_monitor.calendar import Window

    ids = category_ids(mconn, ["incident"], ["dealing"])
    series = count_cells(mconn, ids, Window.of("2020-03-17", "2020-09-05"), 10)
    assert series.index.dtype == np.int64 and series.dtype == np.int64
    assert dict(series.items()) == brute_force(mconn, start="2020-03-17", end="2020-09-05", resolution=10,
                                               kinds=["incident"], categories=["dealing"])


# --- bad arguments ---------------------------------------------------------------------------

FAR_AWAY = shapely.box(5.36, 43.29, 5.40, 43.31)  # Marseille
BAD = [  # (arguments, message, InvalidArgumentError.parameter)
    ({"categories": ["unicorns"]}, r"unknown category 'unicorns'", "category"),
    ({"kinds": ["incident"], "categories": ["contact"]}, r"unknown category 'contact' for kind\(s\) incident", "category"),
    ({"kinds": ["weather"]}, r"unknown kind 'weather'", "kind"),
    ({"resolution": 3}, r"resolution 3 is not served", "resolution"),
    ({"resolution": 12}, r"resolution 12 is not served", "resolution"),
    ({"start": "2021-02-01", "end": "2021-01-01"}, r"end 2021-01-01 must come after its start 2021-02-01", "end"),
    ({"start": "2021-02-01", "end": "2021-02-01"}, r"end 2021-02-01 must come after its start 2021-02-01", "end"),
    ({"start": "2021/02/01"}, r"(?=.*YYYY-MM-DD)(?=.*2021/02/01)", "start"),
    ({"end": "next tuesday"}, r"(?=.*YYYY-MM-DD)(?=.*next tuesday)", "end"),
    ({"start": "2021-13-01"}, r"(?=.*YYYY-MM-DD)(?=.*2021-13-01)", "start"),
    ({"end": "2021-02-30"}, r"(?=.*YYYY-MM-DD)(?=.*2021-02-30)", "end"),
    ({"area": "arrondissement:75101"}, r"area.*outside the study area", "area"),
    ({"area": FAR_AWAY}, r"area.*outside the study area", "area"),
    ({"area": shapely.geometry.mapping(FAR_AWAY)}, r"area.*outside the study area", "area"),
    ({"area": "quartier:99"}, r"area 'quartier:99': no quartier with INSEE code 99", "area"),
    ({"area": "arrondissement:75199"}, r"area 'arrondissement:75199': no arrondissement", "area"),
    ({"area": "north-east"}, r"area 'north-east': expected arrondissement:CODE", "area"),
    ({"area": ""}, r"area '': expected arrondissement:CODE", "area"),
    ({"area": "arrondissement:abc"}, r"area 'arrondissement:abc': expected", "area"),
    ({"area": "arrondissement: 75118"}, r"area 'arrondissement: 75118': expected", "area"),
    ({"area": "iris:751187101"}, r"area 'iris:751187101': expected", "area"),
    ({"area": "quartier:99999999999999999999999"}, r"no quartier", "area"),
    ({"area": {"type": "Point", "coordinates": [2.36, 48.88]}}, r"area must be a valid Polygon", "area"),
    ({"area": shapely.Polygon([(2.35, 48.88), (2.37, 48.89), (2.37, 48.88), (2.35, 48.89)])}, r"area must be a valid Polygon", "area"),  # a bow tie
    ({"area": {"type": "Polygon", "coordinates": [[[2.35, 48.88], [2.36, 48.88]]]}}, r"area is not a GeoJSON", "area"),
    ({"area": {"type": "Polygon", "coordinates": "nope"}}, r"area is not a GeoJSON", "area"),
    ({"area": {"type": "Circle", "coordinates": [2.36, 48.88]}}, r"area is not a GeoJSON", "area"),
]


@pytest.mark.parametrize(("override", "message", "parameter"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_arguments_name_the_parameter_and_value(mconn: psycopg.Connection, override: dict,
                                                    message: str, parameter: str) -> None:
    query = {"start": "2021-01-01", "end": "2021-02-01", "resolution": 9, **override}
    with pytest.raises(InvalidArgumentError, match=message) as caught:
        hex_counts(mconn, **query)
    assert isinstance(caught.value, ValueError)
    assert caught.value.parameter == parameter


def test_settings_restrict_the_served_resolutions(mconn: psycopg.Connection, sample_db: Settings) -> None:
    narrow = sample_db.model_copy(update={"resolutions": [8, 9]})
    hex_counts(mconn, start="2021-01-01", end="2021-02-01", resolution=8, settings=narrow)
    with pytest.raises(InvalidArgumentError, match=r"resolution 10 is not served; choose one of 8, 9"):
        hex_counts(mconn, start="2021-01-01", end="2021-02-01", resolution=10, settings=narrow)


@pytest.mark.parametrize("area", [None, "arrondissement:75118"])
@pytest.mark.parametrize("include_empty", [False, True])
def test_counts_without_geometry_are_the_same_table(mconn: psycopg.Connection, area: str | None,
                                                     include_empty: bool) -> None:
    """The API's fast path (no polygons) answers the same rows, columns and values as the full one."""
    query = {"start": "2020-03-17", "end": "2020-05-09", "resolution": 9, "area": area, "include_empty": include_empty}
    full = hex_counts(mconn, **query)
    plain = hex_counts(mconn, **query, geometry=False)
    assert "geometry" not in plain
    pd.testing.assert_frame_equal(pd.DataFrame(full.drop(columns="geometry")), plain, check_dtype=False)
    assert plain["cell"].is_monotonic_increasing and plain["count"].sum() > 0
