"""The synthetic sample generator: shape, place, time, reproducibility (no database needed)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely
from shapely.geometry import shape

from geo_monitor.errors import InvalidArgumentError
from geo_monitor.settings import Settings
from geo_monitor.store.reference import reference_features
from geo_monitor.store.sample import COLUMNS, SampleSummary, generate_sample

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
N = 12_000


@pytest.fixture(scope="module")
def settings() -> Settings:
    return Settings(reference_dir=SHARED_DATA)


@pytest.fixture(scope="module")
def study_area(settings: Settings) -> shapely.Geometry:
    features = reference_features("arrondissements", settings)
    return shapely.union_all([shape(f["geometry"]) for f in features
                              if str(f["properties"]["c_arinsee"]) in settings.study_area])


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory: pytest.TempPathFactory, settings: Settings) -> tuple[Path, SampleSummary]:
    path = tmp_path_factory.mktemp("sample") / "events.csv"
    seen: list[int] = []
    summary = generate_sample(path, N, seed=7, settings=settings, progress=seen.append)
    assert seen and seen[-1] == N
    return path, summary


@pytest.fixture(scope="module")
def events(sample_csv: tuple[Path, SampleSummary]) -> pd.DataFrame:
    frame = pd.read_csv(sample_csv[0], dtype=str, keep_default_na=False)
    frame["lon"], frame["lat"] = frame["lon"].astype(float), frame["lat"].astype(float)
    frame["start"] = pd.to_datetime(frame["occurred_at"], format="ISO8601", utc=True)
    frame["local"] = frame["start"].dt.tz_convert("Europe/Paris")
    return frame


@pytest.mark.parametrize("n_events", [0, 999, 10_000_001])
def test_size_outside_bounds_is_refused(tmp_path: Path, settings: Settings, n_events: int) -> None:
    with pytest.raises(InvalidArgumentError, match="between 1,000 and 10,000,000"):
        generate_sample(tmp_path / "x.csv", n_events, settings=settings)
    assert not list(tmp_path.iterdir())


def test_unknown_suffix_is_refused(tmp_path: Path, settings: Settings) -> None:
    with pytest.raises(InvalidArgumentError, match=r"\.csv or \.parquet"):
        generate_sample(tmp_path / "x.json", 1_000, settings=settings)


def test_rows_columns_and_summary(sample_csv: tuple[Path, SampleSummary], events: pd.DataFrame) -> None:
    path, summary = sample_csv
    assert path.read_text(encoding="utf-8").splitlines()[0].replace('"', "").split(",") == list(COLUMNS)
    assert len(events) == summary.events == N
    assert summary.by_kind == events["kind"].value_counts().to_dict()
    assert summary.works_sites == summary.by_kind["works"] > 0
    shares = events["kind"].value_counts(normalize=True)
    assert 0.66 < shares["incident"] < 0.74 and 0.25 < shares["outreach"] < 0.33 and shares["works"] <= 0.011
    assert set(events["source"]) == {"sample"}
    assert events["external_id"].is_unique
    assert events.loc[events["kind"] != "works", "external_id"].str.fullmatch(r"S-7-\d+").all()
    assert (events.loc[events["kind"] != "works", "ends_at"] == "").all()


def test_categories_belong_to_the_vocabulary(events: pd.DataFrame) -> None:
    vocab = pd.read_csv(Path(__file__).resolve().parents[1] / "data" / "categories.csv")
    allowed = set(zip(vocab["kind"], vocab["category"], strict=True))
    assert set(zip(events["kind"], events["category"], strict=True)) <= allowed


def test_every_point_inside_the_study_area(events: pd.DataFrame, study_area: shapely.Geometry) -> None:
    assert shapely.contains_xy(study_area, events["lon"].to_numpy(), events["lat"].to_numpy()).all()


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path, settings: Settings,
                                                    sample_csv: tuple[Path, SampleSummary]) -> None:
    again, other = tmp_path / "again.csv", tmp_path / "other.csv"
    generate_sample(again, N, seed=7, settings=settings)
    generate_sample(other, N, seed=8, settings=settings)
    assert again.read_bytes() == sample_csv[0].read_bytes()
    assert other.read_bytes() != again.read_bytes()


def test_times_have_offsets_and_stay_in_the_period(events: pd.DataFrame) -> None:
    stamps = events["occurred_at"]
    assert stamps.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0[12]:00").all()
    summer = events["local"].dt.month.isin([7, 8])
    assert stamps[summer].str.endswith("+02:00").all() and stamps[events["local"].dt.month == 1].str.endswith("+01:00").all()
    synthetic = events[events["kind"] != "works"]
    assert set(synthetic["local"].dt.year) == {2019, 2020, 2021}


def test_incidents_peak_in_the_evening_and_night_and_on_weekends(events: pd.DataFrame) -> None:
    incidents = events[events["kind"] == "incident"]
    hours = incidents["local"].dt.hour.value_counts()
    assert hours.idxmax() in {19, 20, 21, 22, 23, 0, 1}
    assert incidents["local"].dt.hour.isin([*range(18, 24), *range(0, 4)]).mean() > 0.5
    weekend = incidents["local"].dt.day_of_week.isin([5, 6]).mean()
    assert weekend > 2 / 7 + 0.03


def test_outreach_every_weekday_in_maraude_hours(events: pd.DataFrame) -> None:
    outreach = events[events["kind"] == "outreach"]
    assert set(outreach["local"].dt.day_of_week) == set(range(7))
    assert outreach["local"].dt.hour.between(9, 22).mean() > 0.9


def test_some_outreach_is_in_metro_stations(events: pd.DataFrame, settings: Settings) -> None:
    stations = np.array([f["geometry"]["coordinates"] for f in reference_features("stations", settings)
                         if f["properties"]["mode"] == "METRO"])
    outreach = events[events["kind"] == "outreach"]
    dx = (outreach["lon"].to_numpy()[:, None] - stations[None, :, 0]) * 111_320 * np.cos(np.radians(48.88))
    dy = (outreach["lat"].to_numpy()[:, None] - stations[None, :, 1]) * 111_320
    near = (np.hypot(dx, dy) < 50).any(axis=1).mean()
    assert 0.15 < near < 0.5


def test_hotspot_drifts_from_la_chapelle_to_stalingrad(events: pd.DataFrame) -> None:
    incidents = events[events["kind"] == "incident"]

    def yearly(lon: float, lat: float) -> pd.Series:
        metres = np.hypot((incidents["lon"] - lon) * 73_300, (incidents["lat"] - lat) * 111_320)
        return incidents.loc[metres < 300, "local"].dt.year.value_counts()

    chapelle, stalingrad = yearly(2.3632, 48.8988), yearly(2.3678, 48.8843)
    assert chapelle[2019] > 2 * chapelle[2021]
    assert stalingrad[2021] > 1.5 * stalingrad[2019]


def test_works_come_from_the_reference_sites(events: pd.DataFrame) -> None:
    works = events[events["kind"] == "works"]
    ends = pd.to_datetime(works["ends_at"], format="ISO8601", utc=True)
    assert (ends >= works["start"]).all()
    assert works["external_id"].str.fullmatch(r"W-CP\d+").all()
    assert set(works["category"]) <= {"redesign", "roadworks", "lighting", "fencing", "cleaning"}


def test_synthetic_works_without_the_works_layer(tmp_path: Path, study_area: shapely.Geometry) -> None:
    reference = tmp_path / "reference"
    reference.mkdir()
    for name in ("paris_arrondissements.geojson", "idf_gares_paris.geojson"):
        (reference / name).symlink_to(SHARED_DATA / name)
    path = tmp_path / "events.csv"
    summary = generate_sample(path, 5_000, seed=3, settings=Settings(reference_dir=reference))
    works = pd.read_csv(path, dtype=str, keep_default_na=False).query("kind == 'works'")
    assert 0 < summary.works_sites == len(works) <= 50
    start = pd.to_datetime(works["occurred_at"], format="ISO8601", utc=True)
    assert (pd.to_datetime(works["ends_at"], format="ISO8601", utc=True) > start).all()
    assert set(start.dt.tz_convert("Europe/Paris").dt.year) <= {2019, 2020, 2021}
    assert shapely.contains_xy(study_area, works["lon"].astype(float), works["lat"].astype(float)).all()


def test_geoparquet_matches_the_csv(tmp_path: Path, settings: Settings, events: pd.DataFrame) -> None:
    path, again = tmp_path / "events.parquet", tmp_path / "again.parquet"
    summary = generate_sample(path, N, seed=7, settings=settings)
    generate_sample(again, N, seed=7, settings=settings)
    assert path.read_bytes() == again.read_bytes()
    assert b'"primary_column"' in pq.read_schema(path).metadata[b"geo"]
    frame = gpd.read_parquet(path)
    assert frame.crs.to_epsg() == 4326 and len(frame) == summary.events == N
    assert list(frame.columns) == [*COLUMNS, "geometry"]
    assert np.allclose(frame.geometry.x, frame["lon"]) and np.allclose(frame.geometry.y, frame["lat"])
    table = pd.DataFrame(frame.drop(columns="geometry")).fillna({"ends_at": ""})
    pd.testing.assert_frame_equal(table, events[list(COLUMNS)], check_dtype=False)


def test_chunked_writing_reports_progress(tmp_path: Path, settings: Settings, study_area: shapely.Geometry,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("geo_monitor.store.sample.CHUNK_ROWS", 2_000)
    seen: list[int] = []
    path = tmp_path / "events.csv"
    generate_sample(path, 7_500, seed=1, settings=settings, progress=seen.append)
    assert seen == [2_000, 4_000, 6_000, 7_500]
    frame = pd.read_csv(path, dtype={"ends_at": str})
    assert len(frame) == 7_500 and frame["external_id"].is_unique
    assert shapely.contains_xy(study_area, frame["lon"].to_numpy(), frame["lat"].to_numpy()).all()
    assert not list(tmp_path.glob("*.part"))
