"""Ingest: refusals with a reason per row, duplicates, whole-file errors, atomic batches,
generalisation of place and time, and the same result from CSV, GeoJSON and GeoParquet.

Every test writes under its own source name and counts rows by source or batch: the session
database is shared by the whole test run.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import h3
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely

from geo_monitor import db
from geo_monitor.errors import GeoMonitorError, InputFileError
from geo_monitor.settings import Settings
from geo_monitor.store.ingest import IngestReport, ingest_chunks, ingest_file
from geo_monitor.store.readers import read_chunks

# Real metro stations inside the study area (IDFM "emplacement-des-gares-idf", see
# ../shared/data/SOURCES.md): WGS84 lon, lat, then the file's Lambert-93 x, y, then the
# arrondissement. All lie more than 500 m from an arrondissement boundary.
STATIONS = {
    "gare-de-l-est": (2.3578808, 48.8759911, 652903.3623, 6864187.9922, 75110),
    "chateau-landon": (2.3619653, 48.8784443, 653205.1424, 6864458.3475, 75110),
    "marx-dormoy": (2.3599958, 48.8904855, 653071.5478, 6865798.4226, 75118),
    "lamarck-caulaincourt": (2.3387607, 48.8896741, 651513.7585, 6865721.0312, 75118),
    "buttes-chaumont": (2.3816145, 48.8785141, 654646.2892, 6864454.6451, 75119),
    "laumiere": (2.3787169, 48.8849706, 654439.427, 6865174.2323, 75119),
    "gambetta": (2.3969128, 48.8649781, 655756.7839, 6862940.8538, 75120),
    "pelleport": (2.4015617, 48.8684402, 656100.7414, 6863323.2148, 75120),
}
BASTILLE = (2.3686746, 48.852009)  # 12e: outside the study area
ARGENTINE = (2.2901275, 48.8753368)  # 16e: outside the study area
STUDY_AREA = {75110, 75118, 75119, 75120}
WHEN = "2021-05-04T21:30:00+02:00"
FUTURE = (datetime.now(UTC) + timedelta(days=3)).isoformat(timespec="seconds")

Row = dict[str, object]


# --- builders --------------------------------------------------------------------------------


def event(place: str = "gare-de-l-est", **fields: object) -> Row:
    """One canonical record at a real station of the study area; ``fields`` override."""
    lon, lat = STATIONS[place][:2]
    row: Row = {"kind": "incident", "category": "drug_litter", "occurred_at": WHEN, "lon": lon, "lat": lat}
    row.update(fields)
    return row


def write_csv(path: Path, rows: list[Row]) -> Path:
    """Write rows as CSV; the header is every key in order of appearance, missing cells empty."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_geojson(path: Path, rows: list[Row], geometries: list[dict | None] | None = None) -> Path:
    """Write rows as a FeatureCollection: lon/lat become a Point unless geometries are given."""
    features = []
    for i, row in enumerate(rows):
        props = {k: v for k, v in row.items() if k not in ("lon", "lat")}
        if geometries is not None:
            geometry = geometries[i]
        else:
            geometry = {"type": "Point", "coordinates": [row["lon"], row["lat"]]}
        features.append({"type": "Feature", "properties": props, "geometry": geometry})
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}), encoding="utf-8")
    return path


def write_geoparquet(path: Path, rows: list[Row], crs: str = "EPSG:4326") -> Path:
    """Write rows as GeoParquet (geopandas), lon/lat as the Point geometry, text columns."""
    props = pd.DataFrame([{k: v for k, v in row.items() if k not in ("lon", "lat")} for row in rows])
    points = shapely.points([row["lon"] for row in rows], [row["lat"] for row in rows])
    frame = gpd.GeoDataFrame(props, geometry=points, crs="EPSG:4326")
    if crs != "EPSG:4326":
        frame = frame.to_crs(crs)
    frame.to_parquet(path)
    return path


def chunk(rows: list[Row], first_record: int) -> pd.DataFrame:
    """One chunk as the readers yield it: text columns plus the 1-based ``_record``."""
    frame = pd.DataFrame(rows).astype(str)
    frame["_record"] = np.arange(first_record, first_record + len(frame))
    return frame


