"""Coverage gap on a planted case: incidents with and without outreach in March 2006.

2006 is a year no other test uses; the events stay in the ``conn`` fixture's transaction
and are rolled back when the test ends.
"""

from __future__ import annotations

import re

import numpy as np
import psycopg
import pytest
import shapely
from builders import ingest_all, records_in_cells

from geo_monitor import hexagons
from geo_monitor.analysis.coverage import STATUSES, coverage_gap
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.grid import study_grid
from geo_monitor.settings import Settings

WINDOW = {"start": "2006-03-01", "end": "2006-04-01"}
SLICE = {"incident_categories": ["drug_litter"], "outreach_categories": ["contact"]}


def inner_cells(conn: psycopg.Connection, resolution: int) -> np.ndarray:
    """Study-grid cells whose centre lies inside the study area (ingest accepts their centres)."""
    area = shapely.from_wkb(conn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0])
    cells = study_grid(conn, resolution)
    lat, lng = hexagons.cells_to_latlng(cells)
    return cells[shapely.contains_xy(area, lng, lat)]


def plant(conn: psycopg.Connection, settings: Settings, source: str, counts: dict[int, tuple[int, int]]) -> None:
    """Ingest, per cell, (incidents, outreach contacts) at its centre on March days of 2006."""
    rows = [(cell, kind, category, f"2006-03-{1 + i:02d}T12:00:00+01:00", f"{cell}-{kind}-{i}")
            for cell, (incidents, contacts) in counts.items()
            for kind, category, n in (("incident", "drug_litter", incidents), ("outreach", "contact", contacts))
            for i in range(n)]
    cells, kinds, categories, times, ids = zip(*rows, strict=True)
    ingest_all(conn, settings, records_in_cells(cells, kind=kinds, category=categories, occurred_at=times, ids=ids,
                                                source=source), source)


def test_coverage_gap_planted(loaded_db: Settings, conn: psycopg.Connection, request: pytest.FixtureRequest) -> None:
    before = coverage_gap(conn, **WINDOW, **SLICE, settings=loaded_db)
    assert before[["incidents", "outreach"]].to_numpy().sum() == 0, "drug_litter/contact events already in 2006-03"
    assert (before["status"] == "no incidents").all() and not before["uncovered"].any()

    cells = inner_cells(conn, 9)
    alone, served, thin, few, outreach_only = (int(cells[i]) for i in np.linspace(0, len(cells) - 1, 5).astype(int))
    plant(conn, loaded_db, re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)[:64],
          {alone: (6, 0), served: (6, 6), thin: (8, 1), few: (2, 0), outreach_only: (0, 3)})

    frame = coverage_gap(conn, **WINDOW, **SLICE, settings=loaded_db)

    assert frame.crs.to_epsg() == 4326 and len(frame) == len(study_grid(conn, 9))
    assert frame["cell"].is_unique and (frame.geometry.geom_type == "Polygon").all()
    rows = frame.set_index("cell")
    assert rows.loc[[alone, served, thin, few, outreach_only], ["incidents", "outreach"]].to_numpy().tolist() == \
        [[6, 0], [6, 6], [8, 1], [2, 0], [0, 3]]
    assert rows.loc[alone, "status"] == "no outreach" and rows.loc[alone, "uncovered"]
    assert rows.loc[served, "status"] == "covered" and not rows.loc[served, "uncovered"]
    # typical ratio 10/22: 1/8 is below half of it
    assert rows.loc[thin, "status"] == "low outreach" and rows.loc[thin, "uncovered"]
    assert rows.loc[few, "status"] == "few incidents" and not rows.loc[few, "uncovered"]
    assert rows.loc[outreach_only, "status"] == "no incidents" and np.isnan(rows.loc[outreach_only, "ratio"])
    assert rows.loc[served, "ratio"] == 1.0 and rows.loc[thin, "ratio"] == 1 / 8
    assert rows.loc[alone, "gap"] == pytest.approx(6 / 22)
    assert rows.loc[outreach_only, "gap"] == pytest.approx(-3 / 10)
    assert frame["gap"].sum() == pytest.approx(0)
    assert frame["uncovered"].sum() == 2 and set(frame["status"]) <= set(STATUSES)
    assert rows.loc[alone, "h3"] == hexagons.cell_to_str(alone)

    part = coverage_gap(conn, **WINDOW, **SLICE, area="arrondissement:75119", settings=loaded_db)
    assert 0 < len(part) < len(frame) and set(part["cell"]) <= set(frame["cell"])


@pytest.mark.parametrize(("options", "message"), [
    ({"resolution": 3}, "resolution 3 is not served"),
    ({"start": "2006-04-01", "end": "2006-03-01"}, "must come after its start"),
    ({"incident_categories": ["contact"]}, "unknown category"),
    ({"min_incidents": 0}, "min_incidents"),
    ({"area": {"type": "Polygon", "coordinates": [[[2.29, 48.85], [2.30, 48.85], [2.30, 48.86], [2.29, 48.85]]]}},
     "outside the study area"),  # by the Eiffel tower
    ({"area": "arrondissement:75001"}, "no arrondissement"),
])
def test_coverage_gap_bad_arguments(loaded_db: Settings, conn: psycopg.Connection, options: dict,
                                    message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        coverage_gap(conn, **{**WINDOW, **options}, settings=loaded_db)
