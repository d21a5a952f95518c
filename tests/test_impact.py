"""Works impact: WDQ and WDD against METHODS §4, then a planted case on a real works site.

The planted events live in 2005, a year no other test uses, and in the connection's own
transaction: the ``conn`` fixture rolls them back when the test ends.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, timedelta

import numpy as np
import psycopg
import pytest
import shapely
from builders import ingest_all, records_in_cells

from geo_monitor import hexagons
from geo_monitor.analysis.impact import MIN_COUNT, e_test, wdd, wdq, works_impact
from geo_monitor.calendar import PARIS, Window
from geo_monitor.errors import InvalidArgumentError, NotFoundError
from geo_monitor.grid import study_grid
from geo_monitor.settings import Settings

BEFORE = Window(date(2005, 2, 1), date(2005, 4, 1))  # 59 days, whole months: the rollup path
AFTER = Window(date(2005, 6, 15), date(2005, 8, 13))  # 59 days, partial months: the events path


# --- pure statistics --------------------------------------------------------------------------

def test_wdd_paper_example() -> None:
    result = wdd(207, 110, 308, 318, 178, 157, 150, 140)
    assert result.estimate == -118
    assert (result.local, result.displacement) == (-107, -11)
    assert result.variance == 1568
    assert round(result.se, 1) == 39.6
    assert round(result.z, 2) == -2.98
    assert tuple(round(x) for x in result.ci) == (-196, -40)
    assert result.conclusive and "reduction" in result.message
    assert any("-118.0" in line and "SE 39.6" in line for line in result.summary())


def test_wdd_time_weights() -> None:
    result = wdd(80, 20, 100, 50, time_weights=(2, 1))
    assert (result.estimate, result.variance, result.displacement) == (-20, 115, None)


def test_wdd_area_weights_and_shared_control() -> None:
    # ptools semantics: each count divided by its weight, variance by the square.
    separate = wdd(30, 12, 40, 40, 20, 26, 40, 40, area_weights=(1, 4, 1, 2))
    assert separate.estimate == pytest.approx((12 - 30) - (40 - 40) / 4 + (26 - 20) - (40 - 40) / 2)
    assert separate.variance == pytest.approx(30 + 12 + 20 + 26 + 80 / 16 + 80 / 4)
    shared = wdd(30, 12, 40, 40, 20, 26, 40, 40, area_weights=(1, 4, 1, 2), shared_control=True)
    assert shared.estimate == separate.estimate
    assert shared.variance == pytest.approx(88 + 80 * (1 / 4 + 1 / 2) ** 2)  # one control, counted once


def test_wdd_too_small_to_conclude() -> None:
    result = wdd(9, 20, 100, 50)
    assert not result.conclusive
    assert (result.z, result.ci, result.p_value) == (None, None, None)
    assert "too small" in result.message and "treated before 9" in result.message
    assert result.exact_p is not None and 0 < result.exact_p < 1
    assert any("too small" in line for line in result.summary())
    assert not any("CI" in line for line in result.summary())
    assert wdd(MIN_COUNT, 20, 100, 50).conclusive


def test_wdd_no_significant_change() -> None:
    result = wdd(100, 95, 100, 100)
    assert result.conclusive and result.ci[0] < 0 < result.ci[1]
    assert "No significant change" in result.message


def test_e_test_matches_ptools() -> None:
    assert e_test(20, 10) == pytest.approx(0.069, abs=5e-4)  # ptools docs: ~0.069
    assert e_test(6, 2) == pytest.approx(e_test(2, 6))
    assert e_test(3, 0) == pytest.approx(e_test(3, 0, 2, 2))
    assert e_test(0, 0) is None


def test_wdq_methods_check() -> None:
    result = wdq(100, 50, 100, 150, 100, 100)
    assert (result.sm, result.bdm, result.wdq) == (-0.5, 0.5, -1.0)
    assert result.interpretable and "displacement" in result.interpretation


@pytest.mark.parametrize(("b1", "expected"), [
    (30, "larger than the direct effect"),    # BDM -0.7 / SM -0.5 = 1.4
    (80, "some diffusion"),                   # 0.4
    (100, "neither"),                         # 0
    (130, "no larger than the gain"),         # -0.6
    (180, "outweighs"),                       # -1.6
])
def test_wdq_bands(b1: int, expected: str) -> None:
    result = wdq(100, 50, 100, b1, 100, 100)
    assert result.interpretable and expected in result.interpretation, result


def test_wdq_not_interpretable_or_unstable() -> None:
    up = wdq(50, 60, 100, 80, 100, 100)
    assert not up.interpretable and math.isnan(up.wdq)
    assert "no reduction in the treated area: WDQ not interpretable" in up.interpretation
    assert "not interpretable" in up.summary()[1]
    flat = wdq(100, 98, 100, 90, 100, 100)
    assert flat.interpretable and flat.unstable and "unstable" in flat.interpretation
    assert "undefined" in wdq(10, 5, 10, 10, 0, 10).interpretation
    tiny = wdq(20, 5, 20, 30, 40, 40)
    assert tiny.interpretable and tiny.small and "too small to conclude" in tiny.interpretation
    assert not wdq(100, 50, 100, 150, 100, 100).small


@pytest.mark.parametrize(("call", "message"), [
    (lambda: wdd(-1, 2, 3, 4), "non-negative"),
    (lambda: wdd(1, 2, 3, 4, 5, 6), "all four displacement"),
    (lambda: wdd(1, 2, 3, 4, 5, 6, 7, 8, shared_control=True), "shared_control"),
    (lambda: wdd(1, 2, 3, 4, time_weights=(1, 0)), "positive"),
    (lambda: wdd(1, 2, 3, 4, alpha=1.5), "alpha"),
    (lambda: wdq(1, 2, 3, float("nan"), 5, 6), "non-negative"),
])
def test_statistics_bad_arguments(call, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        call()


# --- the database case ------------------------------------------------------------------------

@pytest.fixture
def site(loaded_db: Settings, conn: psycopg.Connection) -> tuple[str, shapely.Geometry, date, date]:
    """A real works site of the 19th arrondissement, with its polygon and Paris first/last days."""
    row = conn.execute(
        "SELECT id, ST_AsBinary(geom), starts_at, ends_at FROM works_sites WHERE arrondissement = 75119 "
        "AND starts_at IS NOT NULL AND ends_at IS NOT NULL ORDER BY id LIMIT 1").fetchone()
    assert row is not None, "no dated works site in the 19th arrondissement: is the works layer loaded?"
    return row[0], shapely.from_wkb(row[1]), row[2].astimezone(PARIS).date(), row[3].astimezone(PARIS).date()


def source_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:64]


def plant(conn: psycopg.Connection, settings: Settings, source: str, events: list[tuple[int, str, str, str]]) -> None:
    """Ingest (cell, category, kind, occurred_at) events at their cells' centres."""
    cells, categories, kinds, times = zip(*events, strict=True)
    ingest_all(conn, settings, records_in_cells(cells, kind=kinds, category=categories, occurred_at=times,
                                                ids=[f"e{i}" for i in range(len(events))], source=source), source)


