"""The event lake and the batch path on Dask, on all 20 arrondissements, against the PostgreSQL path.

One database with the study area widened to the whole city (GEO_MONITOR_STUDY_AREA), a
sample plus planted events at month edges (where the Paris month is not the UTC month), two
ingest batches exported incrementally; the rollups and the emerging-hotspot cube computed on
a 2-worker LocalCluster (processes, no dashboard) must equal PostgreSQL's row for row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dask_geopandas
import duckdb
import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest
from builders import own_database

from geo_monitor import db, hexagons
from geo_monitor.analysis.counts import hex_counts
from geo_monitor.analysis.cubes import step_cube
from geo_monitor.analysis.emerging import emerging_frame
from geo_monitor.batch.cluster import dask_client, worker_peak_rss
from geo_monitor.batch.cubes import lake_emerging, lake_step_cube
from geo_monitor.batch.rollups import rollups_from_lake
from geo_monitor.calendar import Window
from geo_monitor.grid import study_grid
from geo_monitor.settings import Settings
from geo_monitor.store import lake as event_lake
from geo_monitor.store import rollups
from geo_monitor.store.ingest import ingest_file
from geo_monitor.store.sample import generate_sample
from tests.test_cli import run

PARIS_20 = [str(75100 + n) for n in range(1, 21)]
N_EVENTS = 12_000
TOUR_EIFFEL = (2.2945, 48.8584)  # 75107: outside the default study area
BASTILLE = (2.3686746, 48.852009)  # 75104/75111/75112
# Paris month differs from the UTC month (and the DST changes): the rollup must use Paris.
EDGES = ["2021-04-01T00:30:00+02:00", "2021-01-01T00:10:00+01:00", "2020-10-25T02:30:00+01:00",
         "2021-03-28T03:30:00+02:00", "2020-11-30T23:59:00+01:00"]


@pytest.fixture(scope="module")
def paris(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A database of the whole city, with the reference layers, holding nothing yet."""
    with own_database(settings, "lake", tmp_path_factory.mktemp("cache"), study_area=PARIS_20) as own:
        yield own


def _ingest(settings: Settings, path: Path) -> None:
    with db.connect(settings) as conn:
        report = ingest_file(conn, path, settings=settings)
    assert report.accepted >= 0.95 * report.received, report.summary()


