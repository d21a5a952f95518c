"""The DansMaRue adapter on the real exports in the reference folder (ODbL, Ville de Paris).

dansmarue_sample_paris.csv holds 10,000 reports from all of Paris; the GeoJSON holds the 3,327
reports of the study-area arrondissements (by their ``arrondissement`` field), the same records.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from geo_monitor import db
from geo_monitor.settings import Settings
from geo_monitor.store.ingest import IngestReport, ingest_file
from geo_monitor.store.validate import CANONICAL

DATA = Path(os.environ.get("GEO_MONITOR_REFERENCE_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
CSV_FILE = DATA / "dansmarue_sample_paris.csv"
GEOJSON_FILE = DATA / "dansmarue_ne_arrondissements.geojson"
# The 7 reports whose `arrondissement` field names the study area while the point lies in a
# neighbouring arrondissement (SOURCES.md: "points on a boundary"). The point decides.
BOUNDARY_IDS = {"G2024B008931", "G2024B058906", "G2024D045698", "A2024G038282", "A2024G038602",
                "G2024G057443", "G2024H011228"}
DROPPED_FIELDS = ("adresse", "soustype", "conseilquartier", "prefixe", "intervenant")
HEADER = ["numero", "type", "soustype", "adresse", "code_postal", "ville", "arrondissement", "conseilquartier",
          "datedecl", "anneedecl", "moisdecl", "prefixe", "intervenant", "id_dmr", "mois_annee_decla", "lon", "lat"]


def read_csv_records() -> list[dict[str, str]]:
    with open(CSV_FILE, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def study_area_ids() -> set[str]:
    """id_dmr of the GeoJSON features (the study area by the records' own field)."""
    features = json.loads(GEOJSON_FILE.read_text(encoding="utf-8"))["features"]
    return {f["properties"]["id_dmr"] for f in features}


def type_categories(settings: Settings) -> dict[str, str]:
    with open(settings.data_dir / "dansmarue_types.csv", encoding="utf-8", newline="") as handle:
        return {row["type"]: row["category"] for row in csv.DictReader(handle)}


def rejected_rows(report: IngestReport) -> list[dict[str, str]]:
    if report.rejects_path is None:
        return []
    with open(report.rejects_path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def dmr_record(**fields: str) -> dict[str, str]:
    """A DansMaRue record shaped like the 2023-2024 export (a report near Gare de l'Est)."""
    record = {
        "numero": "90001", "type": "Propreté", "soustype": "Déjections canines",
        "adresse": "1 Rue Imaginaire du Test, 75010 PARIS", "code_postal": "75010", "ville": "Paris 10",
        "arrondissement": "10", "conseilquartier": "SAINT-VINCENT-DE-PAUL - LARIBOISIERE",
        "datedecl": "2024-03-05", "anneedecl": "2024", "moisdecl": "3", "prefixe": "Android",
        "intervenant": "DPE-STPP-DT", "id_dmr": "T2024TEST001", "mois_annee_decla": "2024-03",
        "lon": "2.3578808", "lat": "48.8759911",
    }
    record.update(fields)
    return record


def write_dmr_csv(path: Path, records: list[dict[str, str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(records)
    return path


def ingest_dmr(conn: psycopg.Connection, settings: Settings, path: Path, rejects_dir: Path) -> IngestReport:
    return ingest_file(conn, path, adapter="dansmarue", settings=settings,
                       rejects_path=rejects_dir / f"{path.stem}.rejects.csv")


def batch_text(conn: psycopg.Connection, batch_id: int) -> str:
    return conn.execute("SELECT b::text FROM ingest_batches b WHERE id = %s", (batch_id,)).fetchone()[0]


@pytest.fixture(scope="module")
def store(loaded_db: Settings) -> Iterator[psycopg.Connection]:
    with db.connect(loaded_db, autocommit=True) as connection:
        yield connection


@pytest.fixture(scope="module")
def reports(store: psycopg.Connection, loaded_db: Settings,
            tmp_path_factory: pytest.TempPathFactory) -> tuple[IngestReport, IngestReport]:
    """The whole-Paris CSV, then the study-area GeoJSON re-sent after it."""
    out = tmp_path_factory.mktemp("dansmarue")
    return ingest_dmr(store, loaded_db, CSV_FILE, out), ingest_dmr(store, loaded_db, GEOJSON_FILE, out)


def test_csv_keeps_the_study_area_and_refuses_the_rest_of_paris(
    reports: tuple[IngestReport, IngestReport], store: psycopg.Connection,
) -> None:
    csv_report, _ = reports
    records = read_csv_records()
    inside = study_area_ids() - BOUNDARY_IDS

    assert csv_report.format == "csv/dansmarue"
    assert (csv_report.received, csv_report.accepted, csv_report.duplicates) == (10_000, len(inside), 0)
    assert csv_report.accepted == 3_320
    assert dict(csv_report.rejected_by_reason) == {"outside the study area": 10_000 - len(inside)}
    refused_ids = {row["external_id"] for row in rejected_rows(csv_report)}
    assert refused_ids == {r["id_dmr"] for r in records} - inside
    assert store.execute("SELECT count(*) FROM events WHERE batch_id = %s",
                         (csv_report.batch_id,)).fetchone()[0] == len(inside)


def test_geojson_sent_after_the_csv_adds_only_duplicates(
    reports: tuple[IngestReport, IngestReport], store: psycopg.Connection,
) -> None:
    csv_report, geojson_report = reports

    assert geojson_report.format == "geojson/dansmarue"
    assert geojson_report.received == 3_327
    assert geojson_report.accepted == 0
    assert geojson_report.duplicates_in_store == csv_report.accepted
    assert geojson_report.duplicates_in_file == 0
    assert store.execute("SELECT count(*) FROM events WHERE batch_id = %s",
                         (geojson_report.batch_id,)).fetchone()[0] == 0


def test_boundary_points_are_placed_by_their_position_not_their_field(
    reports: tuple[IngestReport, IngestReport],
) -> None:
    _, geojson_report = reports

    assert dict(geojson_report.rejected_by_reason) == {"outside the study area": len(BOUNDARY_IDS)}
    assert {row["external_id"] for row in rejected_rows(geojson_report)} == BOUNDARY_IDS


def test_types_map_to_incident_categories(
    reports: tuple[IngestReport, IngestReport], store: psycopg.Connection, loaded_db: Settings,
) -> None:
    csv_report, _ = reports
    mapping = type_categories(loaded_db)
    inside = study_area_ids() - BOUNDARY_IDS
    expected = Counter(mapping[r["type"]] for r in read_csv_records() if r["id_dmr"] in inside)

    stored = store.execute(
        "SELECT k.name, c.name, count(*) FROM events e JOIN categories c ON c.id = e.category_id "
        "JOIN kinds k ON k.id = e.kind_id WHERE e.batch_id = %s GROUP BY 1, 2",
        (csv_report.batch_id,),
    ).fetchall()

    assert {kind for kind, _, _ in stored} == {"incident"}
    assert {category for _, category, _ in stored} <= set(mapping.values())
    assert {category: n for _, category, n in stored} == dict(expected)


def test_declaration_dates_are_paris_midnight_in_utc(
    reports: tuple[IngestReport, IngestReport], store: psycopg.Connection,
) -> None:
    csv_report, _ = reports
    hours = store.execute(
        "SELECT DISTINCT extract(hour FROM occurred_at AT TIME ZONE 'UTC')::int FROM events WHERE batch_id = %s",
        (csv_report.batch_id,),
    ).fetchall()
    first = store.execute(
        "SELECT min(occurred_at AT TIME ZONE 'Europe/Paris') FROM events WHERE batch_id = %s",
        (csv_report.batch_id,),
    ).fetchone()[0]

    assert {h for (h,) in hours} <= {22, 23}  # local midnight in summer / winter time
    assert first.isoformat() == "2023-08-14T00:00:00"
    assert csv_report.naive_times == csv_report.accepted


def test_address_and_other_fields_never_reach_the_store(
    reports: tuple[IngestReport, IngestReport], store: psycopg.Connection,
) -> None:
    csv_report, geojson_report = reports
    records = read_csv_records()
    dropped = {r[f] for r in records for f in DROPPED_FIELDS if len(r[f]) > 3}
    streets = {re.sub(r"^[\d\s,]*(bis|ter)?\s*", "", r["adresse"].split(",")[0]) for r in records}
    streets = {s for s in streets if len(s) > 6}
    assert "boulevard Barbès" in streets and "10 boulevard Barbès, 75018 PARIS" in dropped

    # Events hold numbers and binary only: not a single word, whatever the column.
    text_columns = store.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'events' "
        "AND data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')"
    ).fetchall()
    assert text_columns == []
    rows = store.execute("SELECT e::text FROM events e WHERE batch_id = ANY(%s)",
                         ([csv_report.batch_id, geojson_report.batch_id],)).fetchall()
    hex_free = (re.sub(r"\\x[0-9a-f]*|\b[0-9A-Fa-f]+\b", " ", row) for (row,) in rows)  # bytea, EWKB
    words = {w for row in hex_free for w in re.findall(r"[^\W\d_]{3,}", row)}
    assert words == set()

    said = "\n".join([batch_text(store, csv_report.batch_id), batch_text(store, geojson_report.batch_id),
                      *csv_report.summary(), *geojson_report.summary(),
                      *(name for (name,) in store.execute("SELECT name FROM sources"))])
    assert "adresse" not in said.lower()
    assert not {value for value in dropped | streets if value in said}

    for report in reports:  # the rejects file holds the canonical record only
        text = report.rejects_path.read_text(encoding="utf-8")
        assert text.splitlines()[0].split(",") == ["_record", "_reason", *CANONICAL]
        assert "boulevard" not in text.lower() and "rue " not in text.lower()


def test_id_dmr_is_the_external_id(store: psycopg.Connection, loaded_db: Settings, tmp_path: Path) -> None:
    records = [
        dmr_record(numero="91001", id_dmr="T2024ID0001"),
        dmr_record(numero="91001", id_dmr="T2024ID0002"),  # same numero, another report
        dmr_record(numero="91002", id_dmr="T2024ID0001"),  # same report sent twice
    ]

    report = ingest_dmr(store, loaded_db, write_dmr_csv(tmp_path / "ids.csv", records), tmp_path)

    assert (report.accepted, report.duplicates_in_file, report.rejected) == (2, 1, 0)
    again = ingest_dmr(store, loaded_db, write_dmr_csv(tmp_path / "again.csv", records[:2]), tmp_path)
    assert (again.accepted, again.duplicates_in_store) == (0, 2)


def test_unknown_type_is_refused_without_quoting_the_value(
    store: psycopg.Connection, loaded_db: Settings, tmp_path: Path,
) -> None:
    records = [
        dmr_record(id_dmr="T2024TYPE01"),
        dmr_record(id_dmr="T2024TYPE02", type="Nids de poule volants"),
        dmr_record(id_dmr="T2024TYPE03", type="Graffitis, tags, affiches et autocollants"),
    ]

    report = ingest_dmr(store, loaded_db, write_dmr_csv(tmp_path / "types.csv", records), tmp_path)

    assert (report.accepted, report.rejected) == (2, 1)
    [refused] = rejected_rows(report)
    assert refused["_record"] == "2"
    assert refused["_reason"] == "unknown DansMaRue type (not in data/dansmarue_types.csv)"
    assert "nids de poule" not in " ".join(report.rejected_by_reason).lower()  # values never reach the store


def test_older_export_with_upper_case_columns_and_geo_point_2d(
    store: psycopg.Connection, loaded_db: Settings, tmp_path: Path,
) -> None:
    # The 2022-2023 export: upper case names with spaces, the point as "lat, lon" text.
    header = ["ID DECLARATION", "TYPE DECLARATION", "SOUS TYPE DECLARATION", "ADRESSE", "CODE POSTAL", "VILLE",
              "ARRONDISSEMENT", "DATE DECLARATION", "ANNEE DECLARATION", "MOIS DECLARATION",
              "NUMERO DECLARATION", "PREFIXE", "INTERVENANT", "CONSEIL DE QUARTIER", "OUTIL SOURCE", "ID_DMR",
              "geo_shape", "geo_point_2d"]
    base = {"ID DECLARATION": "1", "TYPE DECLARATION": "Objets abandonnés", "SOUS TYPE DECLARATION": "Cartons",
            "ADRESSE": "2 Rue Imaginaire du Test, 75019 PARIS", "CODE POSTAL": "75019", "VILLE": "Paris 19",
            "ARRONDISSEMENT": "19", "DATE DECLARATION": "2022-11-02", "ANNEE DECLARATION": "2022",
            "MOIS DECLARATION": "11", "NUMERO DECLARATION": "1", "PREFIXE": "iOS", "INTERVENANT": "Ramen",
            "CONSEIL DE QUARTIER": "BUTTES-CHAUMONT", "OUTIL SOURCE": "DMR", "ID_DMR": "T2022OLD001",
            "geo_shape": "", "geo_point_2d": "48.8785141, 2.3816145"}
    records = [base, {**base, "ID DECLARATION": "2", "ID_DMR": "T2022OLD002", "geo_point_2d": "48.852009, 2.3686746"}]

    report = ingest_dmr(store, loaded_db, write_dmr_csv(tmp_path / "old.csv", records, header), tmp_path)

    assert (report.accepted, dict(report.rejected_by_reason)) == (1, {"outside the study area": 1})
    stored = store.execute(
        "SELECT c.name, e.arrondissement FROM events e JOIN categories c ON c.id = e.category_id "
        "WHERE e.batch_id = %s", (report.batch_id,)).fetchall()
    assert stored == [("abandoned_objects", 75119)]


def test_arrondissement_and_quartier_come_from_the_reported_point(
    reports: tuple[IngestReport, IngestReport], store: psycopg.Connection,
) -> None:
    """Counts per quartier equal those of the reported points, not of their cell centres.

    Taken from the cell centre, 28 of the 3,320 reports landed in another arrondissement.
    """
    csv_report, _ = reports
    inside = study_area_ids() - BOUNDARY_IDS
    points = [(float(r["lon"]), float(r["lat"])) for r in read_csv_records() if r["id_dmr"] in inside]
    store.execute("CREATE TEMP TABLE reported (lon float8, lat float8)")
    with store.cursor().copy("COPY reported (lon, lat) FROM STDIN") as copy:
        for point in points:
            copy.write_row(point)
    expected = dict(store.execute(
        "SELECT q.code, count(*) FROM reported r JOIN quartiers q "
        "ON ST_Contains(q.geom, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)) GROUP BY q.code").fetchall())
    stored = dict(store.execute(
        "SELECT quartier, count(*) FROM events WHERE batch_id = %s GROUP BY quartier", (csv_report.batch_id,)).fetchall())
    by_centre = dict(store.execute(
        "SELECT q.code, count(*) FROM events e JOIN quartiers q ON ST_Contains(q.geom, e.geom) "
        "WHERE e.batch_id = %s GROUP BY q.code", (csv_report.batch_id,)).fetchall())
    arrondissements = dict(store.execute(
        "SELECT arrondissement, count(*) FROM events WHERE batch_id = %s GROUP BY arrondissement",
        (csv_report.batch_id,)).fetchall())
    expected_arr = dict(store.execute(
        "SELECT a.code, count(*) FROM reported r JOIN arrondissements a "
        "ON ST_Contains(a.geom, ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)) GROUP BY a.code").fetchall())
    store.execute("DROP TABLE reported")

    assert sum(expected.values()) == len(points) == 3_320
    assert stored == expected
    assert arrondissements == expected_arr
    assert by_centre != expected  # the cell centres would have placed some reports elsewhere