def source_name(request: pytest.FixtureRequest, suffix: str = "") -> str:
    """A source name of this test only (letters, digits, . _ - and at most 64 characters)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{request.node.name}{suffix}").strip("-")
    if len(name) > 64:
        name = f"{name[:47]}-{hashlib.sha1(name.encode()).hexdigest()[:16]}"
    return name


def ingest(conn: psycopg.Connection, settings: Settings, path: Path, source: str, **options: object) -> IngestReport:
    """Ingest one file under ``source``, writing refused rows next to it."""
    rejects_path = path.with_name(f"{path.stem}.rejects.csv")
    return ingest_file(conn, path, source=source, settings=settings, rejects_path=rejects_path, **options)


def rejected_rows(report: IngestReport) -> dict[int, dict[str, str]]:
    """The rejects file of a report: record number -> row (with ``_reason``)."""
    if report.rejects_path is None:
        return {}
    with open(report.rejects_path, encoding="utf-8", newline="") as handle:
        return {int(row["_record"]): row for row in csv.DictReader(handle)}


def reasons(report: IngestReport) -> dict[int, str]:
    """Record number -> reason, from the rejects file."""
    return {record: row["_reason"] for record, row in rejected_rows(report).items()}


def count_events(conn: psycopg.Connection, source: str) -> int:
    return conn.execute(
        "SELECT count(*) FROM events e JOIN sources s ON s.id = e.source_id WHERE s.name = %s", (source,)
    ).fetchone()[0]


def count_batches(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM ingest_batches").fetchone()[0]


def stored_by_category(conn: psycopg.Connection, batch_id: int) -> dict[str, tuple]:
    """Category name -> (occurred_at, ends_at) of a batch whose rows all have distinct categories."""
    rows = conn.execute(
        "SELECT c.name, e.occurred_at, e.ends_at FROM events e JOIN categories c ON c.id = e.category_id "
        "WHERE e.batch_id = %s",
        (batch_id,),
    ).fetchall()
    assert len({r[0] for r in rows}) == len(rows), "this helper needs one row per category"
    return {name: (at, ends) for name, at, ends in rows}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


@pytest.fixture
def db_conn(loaded_db: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the loaded session database (each ingest commits on its own)."""
    with db.connect(loaded_db, autocommit=True) as connection:
        yield connection


# --- one refused row, the valid rest kept ----------------------------------------------------

LAMBERT_EST = STATIONS["gare-de-l-est"][2:4]

REFUSALS = [
    pytest.param({"lon": 48.8759911, "lat": 2.3578808}, r"latitude and longitude look swapped", id="swapped"),
    pytest.param({"lon": LAMBERT_EST[0], "lat": LAMBERT_EST[1]}, r"Lambert-93.*--crs EPSG:2154", id="lambert"),
    pytest.param({"lon": "NaN"}, r"not finite", id="nan-lon"),
    pytest.param({"lat": "nan"}, r"not finite", id="nan-lat"),
    pytest.param({"lon": "inf"}, r"not finite", id="inf"),
    pytest.param({"lon": "", "lat": ""}, r"missing coordinates", id="empty"),
    pytest.param({"lat": ""}, r"missing coordinates", id="empty-lat"),
    pytest.param({"lon": BASTILLE[0], "lat": BASTILLE[1]}, r"^outside the study area$", id="outside"),
    pytest.param({"lon": 200.0, "lat": 48.87}, r"outside the WGS84 range", id="not-lonlat"),
    pytest.param({"occurred_at": FUTURE}, r"in the future", id="future"),
    pytest.param({"occurred_at": "2099-06-01T10:00:00"}, r"in the future", id="far-future"),
    pytest.param({"occurred_at": "yesterday"}, r"unparseable occurred_at", id="words"),
    pytest.param({"occurred_at": "2021-13-45T10:00:00"}, r"unparseable occurred_at", id="no-such-day"),
    pytest.param({"occurred_at": "04/05/2021 21:30"}, r"unparseable occurred_at", id="not-iso"),
    pytest.param({"occurred_at": ""}, r"missing occurred_at", id="no-time"),
    pytest.param({"occurred_at": "2021-03-28T02:30:00"}, r"non-existent local time \(DST", id="dst-gap"),
    pytest.param({"occurred_at": "2021-10-31T02:30:00"}, r"ambiguous .* \(DST", id="dst-fold"),
    pytest.param({"kind": "party"}, r"unknown kind \(expected incident, outreach or works\)", id="kind"),
    pytest.param({"kind": ""}, r"missing kind", id="no-kind"),
    pytest.param({"category": "unicorns"}, r"unknown category for this kind", id="category"),
    pytest.param({"kind": "works", "category": "contact"}, r"unknown category for this kind",
                 id="category-of-another-kind"),
    pytest.param({"ends_at": "2021-06-01T00:00:00+02:00"}, r"ends_at is only allowed for works", id="incident-end"),
    pytest.param({"kind": "works", "category": "redesign", "ends_at": "2021-05-01T00:00:00+02:00"},
                 r"ends_at is before occurred_at", id="works-end-before-start"),
    pytest.param({"kind": "works", "category": "redesign", "ends_at": "soon"}, r"unparseable ends_at",
                 id="works-end-unparseable"),
    pytest.param({"name": "Jean Dupontel"}, r"field 'name' is not part of the canonical record", id="name"),
    pytest.param({"phone": "06 12 34 56 78"}, r"field 'phone' is not part of the canonical record", id="phone"),
]


