"""The public release on the real PostGIS: layout, storage, repeat requests, budget, immutability.

Every event of the months used here (2015) is planted by this module: other modules ingest
other years, and the privacy ledger is per data month, so nothing else interferes.
"""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from builders import in_month, ingest_all, records_in_cells

from geo_monitor import db, hexagons
from geo_monitor.calendar import parse_month
from geo_monitor.errors import InvalidArgumentError, NotFoundError, PrivacyBudgetError
from geo_monitor.privacy import noise
from geo_monitor.privacy.release import create_release, layout
from geo_monitor.privacy.releases import get_release, list_releases, rolling_view
from geo_monitor.settings import Settings

CATEGORY = {"drugs": ("incident", "dealing"), "safety": ("incident", "aggression"),
            "public_space": ("incident", "graffiti"), "outreach": ("outreach", "contact")}


def inner_cells(conn: psycopg.Connection, settings: Settings) -> np.ndarray:
    """Release cells whose centre lies in the study area (an event planted there is accepted)."""
    frame = layout(conn, settings)
    area = shapely.from_wkb(conn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0])
    lat, lng = hexagons.cells_to_latlng(frame.cells)
    return frame.cells[shapely.contains_xy(area, lng, lat)]


def plant(conn: psycopg.Connection, settings: Settings, source: str, month: str,
          counts: dict[tuple[str, int], int]) -> pd.DataFrame:
    """Ingest ``n`` events of group ``g`` at the centre of cell ``c`` for each ((g, c), n), spread over the month."""
    rows = [(cell, *CATEGORY[group], at, f"{source}-{group}-{cell}-{i}")
            for (group, cell), n in counts.items() for i, at in enumerate(in_month(month, n))]
    cells, kinds, categories, times, ids = zip(*rows, strict=True)
    records = records_in_cells(cells, kind=kinds, category=categories, occurred_at=times, ids=ids)
    return ingest_all(conn, settings, records, source)


@pytest.fixture(scope="module")
def january(loaded_db: Settings, mconn: psycopg.Connection) -> dict:
    """2015-01: a few busy hexagons per group, small ones, outreach in two arrondissements; released once."""
    cells = inner_cells(mconn, loaded_db)
    rng = np.random.default_rng(2015)
    picked = rng.choice(cells, 40, replace=False)
    counts = {}
    for g, group in enumerate(("drugs", "safety", "public_space")):
        for cell in picked[g * 10:g * 10 + 4]:
            counts[(group, int(cell))] = int(rng.integers(60, 120))
        for cell in picked[g * 10 + 4:g * 10 + 10]:
            counts[(group, int(cell))] = int(rng.integers(1, 11))
    for cell in picked[30:36]:
        counts[("outreach", int(cell))] = int(rng.integers(20, 80))
    plant(mconn, loaded_db, "test_release_january", "2015-01", counts)
    release = create_release(mconn, "2015-01", settings=loaded_db)
    return {"counts": counts, "release": release}


# --- months ----------------------------------------------------------------------------------


def test_month_must_be_a_whole_past_month() -> None:
    today = date(2024, 5, 17)
    assert parse_month("2024-04", today) == date(2024, 4, 1)
    assert parse_month(date(2023, 2, 14), today) == date(2023, 2, 1)
    for bad in ("2024-05", "2024-06", "2031-01"):
        with pytest.raises(InvalidArgumentError, match="not over yet"):
            parse_month(bad, today)
    for bad in ("2024-13", "May 2024", "2024/04"):
        with pytest.raises(InvalidArgumentError, match="YYYY-MM"):
            parse_month(bad, today)


def test_month_without_data_is_refused(loaded_db: Settings, mconn: psycopg.Connection) -> None:
    with pytest.raises(NotFoundError, match="no incident or outreach event is stored for 2015-05"):
        create_release(mconn, "2015-05", settings=loaded_db)
    assert mconn.execute("SELECT count(*) FROM privacy_ledger WHERE month = '2015-05-01'").fetchone()[0] == 0


# --- layout ----------------------------------------------------------------------------------


