"""API fixtures: a known data set in the session database, a token per role, the app in a TestClient.

Everything goes through real HTTP on the real app (``TestClient`` inside ``with`` so the
lifespan opens the pool) against the session's real PostGIS database.

Data (committed, so the app's own connections see it):
- ``api-sample``: 5,000 synthetic events (geo_monitor.store.sample, 2019-2021), no team;
- ``outreach-team-a`` / ``outreach-team-b``: outreach contacts in March 2008 (a year no other
  test uses), owned by team-a / team-b, planted so that at resolution 8 one cell holds at
  least ``release_k`` events and the others fewer (the police suppression case).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from builders import bearer, ingest_all, ingest_sample, make_tokens, records_in_cells
from fastapi.testclient import TestClient
from servers import free_port, server_env, stop_server
from servers import start_server as begin

from api.main import create_app
from geo_monitor import db, hexagons
from geo_monitor.grid import study_grid
from geo_monitor.settings import Settings

SAMPLE_SOURCE = "api-sample"
SAMPLE_EVENTS = 5_000
TEAM_A, TEAM_B = "team-a", "team-b"
SOURCE_A, SOURCE_B = "outreach-team-a", "outreach-team-b"
TEAM_MONTH = {"start": "2008-03-01", "end": "2008-04-01"}
SAMPLE_MONTH = {"start": "2020-03-01", "end": "2020-04-01"}
ROLES = ("admin", "planner", "police", "outreach", "public")


@dataclass(frozen=True)
class Planted:
    """Where the team events were put: three resolution-8 cells and their counts per team."""

    big: int  # resolution-8 cell with >= k events (team-a and team-b together)
    small_a: int  # resolution-8 cell with team-a's few events
    small_b: int  # resolution-8 cell with team-b's few events
    counts: dict[str, dict[int, int]]  # team -> res-8 cell -> events


def sql_one(settings: Settings, query: str, params: tuple | dict | None = None):
    """Run one query on a fresh autocommit connection and return its first row."""
    with db.connect(settings, autocommit=True) as conn:
        return conn.execute(query, params).fetchone()


def _inner_fine_cells(conn: psycopg.Connection) -> np.ndarray:
    """Resolution-11 study cells whose centre lies inside the study area (ingest accepts them)."""
    area = shapely.from_wkb(conn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0])
    cells = study_grid(conn, 11)
    lat, lng = hexagons.cells_to_latlng(cells)
    return cells[shapely.contains_xy(area, lng, lat)]


@pytest.fixture(scope="session")
def api_settings(loaded_db: Settings) -> Settings:
    """The session database's settings with a public rate limit no test reaches by accident."""
    return loaded_db.model_copy(update={"public_rate_per_minute": 1_000_000})


@pytest.fixture(scope="session")
def api_data(api_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Planted:
    """Ingest the sample and the two teams' outreach sources once per session."""
    ingest_sample(api_settings, tmp_path_factory.mktemp("api-data"), SAMPLE_EVENTS, seed=2718,
                  source=SAMPLE_SOURCE, at_least=0.9)
    with db.connect(api_settings) as conn:
        fine = _inner_fine_cells(conn)
        parents = hexagons.cells_to_parents(fine, 8)
        distinct = pd.unique(parents)
        assert len(distinct) >= 3
        big, small_a, small_b = (int(c) for c in distinct[[0, len(distinct) // 2, -1]])

        def child(parent: int) -> int:
            return int(fine[parents == parent][0])

        a_cells = [child(big)] * 15 + [child(small_a)] * 3
        b_cells = [child(big)] * 2 + [child(small_b)] * 4
        for cells, source, team in ((a_cells, SOURCE_A, TEAM_A), (b_cells, SOURCE_B, TEAM_B)):
            contacts = records_in_cells(cells, kind="outreach", category="contact",
                                        occurred_at="2008-03-10T12:00:00+01:00",
                                        ids=[f"{team}-{i}" for i in range(len(cells))], source=source)
            ingest_all(conn, api_settings, contacts, source, team=team)
        conn.commit()
    counts = {TEAM_A: {big: 15, small_a: 3}, TEAM_B: {big: 2, small_b: 4}}
    return Planted(big, small_a, small_b, counts)


@pytest.fixture(scope="session")
def tokens(api_settings: Settings) -> dict[str, str | None]:
    """A valid token per role (outreach is team-a; ``outreach-b`` is team-b; public has none)."""
    made = make_tokens(api_settings, {"admin": ("admin", "stewards"), "planner": ("planner", "urbanism"),
                                      "police": ("police", "brigade-19"), "outreach": ("outreach", TEAM_A),
                                      "outreach-b": ("outreach", TEAM_B)}, days=30, description="api tests")
    return {"public": None, **{key: token for key, (_, token) in made.items()}}


@pytest.fixture(scope="session")
def headers(tokens: dict[str, str | None]) -> dict[str, dict[str, str]]:
    """The Authorization header of each role's token (empty for the public)."""
    return {role: bearer(token) for role, token in tokens.items()}


@pytest.fixture(scope="session")
def sql(api_settings: Settings) -> Iterator:
    """``sql(query, params) -> rows`` on an autocommit connection (sees what the app committed)."""
    with db.connect(api_settings, autocommit=True) as conn:

        def run(query: str, params: tuple | dict | None = None) -> list[tuple]:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

        yield run


@pytest.fixture(scope="session")
def client(api_settings: Settings, api_data: Planted) -> Iterator[TestClient]:
    """The app on the session database, its lifespan running."""
    with TestClient(create_app(api_settings)) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def works_site(api_settings: Settings) -> str:
    """A real works site of the study area (for /impact)."""
    row = sql_one(api_settings, "SELECT w.id FROM works_sites w, study_area s WHERE w.arrondissement = ANY(s.codes) "
                                "AND w.starts_at IS NOT NULL ORDER BY w.id LIMIT 1")
    assert row is not None, "no works site in the study area: is the works layer loaded?"
    return row[0]


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def start_server(api_settings, api_data, tmp_path) -> Iterator:
    """``start(**env) -> base URL`` of a uvicorn process on a free port; stopped after the test."""
    started = []

    def start(**extra_env: str) -> str:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "--factory", "api.main:app_factory", "--host", "127.0.0.1",
                   "--port", str(port), "--log-level", "warning"]
        started.append(begin(command, server_env(api_settings, PYTHONPATH=str(REPO), **extra_env), tmp_path, port,
                             timeout=30))
        return f"http://127.0.0.1:{port}"

    yield start
    for process in started:
        stop_server(process)