@pytest.mark.parametrize(("bad", "reason"), REFUSALS)
def test_a_bad_row_is_refused_with_its_reason_and_the_rest_is_kept(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
    bad: Row, reason: str,
) -> None:
    source = source_name(request)
    rows = [event("gambetta", external_id="ok-1"), event(external_id="bad", **bad),
            event("marx-dormoy", external_id="ok-2")]

    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "events.csv", rows), source)

    assert (report.received, report.accepted, report.rejected, report.duplicates) == (3, 2, 1, 0)
    refused = reasons(report)
    assert list(refused) == [2]
    assert re.search(reason, refused[2]), refused[2]
    assert dict(report.rejected_by_reason) == {refused[2]: 1}
    assert count_events(db_conn, source) == 2
    # A reason never quotes coordinates (reasons end up in reports, logs and the database).
    for value in (bad.get("lon"), bad.get("lat")):
        if isinstance(value, float):
            assert str(value)[:5] not in refused[2]


# --- refusals in more detail -----------------------------------------------------------------


def test_outside_study_area_reason_and_report_never_show_the_coordinates(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    rows = [event(external_id="inside"),
            event(external_id="bastille", lon=BASTILLE[0], lat=BASTILLE[1]),
            event(external_id="argentine", lon=ARGENTINE[0], lat=ARGENTINE[1])]

    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "events.csv", rows), source_name(request))

    assert report.accepted == 1
    assert reasons(report) == {2: "outside the study area", 3: "outside the study area"}
    stored_reasons = db_conn.execute(
        "SELECT rejected_by_reason::text FROM ingest_batches WHERE id = %s", (report.batch_id,)
    ).fetchone()[0]
    said = "\n".join([*report.summary(), stored_reasons, *report.rejected_by_reason])
    for value in (*BASTILLE, *ARGENTINE):
        assert str(value)[:5] not in said  # e.g. "48.85": not even a prefix of a coordinate
    # The rejects file keeps them, so that the row can be fixed and sent again.
    kept = rejected_rows(report)
    assert (float(kept[2]["lon"]), float(kept[2]["lat"])) == BASTILLE
    assert (float(kept[3]["lon"]), float(kept[3]["lat"])) == ARGENTINE


def test_lambert93_is_accepted_when_declared(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    rows = [event(name, external_id=name, lon=x, lat=y) for name, (_, _, x, y, _) in STATIONS.items()]
    rows.append(event(external_id="in-degrees"))  # WGS84 numbers in a file declared Lambert-93

    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "lambert.csv", rows), source_name(request),
                    crs="EPSG:2154")

    assert report.accepted == len(STATIONS)
    assert list(reasons(report).values()) == ["coordinates look like degrees, but the file declares EPSG:2154"]
    stored = db_conn.execute(
        "SELECT ST_X(geom), ST_Y(geom), arrondissement FROM events WHERE batch_id = %s", (report.batch_id,)
    ).fetchall()
    for lon, lat, _, _, arrondissement in STATIONS.values():
        nearest = min(stored, key=lambda s: _metres(s[0], s[1], lon, lat))
        assert _metres(nearest[0], nearest[1], lon, lat) < 35  # within its resolution-11 cell
        assert nearest[2] == arrondissement


def _metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    dx = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6_371_000 * math.hypot(dx, math.radians(lat2 - lat1))