@pytest.fixture(scope="module")
def files(paris: Settings, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two batches: the first half of a city-wide sample, then its second half and the planted edges."""
    folder = tmp_path_factory.mktemp("lake-input")
    generate_sample(folder / "sample.csv", N_EVENTS, seed=1414, settings=paris)
    frame = pd.read_csv(folder / "sample.csv", dtype=str, keep_default_na=False)
    planted = pd.DataFrame([{"kind": "incident", "category": "dealing", "occurred_at": when,
                             "lon": str(place[0]), "lat": str(place[1]), "source": "planted",
                             "external_id": f"edge-{i}-{j}", "ends_at": ""}
                            for i, when in enumerate(EDGES) for j, place in enumerate((TOUR_EIFFEL, BASTILLE))])
    first, second = folder / "first.csv", folder / "second.csv"
    frame.iloc[: N_EVENTS // 2].to_csv(first, index=False)
    pd.concat([frame.iloc[N_EVENTS // 2:], planted]).to_csv(second, index=False)
    return first, second


@pytest.fixture(scope="module")
def lake(paris: Settings, files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lake after two incremental exports (one per batch), with a no-op export in between."""
    folder = tmp_path_factory.mktemp("lake") / "events"
    _ingest(paris, files[0])
    with db.connect(paris) as conn:
        first = event_lake.export_lake(conn, folder)
        again = event_lake.export_lake(conn, folder)
    _ingest(paris, files[1])
    with db.connect(paris) as conn:
        second = event_lake.export_lake(conn, folder)
    assert first.batches == [1] and again.batches == [] and again.files == [] and second.batches == [2]
    assert first.events + second.events == second.lake_events
    return folder


@pytest.fixture(scope="module")
def client(lake: Path) -> Iterator:
    """A 2-worker LocalCluster (processes, no dashboard)."""
    with dask_client(workers=2) as dask:
        yield dask


def _events(settings: Settings) -> pd.DataFrame:
    with db.connect(settings) as conn:
        rows = conn.execute(
            "SELECT id, batch_id, category_id, occurred_at, ends_at, ST_X(geom), ST_Y(geom), h3_r11, h3_r7, "
            "to_char(occurred_at AT TIME ZONE 'Europe/Paris', 'YYYY-MM') FROM events ORDER BY id").fetchall()
    frame = pd.DataFrame(rows, columns=["id", "batch_id", "category_id", "occurred_at", "ends_at", "x", "y", "h3_r11",
                                        "h3_r7", "month"])
    for column in ("occurred_at", "ends_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def test_the_lake_holds_every_stored_event_once_by_paris_month_sorted_by_coarse_parent(paris: Settings,
                                                                                        lake: Path) -> None:
    events = _events(paris)
    manifest = json.loads((lake / event_lake.MANIFEST).read_text())
    assert lake.stat().st_mode & 0o077 == 0  # fine events: the owner's only
    assert manifest["batches"] == [1, 2] and manifest["events"] == len(events)
    seen = []
    for month, paths in event_lake.lake_files(lake).items():
        for path in paths:
            table = pq.read_table(path, partitioning=None)
            geo = json.loads(table.schema.metadata[b"geo"])
            assert geo["version"] == "1.1.0"
            assert geo["columns"]["geometry"]["covering"]["bbox"]["xmin"] == ["bbox", "xmin"]
            ids = table["id"].to_numpy()
            stored = events.set_index("id").loc[ids]
            assert (stored["month"] == month).all(), f"{path} holds events of another Paris month"
            parents = hexagons.cells_to_parents(table["h3_r11"].to_numpy(), event_lake.SORT_RESOLUTION)
            assert (np.diff(parents) >= 0).all(), f"{path} is not sorted by its coarse H3 parent"
            assert (parents == stored["h3_r7"].to_numpy()).all()
            seen.append(ids)
    seen = np.concatenate(seen)
    assert len(seen) == len(np.unique(seen)) == len(events)
    planted_month = events.loc[events["occurred_at"] == pd.Timestamp("2021-03-31T22:00Z"), "month"]
    assert len(planted_month) >= 2 and set(planted_month) == {"2021-04"}  # stored in UTC March, Paris April


def test_an_export_that_died_before_its_manifest_leaves_nothing_behind(paris: Settings, lake: Path,
                                                                       tmp_path: Path) -> None:
    stray = lake / "month=2021-06" / "part-b000009-000009.parquet"
    stray.write_bytes(b"half a file")
    with db.connect(paris) as conn:
        report = event_lake.export_lake(conn, lake)
    assert report.removed_orphans == 1 and not stray.exists() and report.batches == []
    (tmp_path / "notes.txt").write_text("not a lake")
    with db.connect(paris) as conn, pytest.raises(ValueError, match="not an event lake"):
        event_lake.export_lake(conn, tmp_path)


def test_duckdb_reads_the_lake_as_it_is(paris: Settings, lake: Path) -> None:
    events = _events(paris)
    got = duckdb.sql(
        f"SELECT month, count(*) AS n, min(bbox.xmin) AS x0, max(bbox.xmax) AS x1 "
        f"FROM read_parquet('{lake}/*/*.parquet', hive_partitioning = true) GROUP BY month ORDER BY month").df()
    want = events.groupby("month").agg(n=("id", "size"), x0=("x", "min"), x1=("x", "max")).reset_index()
    assert got["month"].astype(str).tolist() == want["month"].tolist()
    assert got["n"].tolist() == want["n"].tolist()
    assert np.allclose(got["x0"], want["x0"], rtol=0, atol=1e-12) and np.allclose(got["x1"], want["x1"], rtol=0, atol=1e-12)


def test_geopandas_reads_the_lake_with_its_crs_points_and_bbox_filter(paris: Settings, lake: Path) -> None:
    events = _events(paris).set_index("id")
    frame = gpd.read_parquet(lake)
    assert frame.crs.to_epsg() == 4326 and len(frame) == len(events)
    assert set(frame.geom_type) == {"Point"}
    at = events.loc[frame["id"]]
    assert np.array_equal(frame.geometry.x.to_numpy(), at["x"].to_numpy())
    assert np.array_equal(frame.geometry.y.to_numpy(), at["y"].to_numpy())
    assert (frame["occurred_at"].to_numpy() == at["occurred_at"].dt.tz_convert("UTC").to_numpy()).all()
    works = at["ends_at"].notna().to_numpy()
    assert works.sum() > 0 and (frame["ends_at"].notna().to_numpy() == works).all()
    assert (frame["ends_at"].to_numpy()[works] == at["ends_at"].dt.tz_convert("UTC").to_numpy()[works]).all()
    box = (2.28, 48.85, 2.31, 48.87)  # around the Champ-de-Mars
    near = gpd.read_parquet(lake, bbox=box)
    inside = events[(events["x"] >= box[0]) & (events["x"] <= box[2]) & (events["y"] >= box[1]) & (events["y"] <= box[3])]
    assert len(inside) >= 5  # the planted Tour Eiffel events at least
    assert sorted(near["id"]) == sorted(inside.index)


def test_dask_geopandas_reads_the_lake(paris: Settings, lake: Path) -> None:
    events = _events(paris).set_index("id")
    frame = dask_geopandas.read_parquet(lake)
    assert frame.crs.to_epsg() == 4326 and frame.npartitions >= 30
    whole = frame.compute(scheduler="synchronous")  # one pass; the cluster tests are below
    assert isinstance(whole, gpd.GeoDataFrame) and len(whole) == len(events)
    months = whole["month"].astype(str).to_numpy()
    assert (months == events.loc[whole["id"], "month"].to_numpy()).all()
    assert np.array_equal(whole.geometry.x.to_numpy(), events.loc[whole["id"], "x"].to_numpy())


def _rollup(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every rollup table main has, in key order."""
    return {table: conn.execute(f"SELECT resolution, {period}, category_id, cell, n FROM {table} ORDER BY 1, 2, 3, 4")
            .fetchall() for table, period in rollups.TABLES.items()}


def test_dask_rollups_equal_postgres_row_for_row(paris: Settings, lake: Path, client) -> None:
    with db.connect(paris) as conn:
        events = rollups.refresh(conn)
        want = _rollup(conn)
        conn.execute("TRUNCATE rollup_daily, rollup_monthly")
        conn.commit()
        result = rollups_from_lake(conn, client, lake)
        got = _rollup(conn)
        assert rollups.is_fresh(conn)
        state = conn.execute("SELECT last_batch_id, events FROM rollup_state").fetchone()
    assert result.events == events and result.months >= 30
    assert set(got) == set(rollups.TABLES) == {"rollup_daily", "rollup_monthly"}
    for table in rollups.TABLES:
        assert len(got[table]) == len(want[table]) == result.rows[table] > 10_000, table
        assert got[table] == want[table], table
        assert {r for r, *_ in got[table]} == set(rollups.ROLLUP_RESOLUTIONS)
    assert state == (2, events)
    assert len(worker_peak_rss(client)) == 2


def test_a_damaged_lake_replaces_nothing(paris: Settings, lake: Path, client, tmp_path: Path) -> None:
    import shutil

    lost, cut = tmp_path / "lost", tmp_path / "cut"
    shutil.copytree(lake, lost)
    shutil.copytree(lake, cut)
    next(lost.glob("month=2021-04/*.parquet")).unlink()
    victim = next(cut.glob("month=2021-04/*.parquet"))
    table = pq.read_table(victim, partitioning=None)
    pq.write_table(table.slice(0, table.num_rows // 2), victim)
    with db.connect(paris) as conn:
        before = _rollup(conn)
        with pytest.raises(ValueError, match="lost 1 file"):
            rollups_from_lake(conn, client, lost)
        with pytest.raises(ValueError, match="inconsistent: its files hold"):
            rollups_from_lake(conn, client, cut)
        assert _rollup(conn) == before


@pytest.mark.parametrize(("resolution", "step", "start", "end"), [(9, "month", "2019-01-01", "2022-01-01"),
                                                                  (10, "week", "2020-09-28", "2021-04-05"),
                                                                  (11, "month", "2020-10-01", "2021-05-01")])
def test_the_space_time_cube_on_dask_equals_the_single_machine_one(paris: Settings, lake: Path, client,
                                                                    resolution: int, step: str, start: str,
                                                                    end: str) -> None:
    window = Window.of(start, end)
    with db.connect(paris) as conn:
        categories = [r[0] for r in conn.execute("SELECT id FROM categories WHERE kind_id = 1").fetchall()]
        steps, grid, cube = step_cube(conn, categories, window, resolution, step)
        grid_again = study_grid(conn, resolution)
    got_steps, got_grid, got_cube = lake_step_cube(client, lake, categories, window, resolution, grid_again, step)
    assert got_steps == steps and np.array_equal(got_grid, grid)
    assert cube.sum() > 100 and np.array_equal(got_cube, cube)
    if step == "month" and resolution == 9:
        want = emerging_frame(steps, grid, cube, step=step)
        got = lake_emerging(client, lake, categories, window, resolution, grid_again, step=step)
        pd.testing.assert_frame_equal(pd.DataFrame(got.drop(columns="geometry")),
                                      pd.DataFrame(want.drop(columns="geometry")))
        assert (got["pattern"] != "no pattern").any()


def test_the_whole_city_end_to_end_through_the_command_line(paris: Settings, lake: Path, tmp_path: Path) -> None:
    # Residents per hexagon at resolution 11 over the whole city cost minutes on 2 cores and
    # have nothing to do with the engines: the commands serve resolutions 7-10 here.
    env = {"GEO_MONITOR_STUDY_AREA": json.dumps(PARIS_20), "GEO_MONITOR_RESOLUTIONS": "[7, 8, 9, 10]"}
    exported = run(["export", "--lake", str(lake)], paris, tmp_path, **env)
    assert exported.returncode == 0, exported.stderr
    assert "up to date" in exported.stdout
    on_dask = run(["aggregate", "--engine", "dask", "--lake", str(lake)], paris, tmp_path, **env)
    assert on_dask.returncode == 0, on_dask.stderr
    assert "2 worker(s)" in on_dask.stdout and "(dask)" in on_dask.stdout
    with db.connect(paris) as conn:
        after_dask = _rollup(conn)
    on_postgres = run(["aggregate"], paris, tmp_path, **env)
    assert on_postgres.returncode == 0, on_postgres.stderr
    with db.connect(paris) as conn:
        assert _rollup(conn) == after_dask
        eiffel = hexagons.cells_to_parents(hexagons.points_to_cells(np.array([TOUR_EIFFEL[1]]),
                                                                    np.array([TOUR_EIFFEL[0]]), 11), 9)[0]
        counts = hex_counts(conn, start="2020-10-01", end="2021-05-01", resolution=9, categories=["dealing"],
                            settings=paris.model_copy(update={"study_area": PARIS_20}))
    row = counts[counts["cell"] == eiffel]
    assert len(row) == 1 and int(row["count"].iloc[0]) >= len(EDGES)
    refused = run(["aggregate", "--engine", "dask"], paris, tmp_path, **env)
    assert refused.returncode == 1 and "--lake" in refused.stderr
    nobody = run(["aggregate", "--engine", "dask", "--lake", str(lake), "--scheduler", "tcp://127.0.0.1:9"],
                 paris, tmp_path, **env)
    assert nobody.returncode == 1 and "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in nobody.stderr
    assert "Traceback" not in nobody.stderr
