"""`geo-monitor export FILE`: a slice of hexagon counts written through the access policy.

The command runs as a user runs it (the installed script in a subprocess) against the real
PostGIS session database; each file read back must hold what ``access.hex_counts`` answers the
same principal, and a refusal is the library's (the API's) message, audited.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from builders import ingest_frame, make_tokens, records_at

from geo_monitor import db
from geo_monitor.errors import AccessDeniedError
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings
from tests.test_cli import GAMBETTA, GARE_DE_L_EST, LAUMIERE, run

WINDOW = ["--start", "2013-03-01", "--end", "2013-04-01"]
STEWARD = Principal(role="admin", team="steward")


@pytest.fixture(scope="module")
def planted(loaded_db: Settings) -> dict[str, tuple[int, str]]:
    """Incidents and the outreach of two teams in March 2013; a police and an outreach token."""
    ingest_frame(loaded_db, records_at([GARE_DE_L_EST, GARE_DE_L_EST, LAUMIERE, GAMBETTA], kind="incident",
                                       category="dealing", day="2013-03-05", source="exportcli-incidents"))
    for team, points in (("export-a", [LAUMIERE, LAUMIERE, GAMBETTA]), ("export-b", [GARE_DE_L_EST])):
        ingest_frame(loaded_db, records_at(points, kind="outreach", category="contact", day="2013-03-12",
                                           source=f"exportcli-{team}"), team=team)
    return make_tokens(loaded_db, {"police": ("police", "export-police"), "outreach": ("outreach", "export-a")})


def expected(settings: Settings, principal: Principal, **asked: object) -> dict[str, int]:
    """The h3 -> count answer of the access policy for this principal."""
    chosen = access.slice_for(principal, settings, start=date(2013, 3, 1), end=date(2013, 4, 1), resolution=9,
                              **asked)
    with db.connect(settings) as conn:
        frame = access.hex_counts(conn, principal, chosen, settings).frame
    return dict(zip(frame["h3"], frame["count"].astype(int), strict=True))


def read_back(path: Path) -> pd.DataFrame:
    """Read an exported file the way an analyst would: pandas for CSV, geopandas otherwise."""
    if path.suffix == ".csv":
        return pd.read_csv(path)
    frame = gpd.read_parquet(path) if path.suffix == ".parquet" else gpd.read_file(path)
    assert frame.crs.to_epsg() == 4326 and frame.geometry.geom_type.eq("Polygon").all(), path.name
    return frame


def audit_rows(settings: Settings, action: str) -> list[tuple]:
    with db.connect(settings) as conn:
        return conn.execute("SELECT token_id, role, team, params FROM audit_log WHERE action = %s ORDER BY id",
                            (action,)).fetchall()


@pytest.mark.parametrize("suffix", [".parquet", ".gpkg", ".csv", ".geojson"])
def test_the_steward_file_holds_the_policy_answer_in_every_format(loaded_db: Settings, planted: dict,
                                                                 tmp_path: Path, suffix: str) -> None:
    out = tmp_path / f"incidents{suffix}"
    done = run(["export", str(out), *WINDOW, "--kind", "incident", "--category", "dealing"], loaded_db, tmp_path)
    assert done.returncode == 0, done.stderr
    frame = read_back(out)
    want = expected(loaded_db, STEWARD, kinds=["incident"], categories=["dealing"])
    assert dict(zip(frame["h3"], frame["count"].astype(int), strict=True)) == want
    assert sum(want.values()) >= 4 and {"population", "rate_per_1000", "share"} <= set(frame.columns)
    token_id, role, team, params = audit_rows(loaded_db, f"export.{suffix[1:]}")[-1]
    assert (token_id, role, team) == (None, "admin", "steward")
    assert params["file"] == out.name and params["kinds"] == ["incident"] and params["via"] == "cli"


def test_an_outreach_token_exports_only_its_team_outreach(loaded_db: Settings, planted: dict,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "team.parquet"
    done = run(["export", str(out), *WINDOW, "--kind", "outreach", "--token", planted["outreach"][1]],
               loaded_db, tmp_path)
    assert done.returncode == 0, done.stderr
    team_a = Principal(role="outreach", team="export-a", token_id=planted["outreach"][0])
    got = read_back(out)
    assert dict(zip(got["h3"], got["count"].astype(int), strict=True)) == expected(loaded_db, team_a,
                                                                                  kinds=["outreach"])
    assert got["count"].sum() == 3  # team export-b's record at Gare de l'Est is not there
    assert audit_rows(loaded_db, "export.parquet")[-1][:3] == (planted["outreach"][0], "outreach", "export-a")


def test_a_police_token_is_refused_outreach_at_a_free_window_as_by_the_api(loaded_db: Settings, planted: dict,
                                                                          tmp_path: Path) -> None:
    police = Principal(role="police", team="export-police", token_id=planted["police"][0])
    with pytest.raises(AccessDeniedError) as refused:
        access.slice_for(police, loaded_db, start=date(2013, 3, 5), end=date(2013, 3, 20), resolution=8,
                         kinds=["outreach"])
    out = tmp_path / "outreach.csv"
    done = run(["export", str(out), "--start", "2013-03-05", "--end", "2013-03-20", "--resolution", "8",
                "--kind", "outreach", "--token", planted["police"][1]], loaded_db, tmp_path)
    assert done.returncode == 1 and not out.exists()
    assert str(refused.value) in done.stderr and done.stderr.count("\n") == 1, done.stderr
    token_id, role, _, params = audit_rows(loaded_db, "refused")[-1]
    assert (token_id, role, params["reason"], params["via"]) == (police.token_id, "police", str(refused.value), "cli")


def test_a_bad_token_format_or_option_mix_is_one_clear_line(loaded_db: Settings, planted: dict,
                                                           tmp_path: Path) -> None:
    cases = {
        ("x.csv", "--lake", str(tmp_path / "lake")): "not both",
        (): "not neither",
        ("x.csv", *WINDOW, "--token", "gm_not-a-token"): "--token: the token is unknown, expired or revoked",
        ("x.xlsx", *WINDOW): "x.xlsx: unknown output format",
        ("x.csv", "--end", "2013-04-01"): "--start is required with FILE",
    }
    for args, message in cases.items():
        done = run(["export", *args], loaded_db, tmp_path)
        assert done.returncode == 1 and message in done.stderr and done.stderr.count("\n") == 1, (args, done.stderr)
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "lake").exists()
    assert audit_rows(loaded_db, "refused")[-1][1:3] == ("public", "public")  # the unknown token, as the API logs it


def test_a_police_token_exports_outreach_as_the_protected_statistics(loaded_db: Settings, planted: dict,
                                                                     tmp_path: Path) -> None:
    police = Principal(role="police", team="export-police", token_id=planted["police"][0])
    chosen = access.slice_for(police, loaded_db, start=date(2013, 3, 1), end=date(2013, 4, 1), resolution=8,
                              kinds=["outreach"])
    with db.connect(loaded_db) as conn:
        want = access.hex_counts(conn, police, chosen, loaded_db).frame
    out = tmp_path / "protected.gpkg"
    done = run(["export", str(out), *WINDOW, "--resolution", "8", "--kind", "outreach", "--token",
                planted["police"][1]], loaded_db, tmp_path)
    assert done.returncode == 0, done.stderr
    got = read_back(out).set_index("h3")["count"]
    assert len(got) == len(want) and want["count"].isna().any()  # four planted records: suppressed
    assert got.isna().tolist() == want.set_index("h3")["count"].reindex(got.index).isna().tolist()
    assert got.dropna().astype(int).to_dict() == want.set_index("h3")["count"].dropna().astype(int).to_dict()