def test_personal_columns_refuse_their_rows_and_nothing_of_them_is_stored(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    rows = [event(external_id="p-1", name="Jean Dupontel", phone="06 12 34 56 78"),
            event("laumiere", external_id="p-2", phone="0698765432"),
            event("gambetta", external_id="p-3")]  # the columns exist, but this row leaves them empty

    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "people.csv", rows), source_name(request))

    assert report.accepted == 1
    refused = reasons(report)
    assert "field 'name' is not part of the canonical record" in refused[1]
    assert "field 'phone' is not part of the canonical record" in refused[2]
    secrets = ("Dupontel", "12 34 56 78", "0698765432")
    stored_text = "\n".join(
        db_conn.execute(f"SELECT coalesce(string_agg(t::text, chr(10)), '') FROM {table} t").fetchone()[0]
        for table in ("events", "ingest_batches", "sources")
    )
    said = "\n".join([*report.summary(), *refused.values()])
    rejects_file = report.rejects_path.read_text(encoding="utf-8")
    for secret in secrets:
        assert secret not in stored_text
        assert secret not in said
        assert secret not in rejects_file  # only the canonical columns are written back


# --- duplicates and re-sent batches -----------------------------------------------------------


@pytest.fixture(params=["probed", "bulk"])
def write_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways a batch meets the stored events: probing the unique index per chunk, or a bulk
    load (store.bulk_load) that finds the duplicates after writing; returns whether it is bulk."""
    from geo_monitor.store import ingest as ingest_module

    if request.param == "bulk":
        monkeypatch.setattr(ingest_module, "REBUILD_SHARE", 0.0)
    else:  # a file of unknown size is never a bulk load
        monkeypatch.setattr(ingest_module, "estimate_rows", lambda path, fmt: None)
    return request.param == "bulk"



def test_duplicates_inside_a_file_are_skipped_and_counted(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
    write_path: bool,
) -> None:
    rows = [event(external_id="a"), event("laumiere", external_id="b"), event(external_id="a"),
            event("gambetta", external_id="c"), event("laumiere", external_id="b")]

    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "dups.csv", rows), source_name(request))

    assert (report.accepted, report.duplicates_in_file, report.duplicates_in_store) == (3, 2, 0)
    assert report.rejected == 0 and report.bulk == write_path
    assert count_events(db_conn, source_name(request)) == 3


def test_duplicates_across_chunks_of_one_file_count_as_in_file(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
    write_path: bool,
) -> None:
    small_chunks = loaded_db.model_copy(update={"ingest_chunk_rows": 2})
    rows = [event(external_id="a"), event("laumiere", external_id="b"), event(external_id="c"),
            event(external_id="a"), event("laumiere", external_id="b"), event(external_id="d")]

    report = ingest(db_conn, small_chunks, write_csv(tmp_path / "dups.csv", rows), source_name(request))

    assert (report.accepted, report.duplicates_in_file, report.duplicates_in_store) == (4, 2, 0)
    assert report.bulk == write_path
    kept = db_conn.execute("SELECT count(*) FROM events WHERE batch_id = %s", (report.batch_id,)).fetchone()[0]
    assert kept == 4
    assert count_events(db_conn, source_name(request)) == 4


def test_duplicates_of_stored_events_are_skipped_and_counted(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
    write_path: bool,
) -> None:
    source = source_name(request)
    first = [event(external_id="a"), event("laumiere", external_id="b"), event("gambetta", external_id="c")]
    ingest(db_conn, loaded_db, write_csv(tmp_path / "first.csv", first), source)
    second = [event("laumiere", external_id="b"), event("pelleport", external_id="d"),
              event("gambetta", external_id="c"), event("pelleport", external_id="d")]

    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "second.csv", second), source)

    assert (report.accepted, report.duplicates_in_store, report.duplicates_in_file) == (1, 2, 1)
    assert count_events(db_conn, source) == 4 and report.bulk == write_path
    first_batch = db_conn.execute(  # the stored copy is kept, not the new one
        "SELECT count(*) FROM events WHERE batch_id = %s", (report.batch_id - 1,)).fetchone()[0]
    assert first_batch == 3


@pytest.mark.parametrize("with_external_id", [True, False], ids=["external-id", "no-external-id"])
def test_a_resent_file_adds_nothing(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
    with_external_id: bool, write_path: bool,
) -> None:
    source = source_name(request)
    rows = [event(place, category=category) for place in STATIONS for category in ("dealing", "aggression")]
    if with_external_id:
        rows = [{**row, "external_id": f"id-{i}"} for i, row in enumerate(rows)]
    rows.append(event(kind="party"))  # refused both times
    path = write_csv(tmp_path / "batch.csv", rows)
    first = ingest(db_conn, loaded_db, path, source)
    batches = count_batches(db_conn)

    again = ingest(db_conn, loaded_db, path, source)

    assert first.accepted == len(rows) - 1
    assert again.accepted == 0 and again.bulk == write_path
    assert again.duplicates == again.duplicates_in_store == first.accepted
    assert again.rejected == 1
    assert count_events(db_conn, source) == first.accepted
    assert count_batches(db_conn) == batches + 1  # the re-send is recorded, with nothing accepted
    recorded = db_conn.execute(
        "SELECT received, accepted, duplicates, rejected FROM ingest_batches WHERE id = %s", (again.batch_id,)
    ).fetchone()
    assert recorded == (len(rows), 0, first.accepted, 1)


# --- whole-file errors: one clear error, nothing written ---------------------------------------


def test_malformed_csv_gives_one_error_and_writes_nothing(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    source = source_name(request)
    path = tmp_path / "broken.csv"
    path.write_text("kind,category,occurred_at,lon,lat,external_id\n"
                    f"party,dealing,{WHEN},2.38,48.88,refused\n"
                    f"incident,dealing,{WHEN},2.38,48.88,fine\n"
                    f"incident,dealing,{WHEN},2.38,48.88,one-field,too-many\n", encoding="utf-8")
    batches = count_batches(db_conn)

    with pytest.raises(InputFileError, match="broken.csv is not a well-formed CSV file"):
        ingest(db_conn, loaded_db, path, source)

    assert count_events(db_conn, source) == 0
    assert count_batches(db_conn) == batches
    assert not path.with_name("broken.rejects.csv").exists()


@pytest.fixture
def malformed_csv_error(db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path,
                        request: pytest.FixtureRequest) -> tuple[str, float, float]:
    """The error a CSV whose second record has an extra (personal) field raises; and that record's place."""
    lon, lat = STATIONS["laumiere"][:2]
    path = tmp_path / "short.csv"
    path.write_text("kind,category,occurred_at,lon,lat\n"
                    f"incident,dealing,{WHEN},{lon},{lat}\n"
                    f"incident,dealing,{WHEN},{lon},{lat},Jean Dupontel\n", encoding="utf-8")
    with pytest.raises(InputFileError) as error:
        ingest(db_conn, loaded_db, path, source_name(request))
    return str(error.value), lon, lat  # the message the CLI prints and the API logs


