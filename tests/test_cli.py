"""The `geo-monitor` command line, run as a user runs it: the installed script in a subprocess.

Each run gets its settings from the environment only (a clean GEO_MONITOR_* set, a working
directory of its own so no `.env` file is picked up).
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from geo_monitor import db
from geo_monitor.settings import Settings
from geo_monitor.store.sample import generate_sample
from geo_monitor.store.validate import CANONICAL

GEO_MONITOR = Path(sys.executable).with_name("geo-monitor")
WHEN = "2021-05-04T21:30:00+02:00"
# Real stations inside the study area (IDFM), lon, lat.
GARE_DE_L_EST = (2.3578808, 48.8759911)
LAUMIERE = (2.3787169, 48.8849706)
GAMBETTA = (2.3969128, 48.8649781)
BASTILLE = (2.3686746, 48.852009)  # outside


def run(args: list[str], settings: Settings, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `geo-monitor ARGS` against ``settings``' database, from ``cwd``."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GEO_MONITOR_")}
    environ.update({
        "GEO_MONITOR_DATABASE_URL": settings.database_url,
        "GEO_MONITOR_REFERENCE_DIR": str(settings.reference_dir),
        "GEO_MONITOR_CACHE_DIR": str(settings.cache_dir),
        "GEO_MONITOR_ENVIRONMENT": "test",
        "COLUMNS": "200",
        **env,
    })
    return subprocess.run([str(GEO_MONITOR), *args], cwd=cwd, env=environ, capture_output=True, text=True,
                          timeout=300, check=False)


def write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def record(place: tuple[float, float], external_id: str, *, swapped: bool = False) -> tuple:
    lon, lat = place
    return ("incident", "dealing", WHEN, lat, lon, external_id) if swapped else \
           ("incident", "dealing", WHEN, lon, lat, external_id)


HEADER = ["kind", "category", "occurred_at", "lon", "lat", "external_id"]


def count_events(settings: Settings, source: str | None = None) -> int:
    with db.connect(settings) as conn:
        if source is None:
            return conn.execute("SELECT count(*) FROM events").fetchone()[0]
        return conn.execute(
            "SELECT count(*) FROM events e JOIN sources s ON s.id = e.source_id WHERE s.name = %s", (source,)
        ).fetchone()[0]


def counted(output: str, label: str) -> int:
    """The number printed after ``label`` at the start of a report line."""
    match = re.search(rf"^\s*{label}\s+([\d,]+)", output, flags=re.MULTILINE)
    assert match, f"no '{label}' line in:\n{output}"
    return int(match.group(1).replace(",", ""))


def test_ingest_prints_the_report_and_writes_the_rejects_file(loaded_db: Settings, tmp_path: Path) -> None:
    source = "cli-report"
    path = write_csv(tmp_path / "events.csv", HEADER, [
        record(GARE_DE_L_EST, "a"), record(LAUMIERE, "b"), record(GAMBETTA, "c"),
        record(GARE_DE_L_EST, "d", swapped=True), record(LAUMIERE, "e", swapped=True),
        record(BASTILLE, "f"), record(GARE_DE_L_EST, "a"),
    ])

    result = run(["ingest", str(path), "--source", source], loaded_db, cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (counted(out, "received"), counted(out, "accepted"), counted(out, "duplicates"),
            counted(out, "rejected")) == (7, 3, 1, 3)
    assert re.search(r"^\s*2\s+latitude and longitude look swapped", out, flags=re.MULTILINE), out
    assert re.search(r"^\s*1\s+outside the study area$", out, flags=re.MULTILINE), out
    assert re.search(r"^\s*time\s+[\d.]+ s", out, flags=re.MULTILINE), out
    for value in (*GARE_DE_L_EST, *LAUMIERE, *BASTILLE):  # the output never shows a coordinate
        assert str(value)[:5] not in result.stdout + result.stderr
    rejects = tmp_path / "events.rejects.csv"  # default: FILE-stem.rejects.csv in the working directory
    assert str(rejects) in out
    with open(rejects, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["_record", "_reason", *CANONICAL]
    assert [(r["_record"], r["external_id"]) for r in rows] == [("4", "d"), ("5", "e"), ("6", "f")]
    assert count_events(loaded_db, source) == 3


def test_a_fixed_rejects_file_is_accepted_when_sent_again(loaded_db: Settings, tmp_path: Path) -> None:
    source = "cli-fixed"
    path = write_csv(tmp_path / "swapped.csv", HEADER, [
        record(GARE_DE_L_EST, "a"), record(LAUMIERE, "b", swapped=True), record(GAMBETTA, "c", swapped=True),
    ])
    first = run(["ingest", str(path), "--source", source], loaded_db, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert counted(first.stdout, "accepted") == 1
    rejects = tmp_path / "swapped.rejects.csv"

    # The fix: swap the lon and lat columns back; _record and _reason stay in the file.
    lines = rejects.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    i, j = header.index("lon"), header.index("lat")
    header[i], header[j] = header[j], header[i]
    fixed = tmp_path / "fixed.csv"
    fixed.write_text("\n".join([",".join(header), *lines[1:]]) + "\n", encoding="utf-8")

    again = run(["ingest", str(fixed), "--source", source], loaded_db, cwd=tmp_path)

    assert again.returncode == 0, again.stderr
    assert (counted(again.stdout, "accepted"), counted(again.stdout, "rejected")) == (2, 0), again.stdout
    assert count_events(loaded_db, source) == 3
    assert not (tmp_path / "fixed.rejects.csv").exists()


def test_ingest_of_an_unreadable_file_fails_with_one_clear_error(loaded_db: Settings, tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("kind,category,occurred_at,lon,lat\nincident,propreté,2021-05-04,2.37,48.88\n".encode("latin-1"))

    result = run(["ingest", str(path), "--source", "cli-latin1"], loaded_db, cwd=tmp_path)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert re.search(r"error:.*latin1\.csv is not UTF-8.*re-save it as UTF-8", result.stderr), result.stderr
    assert count_events(loaded_db, "cli-latin1") == 0


def test_demo_builds_a_new_database_then_changes_nothing(
    settings_factory: Callable[..., Settings], tmp_path: Path,
) -> None:
    new = settings_factory()  # names a database that does not exist; dropped after the test
    params = conninfo_to_dict(new.database_url)
    with psycopg.connect(make_conninfo(**{**params, "dbname": "postgres"}), autocommit=True) as server:
        exists = server.execute("SELECT 1 FROM pg_database WHERE datname = %s", (params["dbname"],)).fetchone()
    assert exists is None
    output = tmp_path / "var"

    try:
        first = run(["demo", "--events", "2000", "--no-serve"], new, cwd=tmp_path, GEO_MONITOR_OUTPUT_DIR=str(output))
        assert first.returncode == 0, first.stdout + first.stderr
        assert "created database" in first.stdout
        assert "demo data is ready" in first.stdout
        stored = count_events(new)
        assert stored == counted(first.stdout, "accepted") > 1_900
        assert (output / "sample-2000-42.parquet").is_file()

        second = run(["demo", "--events", "2000", "--no-serve"], new, cwd=tmp_path, GEO_MONITOR_OUTPUT_DIR=str(output))

        assert second.returncode == 0, second.stdout + second.stderr
        assert "everything was already in place: nothing changed" in second.stdout
        assert "created database" not in second.stdout
        assert counted(second.stdout, "accepted") == 0
        assert count_events(new) == stored
    finally:
        db.drop_database(new)


def test_maps_build_writes_three_standalone_pages(loaded_db: Settings, tmp_path: Path) -> None:
    generate_sample(tmp_path / "sample.csv", 2_000, seed=7, settings=loaded_db)
    assert run(["ingest", str(tmp_path / "sample.csv"), "--source", "cli-maps"], loaded_db, cwd=tmp_path).returncode == 0

    result = run(["maps", "build", "--out", str(tmp_path / "maps")], loaded_db, cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("planner", "coordination", "public"):
        page = (tmp_path / "maps" / f"{name}.html").read_text(encoding="utf-8")
        assert "L.map(" in page or "L.map (" in page
        assert "cdn.jsdelivr" not in page and "unpkg.com" not in page  # Leaflet is inlined, not fetched


def test_analysis_commands_write_their_tables_and_summaries(loaded_db: Settings, tmp_path: Path) -> None:
    generate_sample(tmp_path / "sample.csv", 5_000, seed=11, settings=loaded_db)
    assert run(["ingest", str(tmp_path / "sample.csv"), "--source", "cli-analysis"], loaded_db, cwd=tmp_path).returncode == 0

    aggregate = run(["aggregate"], loaded_db, cwd=tmp_path)
    hot = run(["hotspots", "--start", "2020-01-01", "--end", "2021-01-01", "--kind", "incident",
               "--out", str(tmp_path / "hot.geojson")], loaded_db, cwd=tmp_path)
    emerging = run(["hotspots", "--start", "2019-01-01", "--end", "2022-01-01", "--emerging",
                    "--out", str(tmp_path / "emerging.parquet")], loaded_db, cwd=tmp_path)
    coverage = run(["coverage", "--start", "2020-01-01", "--end", "2020-07-01", "--out", str(tmp_path / "gap.csv")],
                   loaded_db, cwd=tmp_path)
    release = run(["release", "--month", "2020-02"], loaded_db, cwd=tmp_path)
    bad = run(["hotspots", "--start", "2021-01-01", "--end", "2020-01-01"], loaded_db, cwd=tmp_path)

    for result in (aggregate, hot, emerging, coverage, release):
        assert result.returncode == 0, result.stdout + result.stderr
    assert "rollups rebuilt" in aggregate.stdout
    assert "hot 99%" in hot.stdout and (tmp_path / "hot.geojson").stat().st_size > 0
    assert "hot spot" in emerging.stdout and (tmp_path / "emerging.parquet").is_file()
    assert (tmp_path / "gap.csv").read_text(encoding="utf-8").startswith("h3,")
    assert "release 2020-02" in release.stdout and "privacy loss epsilon" in release.stdout
    assert bad.returncode == 1 and "must come after" in bad.stderr


@pytest.mark.parametrize(("args", "env", "expected"), [
    (["ingest", "missing.csv"], {}, r"^error: no file missing\.csv: check the path"),
    (["ingest", "missing.csv"], {"GEO_MONITOR_DATABASE_URL": "nonsense"}, r"^error: no file missing\.csv"),
    (["db", "up"], {"GEO_MONITOR_DATABASE_URL": "nonsense"},
     r"^error: invalid settings: GEO_MONITOR_DATABASE_URL: not a PostgreSQL connection URL .*expected e\.g\. "),
    (["aggregate"], {"GEO_MONITOR_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"},
     r"^error: cannot connect to .*Set GEO_MONITOR_DATABASE_URL"),
])
def test_the_cli_never_shows_a_traceback(loaded_db: Settings, tmp_path: Path, args, env, expected) -> None:
    """A missing input file or a malformed database URL: one line saying what to do, exit code 1."""
    result = run(args, loaded_db, cwd=tmp_path, **env)
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(expected, lines[0]), result.stderr