def test_layout_is_the_study_grid_with_one_arrondissement_per_cell(loaded_db: Settings,
                                                                  mconn: psycopg.Connection) -> None:
    from geo_monitor.grid import study_grid

    frame = layout(mconn, loaded_db)
    assert np.array_equal(frame.cells, study_grid(mconn, loaded_db.release_resolution))
    assert frame.codes.tolist() == [75110, 75118, 75119, 75120]
    assert set(frame.arrondissement.tolist()) == set(frame.codes.tolist())
    assert frame.groups == ("drugs", "safety", "public_space")
    # A cell whose centre lies in an arrondissement belongs to it.
    lat, lng = hexagons.cells_to_latlng(frame.cells)
    for code in frame.codes.tolist():
        geom = shapely.from_wkb(mconn.execute("SELECT ST_AsBinary(geom) FROM arrondissements WHERE code = %s",
                                              (code,)).fetchone()[0])
        inside = shapely.contains_xy(geom, lng, lat)
        assert (frame.arrondissement[inside] == code).all()
    assert len(frame.incident_categories()) == 3 * len(frame.cells)


# --- the release -------------------------------------------------------------------------------


def test_release_metadata_and_ledger(loaded_db: Settings, mconn: psycopg.Connection, january: dict) -> None:
    release = january["release"]
    assert (release.version, release.resolution, release.k, release.contributions) == (1, 9, 11, 1)
    assert release.epsilon <= loaded_db.release_epsilon
    assert release.tau == noise.display_threshold(11, release.scales["incidents"], 1, 1e-6) == 27
    ledger = mconn.execute("SELECT query, epsilon, contributions FROM privacy_ledger WHERE release_id = %s "
                           "ORDER BY query", (release.id,)).fetchall()
    assert [q for q, _, _ in ledger] == ["incidents", "outreach"]
    assert sum(e for _, e, _ in ledger) == pytest.approx(release.epsilon)
    assert release.budget.spent_month == pytest.approx(1.0) and release.budget.left_month == pytest.approx(0)
    text = "\n".join(release.summary())
    assert "2015-01 v1: created" in text and "one event is the unit" in text and "left 0" in text


def test_busy_cells_are_shown_small_ones_not(january: dict) -> None:
    cells = january["release"].cells.set_index(["group", "cell"])
    for (group, cell), n in january["counts"].items():
        if group == "outreach":
            continue
        row = cells.loc[(group, cell)]
        if n < 11:
            assert row["suppressed"] and pd.isna(row["value"])
        elif n >= 80:  # 80 - 27 = 53 units of noise at scale 1.25: never in practice
            assert not row["suppressed"] and abs(row["value"] - n) < 40


def test_published_numbers_are_consistent(january: dict) -> None:
    release = january["release"]
    cells, totals = release.cells, release.totals
    shown = cells.loc[~cells["suppressed"], "value"]
    assert (shown >= release.tau).all() and shown.dtype == "Int64"
    for group, part in totals.groupby("group"):
        study = part.loc[part["arrondissement"].isna()].iloc[0]
        arrs = part.loc[part["arrondissement"].notna()]
        if not study["suppressed"] and not arrs["suppressed"].any():
            assert study["value"] == arrs["value"].sum()
        if group == "outreach":
            continue
        for _, arr in arrs.iterrows():
            children = cells[(cells["group"] == group) & (cells["arrondissement"] == arr["arrondissement"])]
            if not arr["suppressed"] and not children["suppressed"].any():
                assert arr["value"] == children["value"].sum()
    values = pd.concat([cells["value"], totals["value"]]).dropna()
    assert (values >= 0).all()
    assert not cells.loc[cells["group"] == "outreach"].shape[0]  # outreach never below arrondissement


def test_repeat_request_returns_the_same_numbers(loaded_db: Settings, mconn: psycopg.Connection,
                                                 january: dict) -> None:
    first = january["release"]
    again = create_release(mconn, "2015-01", settings=loaded_db)
    read = get_release(mconn, "2015-01")
    assert again.id == read.id == first.id and not again.created and first.created
    for other in (again, read):
        pd.testing.assert_frame_equal(other.cells, first.cells)
        pd.testing.assert_frame_equal(other.totals, first.totals)
        assert other.to_geojson() == first.to_geojson()
    spent = mconn.execute("SELECT sum(epsilon) FROM privacy_ledger WHERE month = '2015-01-01'").fetchone()[0]
    assert spent == pytest.approx(first.epsilon)
    assert "stored (a repeat request" in again.summary()[0]


def test_budget_refusal(loaded_db: Settings, mconn: psycopg.Connection, january: dict) -> None:
    with pytest.raises(PrivacyBudgetError, match=r"2015-01 refused: .* already spent 1 of its privacy budget of 1"):
        create_release(mconn, "2015-01", new_version=True, settings=loaded_db)
    tight_year = loaded_db.model_copy(update={"privacy_budget_year": 1.5})
    with pytest.raises(PrivacyBudgetError, match="data year 2015 has already spent 1 of its privacy budget of 1.5"):
        create_release(mconn, "2015-04", settings=tight_year)
    assert mconn.execute("SELECT count(*) FROM releases WHERE month IN ('2015-01-01', '2015-04-01')").fetchone()[0] == 1