def test_malformed_csv_error_does_not_repeat_the_row(malformed_csv_error: tuple[str, float, float]) -> None:
    message, lon, lat = malformed_csv_error
    assert "Dupontel" not in message  # the extra field may be personal data
    assert str(lon) not in message and str(lat) not in message


def test_malformed_csv_error_names_the_row(malformed_csv_error: tuple[str, float, float]) -> None:
    message = malformed_csv_error[0]
    # Record 2 is line 3 of the file; either way of counting names it.
    assert re.search(r"\b(row|record|line)\s*#?\s*[23]\b", message), message


@pytest.mark.parametrize("fmt", ["csv", "geojson"])
def test_a_file_that_is_not_utf8_is_refused(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest, fmt: str,
) -> None:
    rows = [event(external_id="é-1", category="drug_litter")]
    writer = write_csv if fmt == "csv" else write_geojson
    path = writer(tmp_path / f"latin1.{fmt}", rows)
    text = path.read_text(encoding="utf-8")
    if fmt == "geojson":
        text = text.replace("\\u00e9", "é")  # json.dumps escapes it
    path.write_bytes(text.encode("latin-1"))
    batches = count_batches(db_conn)

    with pytest.raises(InputFileError, match=r"latin1\.\w+ is not UTF-8.*UTF-8"):
        ingest(db_conn, loaded_db, path, source_name(request))

    assert count_batches(db_conn) == batches
    assert count_events(db_conn, source_name(request)) == 0


@pytest.mark.parametrize(
    ("columns", "missing"),
    [(["kind", "category", "occurred_at", "lon"], "lat"),
     (["kind", "category", "occurred_at", "longitude", "latitude"], "lon, lat"),
     (["category", "occurred_at", "lon", "lat"], "kind")],
    ids=["no-lat", "other-names", "no-kind"],
)
def test_missing_required_columns_refuse_the_file(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
    columns: list[str], missing: str,
) -> None:
    row = event(longitude=2.38, latitude=48.88)
    path = write_csv(tmp_path / "cols.csv", [{c: row[c] for c in columns}])
    batches = count_batches(db_conn)

    with pytest.raises(InputFileError, match=rf"missing required column\(s\) {missing};"):
        ingest(db_conn, loaded_db, path, source_name(request))

    assert count_batches(db_conn) == batches