def spread(cell: int, n: int, window: Window, category: str = "aggression", kind: str = "incident") -> list:
    """n events in a cell, one a day from the window's start, 10:00 UTC."""
    return [(cell, category, kind, f"{window.start + timedelta(days=i % 50)}T10:00:00Z") for i in range(n)]


def test_works_impact_planted(loaded_db: Settings, conn: psycopg.Connection, site: tuple,
                              request: pytest.FixtureRequest) -> None:
    site_id, polygon, *_ = site
    grid = study_grid(conn, 10)
    a = np.intersect1d(hexagons.polygon_to_cells(polygon, 10, "overlap"), grid)
    b = np.setdiff1d(np.intersect1d(hexagons.grid_disk(a, 1), grid), a)
    c = np.setdiff1d(grid, hexagons.grid_disk(a, 2))
    area = shapely.from_wkb(conn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0])
    lat, lng = hexagons.cells_to_latlng(c)
    c_inner = c[shapely.contains_xy(area, lng, lat)]  # ingest accepts their centres
    options = {"before": BEFORE, "after": (AFTER.start.isoformat(), AFTER.end), "categories": ["aggression"],
               "settings": loaded_db}
    empty = works_impact(conn, site_id, **options)
    assert empty.counts[["before", "after"]].to_numpy().sum() == 0, "aggression events already stored in 2005"
    assert "too small" in " ".join(empty.summary())

    events = (spread(a[0], 29, BEFORE) + [(a[0], "aggression", "incident", "2005-03-31T23:30:00+02:00")]
              + spread(a[0], 9, AFTER) + [(a[0], "aggression", "incident", "2005-06-15T00:00:00+02:00")] * 2
              + [(a[0], "aggression", "incident", "2005-08-12T23:59:00+02:00")]
              + spread(b[0], 10, BEFORE) + spread(b[-1], 10, BEFORE) + spread(b[0], 13, AFTER) + spread(b[-1], 13, AFTER)
              + spread(c_inner[0], 20, BEFORE) + spread(c_inner[-1], 20, BEFORE)
              + spread(c_inner[0], 15, AFTER) + spread(c_inner[-1], 25, AFTER)
              # outside both windows, another category, another kind: none may count
              + [(a[0], "aggression", "incident", "2005-04-01T00:30:00+02:00")] * 5
              + [(a[0], "aggression", "incident", "2005-08-13T00:00:00+02:00")] * 3
              + spread(a[0], 7, BEFORE, "dealing") + spread(a[0], 4, AFTER, "contact", "outreach"))
    plant(conn, loaded_db, source_name(request), events)

    result = works_impact(conn, site_id, **options)

    assert [np.sort(result.cell_counts.index[result.cell_counts["area"] == k]).tolist() for k in "ABC"] == \
        [a.tolist(), b.tolist(), c.tolist()]
    assert result.counts.to_dict("index") == {"A": {"cells": len(a), "before": 30, "after": 12},
                                              "B": {"cells": len(b), "before": 20, "after": 26},
                                              "C": {"cells": len(c), "before": 40, "after": 40}}
    assert (result.wdq.sm, result.wdq.bdm) == pytest.approx((12 / 40 - 30 / 40, 26 / 40 - 20 / 40))
    assert result.wdq.wdq == pytest.approx(-1 / 3) and "no larger than the gain" in result.wdq.interpretation
    assert result.time_weights == (1.0, 1.0)
    assert result.area_weights == pytest.approx((1, len(c) / len(a), 1, len(c) / len(b)))
    assert (result.wdd.estimate, result.wdd.local, result.wdd.displacement) == pytest.approx((-12, -18, 6))
    assert result.wdd.variance == pytest.approx(88 + 80 * ((len(a) + len(b)) / len(c)) ** 2)
    assert result.conclusive and result.wdd.ci[0] < -12 < result.wdd.ci[1]

    frame = result.to_frame()
    assert len(frame) == 6 and frame.set_index(["area", "period"])["count"].to_dict() == {
        ("A", "before"): 30, ("A", "after"): 12, ("B", "before"): 20, ("B", "after"): 26,
        ("C", "before"): 40, ("C", "after"): 40}
    cells = result.cells_frame()
    assert cells.crs.to_epsg() == 4326 and len(cells) == len(a) + len(b) + len(c)
    assert json.loads(json.dumps(result.to_geojson()))["type"] == "FeatureCollection"
    feature = result.to_geojson()["features"][0]
    assert isinstance(feature["properties"]["h3"], str) and "cell" not in feature["properties"]
    text = "\n".join(result.summary())
    assert site_id in text and "WDD" in text and "WDQ" in text and "too small" not in text