def test_new_version_spends_again(loaded_db: Settings, mconn: psycopg.Connection) -> None:
    cells = inner_cells(mconn, loaded_db)
    plant(mconn, loaded_db, "test_release_february", "2015-02", {("drugs", int(cells[5])): 50})
    first = create_release(mconn, "2015-02", settings=loaded_db)
    roomy = loaded_db.model_copy(update={"privacy_budget_month": 2.0, "release_epsilon": 0.5})
    second = create_release(mconn, "2015-02", new_version=True, settings=roomy)
    assert (first.version, second.version) == (1, 2) and second.epsilon <= 0.5
    assert second.scales["incidents"] > first.scales["incidents"]  # less budget, more noise
    assert get_release(mconn, "2015-02").version == 2 and get_release(mconn, "2015-02", 1).id == first.id
    assert second.budget.spent_month == pytest.approx(1.5)
    with pytest.raises(PrivacyBudgetError):
        create_release(mconn, "2015-02", new_version=True, settings=roomy.model_copy(update={"release_epsilon": 0.6}))


@pytest.mark.parametrize("statement", [
    "UPDATE releases SET k = 1", "DELETE FROM releases", "UPDATE release_cells SET value = 5",
    "DELETE FROM release_totals", "DELETE FROM privacy_ledger", "UPDATE privacy_ledger SET epsilon = 0.001",
    "TRUNCATE privacy_ledger", "TRUNCATE release_works",
])
def test_releases_and_ledger_are_immutable(loaded_db: Settings, january: dict, statement: str) -> None:
    with db.connect(loaded_db) as conn, pytest.raises(psycopg.errors.RestrictViolation, match="immutable"):
        conn.execute(statement)


def test_geojson_has_only_public_fields(january: dict) -> None:
    release = january["release"]
    doc = release.to_geojson()
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == len(release.cells)
    assert {tuple(sorted(f["properties"])) for f in doc["features"]} == {
        ("arrondissement", "group", "h3", "suppressed", "value")}
    meta = doc["metadata"]
    assert (meta["month"], meta["version"], meta["k"], meta["tau"], meta["contribution_bound"]) == (
        "2015-01", 1, 11, 27, 1)
    assert meta["epsilon"] <= 1.0 and meta["method_url"]
    assert {tuple(sorted(t)) for t in doc["totals"]} == {("arrondissement", "group", "suppressed", "value")}
    assert len(doc["totals"]) == 4 * 5 and {t["group"] for t in doc["totals"]} == {
        "drugs", "safety", "public_space", "outreach"}
    json.dumps(doc)  # plain JSON
    frame = release.cells_frame()
    assert list(frame.columns) == ["group", "h3", "arrondissement", "value", "suppressed", "geometry"]
    assert frame.crs.to_epsg() == 4326
    assert list(release.totals_frame().columns) == ["group", "arrondissement", "value", "suppressed", "threshold"]


def test_works_sites_active_in_the_month(loaded_db: Settings, mconn: psycopg.Connection, january: dict) -> None:
    works = january["release"].works_frame()
    expected = mconn.execute(
        "SELECT count(*) FROM works_sites w, study_area s WHERE w.starts_at < '2015-02-01 00:00+01' "
        "AND (w.ends_at IS NULL OR w.ends_at >= '2015-01-01 00:00+01') AND ST_Intersects(w.geom, s.geom)"
    ).fetchone()[0]
    assert len(works) == expected > 0
    assert (works["starts_on"] < date(2015, 2, 1)).all() and (works["ends_on"] >= date(2015, 1, 1)).all()
    assert list(works.columns) == ["site_id", "purpose", "starts_on", "ends_on", "geometry"]


def test_rolling_view_needs_twelve_releases(mconn: psycopg.Connection, january: dict) -> None:
    with pytest.raises(NotFoundError, match="missing: 2014-02, 2014-03"):
        rolling_view(mconn, "2015-01")
    with pytest.raises(NotFoundError, match="no release of 2015-06"):
        get_release(mconn, "2015-06")


def test_list_releases(mconn: psycopg.Connection, january: dict) -> None:
    listed = {r["month"]: r for r in list_releases(mconn)}
    assert listed["2015-01"] == {"month": "2015-01", "version": 1, "resolution": 9, "k": 11, "tau": 27,
                                 "epsilon": january["release"].epsilon, "contribution_bound": 1}
