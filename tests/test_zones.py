"""Coordination zones on the real PostGIS: geometry rules, schedules, visibility, versions, history,
summaries consistent with hexagon counts, and a gap report on a case built so its answer is known.

Zones are global state (the gap report reads every zone), so this module works in its own
database, created next to the session's and dropped at the end. Planted events use 2012 and
2013, years no other test module uses.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import h3
import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
import shapely.geometry
from builders import fine_centre, ingest_frame, make_tokens, own_database, records_at

from geo_monitor import db
from geo_monitor.analysis.counts import hex_counts
from geo_monitor.analysis.hotspots import hotspots
from geo_monitor.errors import AccessDeniedError, InvalidArgumentError, NotFoundError
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings
from geo_monitor.zones.edit import (
    ZoneConflictError,
    archive_zone,
    create_zone,
    get_zone,
    list_zones,
    update_zone,
    zone_cells,
    zone_history,
    zones_frame,
)
from geo_monitor.zones.gaps import zone_gaps
from geo_monitor.zones.geometry import MAX_VERTICES, zone_cover
from geo_monitor.zones.schedule import (
    coverage_hours,
    mask_ranges,
    normalize_schedule,
    uncovered_slots,
    week_mask,
)
from geo_monitor.zones.summary import zone_summary

TEAMS = {"brigade-19": "police", "brigade-18": "police", "maraude-a": "outreach", "maraude-b": "outreach",
         "urbanism": "planner", "stewards": "admin"}
# Around Stalingrad / Jaurès (19e), well inside the study area.
BOX = shapely.box(2.366, 48.880, 2.374, 48.886)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zdb(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A database of this module's own (migrated, reference layers loaded), dropped at the end."""
    with own_database(settings, "zones", tmp_path_factory.mktemp("zones-cache")) as own:
        yield own


@pytest.fixture(scope="module")
def who(zdb: Settings) -> dict[str, Principal]:
    """A principal per team, each with a real token (a team is known once it has one)."""
    made = make_tokens(zdb, {team: (role, team) for team, role in TEAMS.items()}, description="zone tests")
    return {team: Principal(role=role, team=team, token_id=made[team][0]) for team, role in TEAMS.items()}


@pytest.fixture
def zconn(zdb: Settings) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the module's database (each write is its own transaction)."""
    with db.connect(zdb, autocommit=True) as connection:
        yield connection


def poly(geometry: shapely.Geometry) -> dict:
    """GeoJSON of a shapely geometry."""
    return shapely.geometry.mapping(geometry)


POLICE_WEEKDAYS = [{"day": d, "start": "08:00", "end": "20:00", "team": "brigade-19"} for d in range(5)]


# --- schedules (pure) ------------------------------------------------------------------------


def test_schedule_normalised_and_overnight_ranges() -> None:
    entries = normalize_schedule([
        {"day": 6, "start": "22:00", "end": "02:00", "team": "maraude-a"},  # Sunday night into Monday
        {"day": 0, "start": "08:00", "end": "24:00", "team": "brigade-19"},
        {"day": 0, "start": "08:00", "end": "24:00", "team": "brigade-19"},  # duplicate
        {"day": 2, "start": "21:30", "end": "00:00", "team": "maraude-a"},  # ends at midnight
    ])
    assert entries == [{"day": 0, "start": "08:00", "end": "24:00", "team": "brigade-19"},
                       {"day": 2, "start": "21:30", "end": "24:00", "team": "maraude-a"},
                       {"day": 6, "start": "22:00", "end": "02:00", "team": "maraude-a"}]
    mask = week_mask(entries)
    assert mask[:120].all() and not mask[120]  # Monday 00:00-02:00 from Sunday night
    assert mask_ranges(mask) == [{"day": 0, "start": "00:00", "end": "02:00"},
                                 {"day": 0, "start": "08:00", "end": "24:00"},
                                 {"day": 2, "start": "21:30", "end": "24:00"},
                                 {"day": 6, "start": "22:00", "end": "24:00"}]
    assert coverage_hours(entries) == 2 + 16 + 2.5 + 2


def test_coverage_hours_count_overlapping_teams_once() -> None:
    entries = normalize_schedule([{"day": 1, "start": "10:00", "end": "14:00", "team": "brigade-19"},
                                  {"day": 1, "start": "12:00", "end": "16:00", "team": "maraude-a"}])
    assert coverage_hours(entries) == 6
    assert coverage_hours(entries, {"maraude-a"}) == 4
    slots = uncovered_slots(entries)
    assert len(slots) == 168 - 6 and 24 + 10 not in slots and 24 + 9 in slots