def test_works_impact_unequal_windows_and_defaults(loaded_db: Settings, conn: psycopg.Connection, site: tuple) -> None:
    site_id, _, first, last = site
    result = works_impact(conn, site_id, before=("2005-01-01", "2005-03-01"), after=("2005-06-01", "2005-06-30"),
                          settings=loaded_db)
    assert result.time_weights == (59 / 29, 1.0)
    assert any("differ in length" in note for note in result.notes)
    default = works_impact(conn, site_id, settings=loaded_db)
    length = last + timedelta(days=1) - first
    assert default.before == Window(first - length, first)
    assert default.after == Window(last + timedelta(days=1), last + timedelta(days=1) + length)


def test_works_impact_bad_arguments(loaded_db: Settings, conn: psycopg.Connection, site: tuple) -> None:
    site_id = site[0]
    with pytest.raises(NotFoundError, match="NO-SUCH-SITE"):
        works_impact(conn, "NO-SUCH-SITE", before=BEFORE, after=AFTER, settings=loaded_db)
    with pytest.raises(InvalidArgumentError, match="must come after its start"):
        works_impact(conn, site_id, before=("2005-03-01", "2005-02-01"), after=AFTER, settings=loaded_db)
    with pytest.raises(InvalidArgumentError, match="overlap"):
        works_impact(conn, site_id, before=BEFORE, after=("2005-03-15", "2005-05-01"), settings=loaded_db)
    with pytest.raises(InvalidArgumentError, match="resolution 3 is not served"):
        works_impact(conn, site_id, before=BEFORE, after=AFTER, resolution=3, settings=loaded_db)
    with pytest.raises(InvalidArgumentError, match="ring must be at least 1"):
        works_impact(conn, site_id, before=BEFORE, after=AFTER, ring=0, settings=loaded_db)
    with pytest.raises(InvalidArgumentError, match="unknown category"):
        works_impact(conn, site_id, before=BEFORE, after=AFTER, categories=["noise"], settings=loaded_db)
    future = date.today() + timedelta(days=30)
    with pytest.raises(InvalidArgumentError, match="not yet past"):
        works_impact(conn, site_id, before=BEFORE, after=(future, future + timedelta(days=5)), settings=loaded_db)
    outside = conn.execute("SELECT w.id FROM works_sites w, study_area s WHERE NOT ST_Intersects(w.geom, s.geom) "
                           "ORDER BY w.id LIMIT 1").fetchone()
    assert outside is not None, "the works layer has no site outside the study area any more"
    with pytest.raises(InvalidArgumentError, match="outside the study area"):
        works_impact(conn, outside[0], before=BEFORE, after=AFTER, settings=loaded_db)