# --- a failure in the middle of a batch leaves nothing behind ----------------------------------


def test_a_malformed_part_in_the_middle_of_a_batch_leaves_nothing(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    # A first chunk that is written (one row refused, so a rejects file is started), then a
    # second chunk the CSV reader cannot parse.
    source = source_name(request)
    good = write_csv(tmp_path / "good.csv", [event(external_id="1"), event("laumiere", external_id="2"),
                                             event(kind="party")])
    broken = tmp_path / "broken.csv"
    broken.write_text(f"kind,category,occurred_at,lon,lat\nincident,dealing,{WHEN},2.38,48.88,extra\n",
                      encoding="utf-8")
    chunks = itertools.chain(read_chunks(good, "csv", 1000), read_chunks(broken, "csv", 1000))
    batches = count_batches(db_conn)
    written: list[int] = []
    rejects_path = tmp_path / "r.csv"

    with pytest.raises(InputFileError, match="not a well-formed CSV file"):
        ingest_chunks(db_conn, chunks, name="two-parts.csv", fmt="csv", source=source, settings=loaded_db,
                      rejects_path=rejects_path, progress=lambda _: written.append(count_events(db_conn, source)))

    assert written == [2]  # the first chunk was in the store (uncommitted) when the error came
    assert count_events(db_conn, source) == 0
    assert count_batches(db_conn) == batches
    assert not rejects_path.exists()


def test_losing_the_database_in_the_middle_of_a_batch_leaves_nothing(
    loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    source = source_name(request)
    victim = db.connect(loaded_db, autocommit=True)
    batches = count_batches(victim)
    written: list[int] = []
    first_chunk_stored = threading.Event()

    def stored(_: int) -> None:  # progress callback: runs after each chunk was written
        written.append(count_events(victim, source))
        first_chunk_stored.set()

    def chunks() -> Iterator[pd.DataFrame]:  # read ahead by ingest's worker thread
        yield chunk([event(external_id="1"), event("laumiere", external_id="2")], 1)
        assert first_chunk_stored.wait(timeout=20)
        with db.connect(loaded_db, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        yield chunk([event("gambetta", external_id="3")], 3)

    try:
        with pytest.raises((psycopg.OperationalError, GeoMonitorError)):
            ingest_chunks(victim, chunks(), name="lost.csv", fmt="csv", source=source, settings=loaded_db,
                          rejects_path=tmp_path / "r.csv", progress=stored)
    finally:
        victim.close()

    assert written == [2]
    with db.connect(loaded_db) as fresh:
        assert count_events(fresh, source) == 0
        assert count_batches(fresh) == batches
        assert fresh.execute("SELECT count(*) FROM ingest_batches WHERE file_name = 'lost.csv'").fetchone()[0] == 0


# --- time ---------------------------------------------------------------------------------------


def test_naive_times_are_europe_paris_and_times_are_truncated_to_the_hour(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    rows = [
        event(category="drug_litter", occurred_at="2020-07-01T12:00:00"),  # summer: UTC+2
        event(category="dealing", occurred_at="2020-01-15T12:00:00"),  # winter: UTC+1
        event(category="aggression", occurred_at="2020-07-01 08:15"),
        event(category="resident_complaint", occurred_at="2020-07-01T12:34:56+02:00"),
        event(category="police_intervention", occurred_at="2020-07-01T12:59:59.999Z"),
        event(category="consumption_gathering", occurred_at="2021-03-28T02:30:00+01:00"),  # in the DST gap, but explicit
    ]

    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "times.csv", rows), source_name(request))

    assert report.accepted == len(rows)
    assert report.naive_times == 3
    assert any("Europe/Paris" in line for line in report.summary())
    stored = {name: at for name, (at, _) in stored_by_category(db_conn, report.batch_id).items()}
    assert stored == {
        "drug_litter": utc("2020-07-01T10:00:00+00:00"),
        "dealing": utc("2020-01-15T11:00:00+00:00"),
        "aggression": utc("2020-07-01T06:00:00+00:00"),
        "resident_complaint": utc("2020-07-01T10:00:00+00:00"),
        "police_intervention": utc("2020-07-01T12:00:00+00:00"),
        "consumption_gathering": utc("2021-03-28T01:00:00+00:00"),
    }


def test_ends_at_is_kept_for_works_truncated_to_the_hour(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    rows = [
        event(kind="works", category="redesign", occurred_at="2019-03-01T08:00:00+01:00",
              ends_at="2019-09-30T17:45:00+02:00"),
        event(kind="works", category="fencing", occurred_at="2019-03-01T08:00:00+01:00"),  # open-ended
        event(kind="works", category="cleaning", occurred_at="2019-03-01T08:30:00+01:00",
              ends_at="2019-03-01T08:40:00+01:00"),  # same hour once truncated
        event(category="dealing"),
    ]

    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "works.csv", rows), source_name(request))

    assert report.accepted == 4
    stored = stored_by_category(db_conn, report.batch_id)
    assert stored["redesign"] == (utc("2019-03-01T07:00:00+00:00"), utc("2019-09-30T15:00:00+00:00"))
    assert stored["fencing"] == (utc("2019-03-01T07:00:00+00:00"), None)
    assert stored["cleaning"] == (utc("2019-03-01T07:00:00+00:00"), utc("2019-03-01T07:00:00+00:00"))
    assert stored["dealing"][1] is None


# --- formats ------------------------------------------------------------------------------------

MIXED = [
    event("gare-de-l-est", external_id="e1"),
    event("marx-dormoy", external_id="e2", kind="outreach", category="harm_reduction_kit",
          occurred_at="2020-11-03T19:10:00"),
    event("laumiere", external_id="e3", category="resident_complaint", occurred_at="2021-02-11T07:05:00Z"),
    event("pelleport", external_id="e4", kind="works", category="redesign", occurred_at="2019-04-01T09:00:00+02:00",
          ends_at="2019-12-20T18:00:00+01:00"),
    event("lamarck-caulaincourt", external_id="e5", kind="outreach", category="care_referral"),
    event("gambetta", external_id="e6", category="dealing", occurred_at="2019-07-14T23:59:59+02:00"),
]
STORED_COLUMNS = ("kind_id, category_id, occurred_at, ends_at, ST_X(geom), ST_Y(geom), h3_r7, h3_r8, h3_r9, "
                  "h3_r10, h3_r11, arrondissement, quartier")


def _stored_rows(conn: psycopg.Connection, batch_id: int) -> list[tuple]:
    return conn.execute(
        f"SELECT {STORED_COLUMNS} FROM events WHERE batch_id = %s ORDER BY {STORED_COLUMNS}", (batch_id,)
    ).fetchall()


def test_csv_geojson_and_geoparquet_give_the_same_stored_rows(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    files = {
        "csv": write_csv(tmp_path / "mixed.csv", MIXED),
        "geojson": write_geojson(tmp_path / "mixed.geojson", MIXED),
        "parquet": write_geoparquet(tmp_path / "mixed.parquet", MIXED),
    }

    stored = {}
    for fmt, path in files.items():
        report = ingest(db_conn, loaded_db, path, source_name(request, f"-{fmt}"))
        assert (report.format, report.accepted, report.rejected) == (fmt, len(MIXED), 0)
        stored[fmt] = _stored_rows(db_conn, report.batch_id)

    assert len(stored["csv"]) == len(MIXED)
    assert stored["geojson"] == stored["csv"]
    assert stored["parquet"] == stored["csv"]


def test_geoparquet_in_lambert93_is_read_from_its_metadata(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    reference = ingest(db_conn, loaded_db, write_csv(tmp_path / "wgs84.csv", MIXED), source_name(request, "-csv"))
    path = write_geoparquet(tmp_path / "lambert.parquet", MIXED, crs="EPSG:2154")

    report = ingest(db_conn, loaded_db, path, source_name(request, "-l93"))

    assert (report.accepted, report.rejected) == (len(MIXED), 0)
    assert _stored_rows(db_conn, report.batch_id) == _stored_rows(db_conn, reference.batch_id)


def test_geojson_feature_that_is_not_a_point_is_refused_with_its_reason(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    lon, lat = STATIONS["laumiere"][:2]
    rows = [event(external_id=str(i)) for i in range(4)]
    geometries = [
        {"type": "Point", "coordinates": [lon, lat]},
        {"type": "LineString", "coordinates": [[lon, lat], [lon + 0.001, lat]]},
        {"type": "Polygon", "coordinates": [[[lon, lat], [lon + 0.001, lat], [lon, lat + 0.001], [lon, lat]]]},
        None,
    ]
    path = write_geojson(tmp_path / "shapes.geojson", rows, geometries)

    report = ingest(db_conn, loaded_db, path, source_name(request))

    assert report.accepted == 1
    assert reasons(report) == {2: "geometry is a LineString, not a Point",
                               3: "geometry is a Polygon, not a Point",
                               4: "missing coordinates"}


def test_geoparquet_row_that_is_not_a_point_is_refused_with_its_reason(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    lon, lat = STATIONS["laumiere"][:2]
    frame = gpd.GeoDataFrame(
        {"kind": ["incident", "incident"], "category": ["dealing", "dealing"], "occurred_at": [WHEN, WHEN],
         "external_id": ["point", "line"]},
        geometry=[shapely.Point(lon, lat), shapely.LineString([(lon, lat), (lon + 0.001, lat)])],
        crs="EPSG:4326",
    )
    path = tmp_path / "shapes.parquet"
    frame.to_parquet(path)

    report = ingest(db_conn, loaded_db, path, source_name(request))

    assert report.accepted == 1
    assert reasons(report) == {2: "geometry is missing or not a Point"}


# --- generalisation: every stored event, whatever its test -------------------------------------


def test_every_stored_event_is_generalised_to_its_cell_centre_and_hour(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    rng = np.random.default_rng(11)
    n = 400
    times = pd.Timestamp("2020-06-01") + pd.to_timedelta(rng.integers(0, 90 * 86_400, n), unit="s")
    rows = [event(external_id=f"g{i}", lon=round(float(x), 7), lat=round(float(y), 7),
                  occurred_at=t.strftime("%Y-%m-%dT%H:%M:%S"))
            for i, (x, y, t) in enumerate(zip(rng.uniform(2.33, 2.42, n), rng.uniform(48.862, 48.902, n), times,
                                              strict=True))]
    report = ingest(db_conn, loaded_db, write_csv(tmp_path / "spread.csv", rows), source_name(request))
    assert report.accepted > n // 3
    assert set(report.rejected_by_reason) <= {"outside the study area"}

    events = db_conn.execute(
        "SELECT ST_X(geom), ST_Y(geom), h3_r7, h3_r8, h3_r9, h3_r10, h3_r11, occurred_at, ends_at, "
        "arrondissement, quartier, ST_SRID(geom) FROM events"
    ).fetchall()
    assert len(events) >= report.accepted
    for lon, lat, r7, r8, r9, r10, r11, occurred_at, ends_at, arrondissement, quartier, srid in events:
        fine = h3.int_to_str(r11)
        assert h3.get_resolution(fine) == loaded_db.point_resolution == 11
        centre_lat, centre_lon = h3.cell_to_latlng(fine)
        assert abs(lon - centre_lon) < 1e-9 and abs(lat - centre_lat) < 1e-9 and srid == 4326
        assert [h3.cell_to_parent(fine, r) for r in (7, 8, 9, 10)] == [h3.int_to_str(c) for c in (r7, r8, r9, r10)]
        for moment in (occurred_at, ends_at):
            if moment is not None:
                assert (moment.minute, moment.second, moment.microsecond) == (0, 0, 0)
        assert arrondissement in STUDY_AREA
        assert quartier // 100 == arrondissement
    this_batch = db_conn.execute(
        "SELECT array_agg(DISTINCT arrondissement) FROM events WHERE batch_id = %s", (report.batch_id,)
    ).fetchone()[0]
    assert set(this_batch) == STUDY_AREA


def test_integer_external_ids_are_the_same_ids_whatever_else_the_file_holds(
    db_conn: psycopg.Connection, loaded_db: Settings, tmp_path: Path, request: pytest.FixtureRequest,
) -> None:
    # GeoJSON keeps numbers as numbers: ids 1, 2, 3 must stay "1", "2", "3" even when a feature
    # without an id turns the column into floats.
    source = source_name(request)
    rows = [event(place, external_id=i) for i, place in enumerate(("laumiere", "gambetta", "marx-dormoy"), 1)]
    ingest(db_conn, loaded_db, write_geojson(tmp_path / "first.geojson", rows), source)

    again = ingest(db_conn, loaded_db, write_geojson(tmp_path / "again.geojson", [*rows, event("pelleport")]),
                   source)

    assert (again.accepted, again.duplicates_in_store) == (1, 3)
    assert count_events(db_conn, source) == 4