def test_half_covered_hour_is_a_gap() -> None:
    entries = normalize_schedule([{"day": 0, "start": "08:30", "end": "10:00", "team": "t"}])
    assert 8 in uncovered_slots(entries) and 9 not in uncovered_slots(entries)


@pytest.mark.parametrize(("entry", "message"), [
    ({"day": 7, "start": "08:00", "end": "09:00", "team": "t"}, "schedule[0].day"),
    ({"day": True, "start": "08:00", "end": "09:00", "team": "t"}, "schedule[0].day"),
    ({"day": 1, "start": "8:00", "end": "09:00", "team": "t"}, "schedule[0].start"),
    ({"day": 1, "start": "24:00", "end": "09:00", "team": "t"}, "schedule[0].start"),
    ({"day": 1, "start": "08:00", "end": "25:00", "team": "t"}, "schedule[0].end"),
    ({"day": 1, "start": "08:00", "end": "08:61", "team": "t"}, "schedule[0].end"),
    ({"day": 1, "start": "08:00", "end": "08:00", "team": "t"}, "start and end are both"),
    ({"day": 1, "start": "08:00", "end": "09:00", "team": "no spaces"}, "schedule[0].team"),
    ({"day": 1, "start": "08:00", "end": "09:00", "team": "other"}, "neither the zone's owner"),
    ({"day": 1, "start": "08:00", "end": "09:00"}, "expected exactly the keys"),
    ({"day": 1, "start": "08:00", "end": "09:00", "team": "t", "note": "x"}, "expected exactly the keys"),
])
def test_schedule_refusals_name_the_entry(entry: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=re.escape(message)) as caught:
        normalize_schedule([entry], {"t", "no spaces"})
    assert caught.value.parameter == "schedule"


# --- geometry --------------------------------------------------------------------------------


def test_zone_is_stored_with_its_cover_and_coverage(zconn: psycopg.Connection, who: dict) -> None:
    zone = create_zone(zconn, who["brigade-19"], name="Jaurès", geometry=poly(BOX), partner_teams=["maraude-a"],
                       schedule=POLICE_WEEKDAYS)
    assert (zone.owner_team, zone.partner_teams, zone.version, zone.clipped_share) == (
        "brigade-19", ["maraude-a"], 1, 0.0)
    assert zone.geometry.equals(shapely.MultiPolygon([BOX]))
    assert zone.properties()["coverage_hours_per_week"] == 60
    assert zone.area_m2 == pytest.approx(0.008 * 0.006 * 111_320**2 * np.cos(np.radians(48.883)), rel=0.01)
    assert zone.etag == f'"zone-{zone.id}-v1"'


def test_cover_holds_every_point_and_every_stored_event(zconn: psycopg.Connection, who: dict) -> None:
    shape = shapely.Polygon([(2.3601, 48.8801), (2.3702, 48.8790), (2.3689, 48.8861), (2.3633, 48.8840)])
    zone = create_zone(zconn, who["brigade-19"], name="quad", geometry=poly(shape))
    cells = set(zone_cells(zconn, zone.id, 10).tolist())
    centre_cells = {h3.str_to_int(c) for c in h3.h3shape_to_cells_experimental(
        h3.geo_to_h3shape(poly(shape)), 10, "center")}
    assert centre_cells < cells  # more than the cells whose centre is inside
    rng = np.random.default_rng(7)
    minx, miny, maxx, maxy = shape.bounds
    points = [p for p in shapely.points(rng.uniform(minx, maxx, 4000), rng.uniform(miny, maxy, 4000))
              if shape.contains(p)]
    assert len(points) > 1000
    for p in points:
        assert h3.str_to_int(h3.latlng_to_cell(p.y, p.x, 10)) in cells  # every point lies in a zone cell
        fine = h3.latlng_to_cell(p.y, p.x, 11)
        assert h3.str_to_int(h3.cell_to_parent(fine, 10)) in cells  # an event there is counted in the zone
    assert set(zone_cells(zconn, zone.id, 10).tolist()) == set(zone_cover(zone.geometry, 10).tolist())


def test_zone_half_outside_is_clipped_and_says_how_much(zconn: psycopg.Connection, who: dict) -> None:
    area = shapely.from_wkb(zconn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0])
    # Straddles the western edge of the 18e (into the 17e).
    drawn = shapely.box(2.318, 48.885, 2.332, 48.892)
    zone = create_zone(zconn, who["brigade-18"], name="edge", geometry=poly(drawn))
    inside = drawn.intersection(area)
    assert 0 < zone.clipped_share < 1
    assert zone.clipped_share == pytest.approx(1 - inside.area / drawn.area, abs=0.01)
    assert zone.geometry.symmetric_difference(inside).area < 1e-9
    assert any("clipped to the study area" in n for n in zone.notes)


def test_zone_outside_the_study_area_is_refused(zconn: psycopg.Connection, who: dict) -> None:
    louvre = shapely.box(2.330, 48.858, 2.340, 48.863)
    with pytest.raises(InvalidArgumentError, match="outside the study area") as caught:
        create_zone(zconn, who["brigade-19"], name="Louvre", geometry=poly(louvre))
    assert caught.value.parameter == "geometry"


def test_bow_tie_is_refused_with_the_reason(zconn: psycopg.Connection, who: dict) -> None:
    bow_tie = {"type": "Polygon", "coordinates": [[[2.366, 48.880], [2.374, 48.886], [2.374, 48.880],
                                                   [2.366, 48.886], [2.366, 48.880]]]}
    with pytest.raises(InvalidArgumentError, match=r"Self-intersection\[2\.37 48\.883\].*bow-tie"):
        create_zone(zconn, who["brigade-19"], name="bow tie", geometry=bow_tie)


def test_spike_is_repaired_and_noted(zconn: psycopg.Connection, who: dict) -> None:
    # A square with a zero-width spike: invalid, but the repair keeps the drawn area.
    ring = [(2.366, 48.880), (2.374, 48.880), (2.374, 48.883), (2.378, 48.883), (2.374, 48.883),
            (2.374, 48.886), (2.366, 48.886), (2.366, 48.880)]
    assert not shapely.Polygon(ring).is_valid
    zone = create_zone(zconn, who["brigade-19"], name="spike", geometry=poly(shapely.Polygon(ring)))
    assert zone.geometry.is_valid
    assert zone.geometry.symmetric_difference(BOX).area < 1e-12
    assert any(n.startswith("repaired") for n in zone.notes)


def test_overlapping_parts_are_merged(zconn: psycopg.Connection, who: dict) -> None:
    parts = {"type": "MultiPolygon", "coordinates": [
        [list(shapely.box(2.366, 48.880, 2.370, 48.884).exterior.coords)],
        [list(shapely.box(2.368, 48.882, 2.372, 48.886).exterior.coords)]]}
    zone = create_zone(zconn, who["brigade-19"], name="two parts", geometry=parts)
    assert len(zone.geometry.geoms) == 1 and "overlapping or touching parts were merged" in zone.notes


@pytest.mark.parametrize(("geometry", "message"), [
    ({"type": "Point", "coordinates": [2.37, 48.88]}, "Polygon or MultiPolygon"),
    ({"type": "Polygon", "coordinates": [[[652000, 6862000], [653000, 6862000], [653000, 6863000],
                                          [652000, 6862000]]]}, "Lambert-93"),
    ({"type": "Polygon", "coordinates": "nonsense"}, "not readable GeoJSON"),
    ({"type": "Polygon", "coordinates": [list(shapely.Point(2.37, 48.883).buffer(0.003, 2600).exterior.coords)]},
     f"at most {MAX_VERTICES:,}"),
])
def test_unusable_geometries_are_refused(zconn: psycopg.Connection, who: dict, geometry: dict, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        create_zone(zconn, who["brigade-19"], name="bad", geometry=geometry)


def test_partners_must_be_known_teams(zconn: psycopg.Connection, who: dict) -> None:
    with pytest.raises(InvalidArgumentError, match="unknown team") as caught:
        create_zone(zconn, who["brigade-19"], name="x", geometry=poly(BOX), partner_teams=["ghost-team"])
    assert caught.value.parameter == "partner_teams"
    with pytest.raises(InvalidArgumentError, match="neither the zone's owner nor one of its partners"):
        create_zone(zconn, who["brigade-19"], name="x", geometry=poly(BOX),
                    schedule=[{"day": 0, "start": "08:00", "end": "09:00", "team": "maraude-a"}])


# --- who sees and edits what -----------------------------------------------------------------


def test_another_teams_zone_does_not_exist_for_it(zconn: psycopg.Connection, who: dict) -> None:
    zone = create_zone(zconn, who["brigade-19"], name="mine", geometry=poly(BOX), partner_teams=["maraude-a"])
    other = who["brigade-18"]
    for attempt in (lambda: get_zone(zconn, other, zone.id), lambda: zone_history(zconn, other, zone.id),
                    lambda: update_zone(zconn, other, zone.id, version=1, name="taken"),
                    lambda: archive_zone(zconn, other, zone.id, version=1),
                    lambda: zone_summary(zconn, other, zone.id, start="2013-03-01", end="2013-04-01")):
        with pytest.raises(NotFoundError):
            attempt()
    assert zone.id not in {z.id for z in list_zones(zconn, other)}
    # The partner and the planner see it, but only the owner edits it.
    for reader in (who["maraude-a"], who["urbanism"], who["stewards"]):
        assert get_zone(zconn, reader, zone.id).name == "mine"
        assert zone.id in {z.id for z in list_zones(zconn, reader)}
        with pytest.raises(AccessDeniedError, match="only its owner edits it"):
            update_zone(zconn, reader, zone.id, version=1, name="taken")
    with pytest.raises(AccessDeniedError):
        list_zones(zconn, Principal("public", "public"))
    assert get_zone(zconn, who["brigade-19"], zone.id).version == 1


def test_stale_edit_is_a_conflict(zconn: psycopg.Connection, who: dict) -> None:
    owner = who["brigade-19"]
    zone = create_zone(zconn, owner, name="v1", geometry=poly(BOX))
    first = update_zone(zconn, owner, zone.id, version=1, name="edited by A")
    assert first.version == 2
    with pytest.raises(ZoneConflictError, match="at version 2") as caught:
        update_zone(zconn, owner, zone.id, version=1, name="edited by B")
    assert caught.value.current_version == 2
    assert get_zone(zconn, owner, zone.id).name == "edited by A"
    same = update_zone(zconn, owner, zone.id, version=2, name="edited by A")  # no change: no new version
    assert same.version == 2


def test_concurrent_edits_one_wins_one_gets_a_conflict(zdb: Settings, zconn: psycopg.Connection, who: dict) -> None:
    owner = who["brigade-19"]
    zone = create_zone(zconn, owner, name="race", geometry=poly(BOX))
    outcome: dict[str, object] = {}
    a_locked, b_started = threading.Event(), threading.Event()

    def editor_a() -> None:
        with db.connect(zdb) as conn:  # holds the row lock until it commits
            with conn.transaction():
                outcome["a"] = update_zone(conn, owner, zone.id, version=1, name="A")
                a_locked.set()
                b_started.wait(5)
                time.sleep(0.3)  # B is now waiting for the lock

    def editor_b() -> None:
        a_locked.wait(5)
        with db.connect(zdb) as conn:
            b_started.set()
            try:
                outcome["b"] = update_zone(conn, owner, zone.id, version=1, name="B")
            except ZoneConflictError as exc:
                outcome["b"] = exc

    threads = [threading.Thread(target=editor_a), threading.Thread(target=editor_b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert outcome["a"].version == 2
    assert isinstance(outcome["b"], ZoneConflictError) and outcome["b"].current_version == 2
    assert get_zone(zconn, owner, zone.id).name == "A"
    assert [h["version"] for h in zone_history(zconn, owner, zone.id)] == [1, 2]


def test_history_and_state_at_a_past_instant(zconn: psycopg.Connection, who: dict) -> None:
    owner = who["brigade-19"]
    zone = create_zone(zconn, owner, name="first name", geometry=poly(BOX), schedule=POLICE_WEEKDAYS[:1])
    after_create = datetime.now(UTC)
    time.sleep(0.05)
    bigger = shapely.box(2.364, 48.879, 2.376, 48.887)
    update_zone(zconn, owner, zone.id, version=1, name="second name", geometry=poly(bigger),
                partner_teams=["maraude-b"])
    after_update = datetime.now(UTC)
    time.sleep(0.05)
    archived = archive_zone(zconn, owner, zone.id, version=2)
    assert archived.archived_at is not None and archived.version == 3

    history = zone_history(zconn, who["urbanism"], zone.id)
    assert [(h["version"], h["action"]) for h in history] == [(1, "create"), (2, "update"), (3, "archive")]
    assert history[0]["before"] is None and history[0]["changed_by"] == {"role": "police", "team": "brigade-19"}
    assert history[1]["before"]["name"] == "first name" and history[1]["after"]["name"] == "second name"
    assert history[1]["after"]["partner_teams"] == ["maraude-b"]
    assert history[2]["after"]["archived_at"] is not None

    then = get_zone(zconn, owner, zone.id, at=after_create)
    assert (then.version, then.name, then.partner_teams) == (1, "first name", [])
    assert then.geometry.equals(shapely.MultiPolygon([BOX]))
    later = get_zone(zconn, owner, zone.id, at=after_update.isoformat())
    assert (later.version, later.name) == (2, "second name")
    assert later.geometry.equals(shapely.MultiPolygon([bigger]))
    assert get_zone(zconn, owner, zone.id, at=date.today() + timedelta(days=1)).version == 3
    with pytest.raises(NotFoundError, match="did not exist yet"):
        get_zone(zconn, owner, zone.id, at="2000-01-01")
    with pytest.raises(InvalidArgumentError, match="at:"):
        get_zone(zconn, owner, zone.id, at="last tuesday")

    # Archived: out of the active list, never edited again, history append-only.
    assert zone.id not in {z.id for z in list_zones(zconn, owner)}
    assert zone.id in {z.id for z in list_zones(zconn, owner, include_archived=True)}
    with pytest.raises(ZoneConflictError, match="archived"):
        update_zone(zconn, owner, zone.id, version=3, name="again")
    with pytest.raises(psycopg.errors.RestrictViolation):
        zconn.execute("UPDATE zone_history SET after = '{}' WHERE zone_id = %s", (zone.id,))
    with pytest.raises(psycopg.errors.RestrictViolation):
        zconn.execute("DELETE FROM zone_history WHERE zone_id = %s", (zone.id,))


def test_dropping_a_partner_still_named_in_the_schedule_is_refused(zconn: psycopg.Connection, who: dict) -> None:
    owner = who["brigade-19"]
    zone = create_zone(zconn, owner, name="shared", geometry=poly(BOX), partner_teams=["maraude-a"],
                       schedule=[{"day": 5, "start": "10:00", "end": "12:00", "team": "maraude-a"}])
    with pytest.raises(InvalidArgumentError, match="add it to partner_teams first"):
        update_zone(zconn, owner, zone.id, version=1, partner_teams=[])
    done = update_zone(zconn, owner, zone.id, version=1, partner_teams=[], schedule=[])
    assert (done.partner_teams, done.schedule, done.version) == ([], [], 2)


# --- summaries -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def summary_case(zdb: Settings, who: dict) -> dict:
    """A zone around Jaurès with incidents in March 2013 (and fewer in the 31 days before) and
    outreach contacts of two teams."""
    rng = np.random.default_rng(2013)
    around = shapely.box(2.362, 48.877, 2.378, 48.889)  # wider than the zone: counts must use the cover
    def points(n: int) -> list[tuple[float, float]]:
        return [fine_centre(x, y) for x, y in zip(rng.uniform(*around.bounds[::2], n),
                                                   rng.uniform(*around.bounds[1::2], n), strict=True)]
    ingest_frame(zdb, pd.concat([
        records_at(points(120), kind="incident", category="drug_litter", day="2013-03-12", source="zones-2013",
                   prefix="now"),
        records_at(points(30), kind="incident", category="dealing", day="2013-02-10", source="zones-2013",
                   prefix="before")]))
    ingest_frame(zdb, records_at(points(40), kind="outreach", category="contact", day="2013-03-14",
                                 source="zones-2013-maraude-a", prefix="a"), team="maraude-a")
    ingest_frame(zdb, records_at(points(25), kind="outreach", category="care_referral", day="2013-03-15",
                                 source="zones-2013-maraude-b", prefix="b"), team="maraude-b")
    with db.connect(zdb, autocommit=True) as conn:
        zone = create_zone(conn, who["brigade-19"], name="summary", geometry=poly(BOX),
                           partner_teams=["maraude-a", "urbanism"], schedule=POLICE_WEEKDAYS)
    return {"zone": zone.id}


WINDOW = {"start": "2013-03-01", "end": "2013-04-01"}


def brute_force(conn: psycopg.Connection, cells: set[int], kind: str, start: str, end: str,
                source_prefix: str = "") -> int:
    """Count stored events whose resolution-11 cell's parent is a zone cell (h3-py, not the library)."""
    rows = conn.execute(
        "SELECT e.h3_r11 FROM events e JOIN kinds k ON k.id = e.kind_id JOIN sources s ON s.id = e.source_id "
        "WHERE k.name = %s AND (e.occurred_at AT TIME ZONE 'Europe/Paris')::date >= %s "
        "AND (e.occurred_at AT TIME ZONE 'Europe/Paris')::date < %s AND s.name LIKE %s",
        (kind, start, end, source_prefix + "%")).fetchall()
    return sum(h3.str_to_int(h3.cell_to_parent(h3.int_to_str(r[0]), 10)) in cells for r in rows)


@pytest.mark.parametrize("resolution", [9, 10, 11])
def test_zone_count_equals_sum_of_hex_counts_over_its_cells(zdb: Settings, zconn: psycopg.Connection,
                                                            summary_case: dict, resolution: int) -> None:
    zone_id = summary_case["zone"]
    result = zone_summary(zconn, None, zone_id, **WINDOW, resolution=resolution, settings=zdb)
    cells = zone_cells(zconn, zone_id, resolution)
    hexes = hex_counts(zconn, **WINDOW, resolution=resolution, kinds=["incident"], settings=zdb)
    expected = int(hexes.set_index("cell")["count"].reindex(cells, fill_value=0).sum())
    assert result["incidents"]["count"] == expected > 0
    assert result["cells"] == len(cells)
    if resolution == 10:
        assert expected == brute_force(zconn, set(cells.tolist()), "incident", **WINDOW)
        outreach = hex_counts(zconn, **WINDOW, resolution=10, kinds=["outreach"], settings=zdb)
        assert result["outreach"]["count"] == int(outreach.set_index("cell")["count"].reindex(cells, fill_value=0).sum())


def test_summary_trend_works_stations_and_coverage(zdb: Settings, zconn: psycopg.Connection, summary_case: dict,
                                                   who: dict) -> None:
    zone_id = summary_case["zone"]
    result = zone_summary(zconn, who["urbanism"], zone_id, **WINDOW, settings=zdb)
    cells = set(zone_cells(zconn, zone_id, 10).tolist())
    incidents = result["incidents"]
    assert result["previous_window"] == {"start": "2013-01-29", "end": "2013-03-01"}
    assert incidents["previous"] == brute_force(zconn, cells, "incident", "2013-01-29", "2013-03-01")
    assert incidents["count"] > 2 * incidents["previous"] > 0 and incidents["trend"] == "up"
    assert incidents["by_category"] == {"drug_litter": incidents["count"]}
    assert {"Jaurès", "Stalingrad"} <= {s["name"] for s in result["stations"]}
    jaures = next(s for s in result["stations"] if s["name"] == "Jaurès")
    assert jaures["lines"] == ["METRO 2", "METRO 5", "METRO 7bis"]
    assert result["coverage_hours_per_week"] == 60
    assert result["coverage_hours_by_team"] == {"brigade-19": 60}
    assert isinstance(result["works"], list) and isinstance(result["hotspots"], list)


def test_police_summary_has_no_outreach_and_outreach_sees_its_own(zdb: Settings, zconn: psycopg.Connection,
                                                                  summary_case: dict, who: dict) -> None:
    zone_id = summary_case["zone"]
    cells = set(zone_cells(zconn, zone_id, 10).tolist())
    police = zone_summary(zconn, who["brigade-19"], zone_id, **WINDOW, settings=zdb)
    assert "outreach" not in police
    assert "outreach" not in str(police["incidents"])
    own = zone_summary(zconn, who["maraude-a"], zone_id, **WINDOW, settings=zdb)
    planner = zone_summary(zconn, who["urbanism"], zone_id, **WINDOW, settings=zdb)
    team_a = brute_force(zconn, cells, "outreach", **WINDOW, source_prefix="zones-2013-maraude-a")
    everyone = brute_force(zconn, cells, "outreach", **WINDOW)
    assert own["outreach"]["count"] == team_a > 0
    assert own["outreach"]["by_category"] == {"contact": team_a}
    assert planner["outreach"]["count"] == everyone > team_a
    assert own["incidents"] == planner["incidents"] == police["incidents"]


# --- the gap report on a case built so its answer is known ------------------------------------


GAP_WINDOW = {"start": "2012-06-01", "end": "2012-07-01"}


def station_point(conn: psycopg.Connection, name: str) -> tuple[float, float]:
    """(lon, lat) of a station (the first of its lines)."""
    return conn.execute("SELECT ST_X(geom), ST_Y(geom) FROM stations WHERE name = %s AND mode = 'METRO' "
                        "ORDER BY line LIMIT 1", (name,)).fetchone()


def hex_union(cells: list[str], pad: float) -> shapely.Geometry:
    """The union of hexagons, padded by ``pad`` degrees."""
    shapes = [shapely.Polygon([(lng, lat) for lat, lng in h3.cell_to_boundary(c)]) for c in cells]
    return shapely.union_all(shapes).buffer(pad, join_style="mitre")


@pytest.fixture(scope="module")
def gap_case(zdb: Settings, who: dict) -> dict:
    """Two incident spikes in June 2012 (A at Jaurès, B in the 18e) and five zones:

    - ZA (police brigade-19, partner maraude-a) holds A and the Jaurès station; brigade-19
      Monday-Friday 08:00-20:00 and maraude-a Saturday 10:00-12:00: 106 uncovered hours;
    - ZE (outreach maraude-b) overlaps ZA's far edge; maraude-b Monday 18:00-22:00: one clash
      with brigade-19 on Monday 18:00-20:00;
    - ZD (police brigade-18, partner maraude-b never scheduled) holds Belleville: no outreach;
    - ZX covered B but is archived; ZF (police) overlaps ZA with police only: no clash.
    """
    with db.connect(zdb, autocommit=True) as conn:
        conn.execute("UPDATE zones SET archived_at = now() WHERE archived_at IS NULL")  # only this case counts
        a_lon, a_lat = fine_centre(*station_point(conn, "Jaurès"))
        b_lon, b_lat = fine_centre(2.3500, 48.8930)
        spikes = [(a_lon, a_lat)] * 30 + [(b_lon, b_lat)] * 30
        ingest_frame(zdb, records_at(spikes, kind="incident", category="consumption_gathering", day="2012-06-15",
                                     source="zones-2012", prefix="spike"))
        centre = {k: h3.cell_to_parent(h3.latlng_to_cell(lat, lon, 11), 10)
                  for k, (lon, lat) in {"A": (a_lon, a_lat), "B": (b_lon, b_lat)}.items()}
        hot = {k: sorted(h3.grid_disk(c, 1)) for k, c in centre.items()}
        za_shape = hex_union(hot["A"], 0.004)
        minx, miny, maxx, maxy = za_shape.bounds
        ze_shape = shapely.box(maxx - 0.001, miny, maxx + 0.004, maxy)
        zf_shape = shapely.box(minx - 0.003, miny, minx + 0.001, maxy)
        belleville = shapely.Point(station_point(conn, "Belleville")).buffer(0.0015)
        police, outreach = who["brigade-19"], who["maraude-b"]
        za = create_zone(conn, police, name="ZA", geometry=za_shape, partner_teams=["maraude-a"],
                         schedule=[*POLICE_WEEKDAYS, {"day": 5, "start": "10:00", "end": "12:00", "team": "maraude-a"}])
        ze = create_zone(conn, outreach, name="ZE", geometry=ze_shape,
                         schedule=[{"day": 0, "start": "18:00", "end": "22:00", "team": "maraude-b"}])
        zd = create_zone(conn, who["brigade-18"], name="ZD", geometry=belleville, partner_teams=["maraude-b"],
                         schedule=[{"day": d, "start": "00:00", "end": "24:00", "team": "brigade-18"} for d in range(7)])
        zx = create_zone(conn, outreach, name="ZX", geometry=hex_union(hot["B"], 0.001),
                         schedule=[{"day": 0, "start": "18:00", "end": "22:00", "team": "maraude-b"}])
        archive_zone(conn, outreach, zx.id, version=1)
        zf = create_zone(conn, police, name="ZF", geometry=zf_shape, schedule=POLICE_WEEKDAYS)
    return {"hot": hot, "za": za, "ze": ze, "zd": zd, "zf": zf}


def test_planted_spikes_are_the_only_hotspots(zdb: Settings, zconn: psycopg.Connection, gap_case: dict) -> None:
    result = hotspots(zconn, **GAP_WINDOW, resolution=10, kinds=["incident"], settings=zdb)
    significant = set(result.loc[result["gi_bin"] >= 2, "h3"])
    assert significant == set(gap_case["hot"]["A"]) | set(gap_case["hot"]["B"])


def test_gap_report_gives_the_known_answer(zdb: Settings, zconn: psycopg.Connection, gap_case: dict) -> None:
    za, ze, zd = gap_case["za"], gap_case["ze"], gap_case["zd"]
    report = zone_gaps(zconn, **GAP_WINDOW, resolution=10, settings=zdb)

    # 1. Significant hotspots in no active zone: exactly B (ZX covered it, but is archived).
    assert set(report.hotspots["h3"]) == set(gap_case["hot"]["A"]) | set(gap_case["hot"]["B"])
    assert set(report.uncovered_hotspots["h3"]) == set(gap_case["hot"]["B"])

    # 2. Hotspot zones and their hours with no team: ZA only, 168 - 5 x 12 - 2 = 106 hours.
    assert [z["id"] for z in report.hotspot_zones] == [za.id]
    hours = report.hotspot_zones[0]
    assert hours["uncovered_hours"] == 106
    assert sorted(hours["hotspot_cells"]) == sorted(gap_case["hot"]["A"])
    weekday = [[{"day": d, "start": "00:00", "end": "08:00"}, {"day": d, "start": "20:00", "end": "24:00"}]
               for d in range(5)]
    assert hours["uncovered"] == [*sum(weekday, []), {"day": 5, "start": "00:00", "end": "10:00"},
                                  {"day": 5, "start": "12:00", "end": "24:00"},
                                  {"day": 6, "start": "00:00", "end": "24:00"}]

    # 3. Metro stations with no outreach: computed again here from the raw layers with shapely.
    rows = zconn.execute("SELECT name, ST_X(geom), ST_Y(geom) FROM stations WHERE mode = 'METRO'").fetchall()
    area = shapely.from_wkb(zconn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0])
    outreach_zones = [za.geometry, ze.geometry]  # the zones where an outreach team is scheduled
    names = {n for n, x, y in rows if area.intersects(shapely.Point(x, y))}
    covered = {n for n, x, y in rows if any(z.intersects(shapely.Point(x, y)) for z in outreach_zones)}
    assert set(report.stations["name"]) == names
    assert set(report.uncovered_stations["name"]) == names - covered
    assert "Jaurès" in covered and "Belleville" not in covered  # ZD: police, and a partner never scheduled
    assert "Belleville" in set(report.uncovered_stations["name"])

    # 4. Conflicting schedules: ZA's police and ZE's outreach on Monday 18:00-20:00; ZF is police only.
    assert len(report.conflicts) == 1
    conflict = report.conflicts[0]
    assert conflict["zones"] == [za.id, ze.id] and conflict["overlap_m2"] > 0
    assert conflict["clashes"] == [{
        "police": {"zone": za.id, "zone_name": "ZA", "team": "brigade-19"},
        "outreach": {"zone": ze.id, "zone_name": "ZE", "team": "maraude-b"},
        "hours": 2.0, "times": [{"day": 0, "start": "18:00", "end": "20:00"}]}]
    assert gap_case["zf"].id not in conflict["zones"] and zd.id not in conflict["zones"]

    as_json = report.to_dict()
    assert as_json["hotspots"] == {"significant": 14, "uncovered": 7}
    assert {f["properties"]["h3"] for f in as_json["uncovered_hotspots"]["features"]} == set(gap_case["hot"]["B"])


def test_gap_report_details_follow_visibility(zdb: Settings, zconn: psycopg.Connection, gap_case: dict,
                                              who: dict) -> None:
    za, ze = gap_case["za"], gap_case["ze"]
    other_police = zone_gaps(zconn, **GAP_WINDOW, principal=who["brigade-18"], settings=zdb)
    assert other_police.hotspot_zones == [] and other_police.conflicts == []
    assert set(other_police.uncovered_hotspots["h3"]) == set(gap_case["hot"]["B"])  # coverage is a city fact
    outreach_b = zone_gaps(zconn, **GAP_WINDOW, principal=who["maraude-b"], settings=zdb)
    assert outreach_b.hotspot_zones == []  # ZA is not theirs
    [conflict] = outreach_b.conflicts
    assert conflict["zones"] == [None, ze.id]
    assert conflict["clashes"][0]["police"] == {"zone": None, "zone_name": None, "team": None, "hidden": True}
    assert conflict["clashes"][0]["times"] == [{"day": 0, "start": "18:00", "end": "20:00"}]
    partner = zone_gaps(zconn, **GAP_WINDOW, principal=who["maraude-a"], settings=zdb)
    assert [z["id"] for z in partner.hotspot_zones] == [za.id]


def test_zones_frame_for_the_coordination_map(zconn: psycopg.Connection, gap_case: dict, who: dict) -> None:
    frame = zones_frame(zconn)
    assert list(frame.columns) == ["id", "name", "owner_team", "partner_teams", "schedule", "version",
                                   "archived_at", "coverage_hours", "geometry"]
    assert frame.crs.to_epsg() == 4326
    assert set(frame["name"]) == {"ZA", "ZE", "ZD", "ZF"}
    za = frame[frame["name"] == "ZA"].iloc[0]
    assert za["partner_teams"] == ["maraude-a"] and za["coverage_hours"] == 62
    assert za["schedule"][0] == {"day": 0, "start": "08:00", "end": "20:00", "team": "brigade-19"}
    assert set(zones_frame(zconn, "maraude-b")["name"]) == {"ZE", "ZD"}
    assert set(zones_frame(zconn, who["brigade-18"])["name"]) == {"ZD"}
    assert set(zones_frame(zconn, who["urbanism"])["name"]) == {"ZA", "ZE", "ZD", "ZF"}
