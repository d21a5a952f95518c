"""The plan and report commands end to end: load, update, refuse a bad file, write a report."""

from __future__ import annotations

from pathlib import Path

from geo_monitor.settings import Settings
from tests.test_cli import run

DATA = Path(__file__).resolve().parents[1] / "data"


def test_plan_load_update_and_report(loaded_db: Settings, tmp_path: Path) -> None:
    first = run(["plan", "load", str(DATA / "plan_2019_2021.yaml")], loaded_db, tmp_path)
    assert first.returncode == 0, first.stderr
    again = run(["plan", "load", str(DATA / "plan_2019_2021.yaml")], loaded_db, tmp_path)
    assert "nothing new" in again.stdout and "10 unchanged" in again.stdout

    bad = tmp_path / "bad.csv"
    bad.write_text("record,id,objective,title,lead_partner\naction,B1,7,t,ville_paris\naction,B1,1,t,ville_paris\n",
                   encoding="utf-8")
    refused = run(["plan", "load", str(bad)], loaded_db, tmp_path)
    assert refused.returncode == 1
    assert "line 2 (action B1): unknown objective" in refused.stderr and "line 3 (action B1): duplicate id" in refused.stderr

    wrong = run(["plan", "update", "A01", "--status", "finished", "--date", "2021-03-01"], loaded_db, tmp_path)
    assert wrong.returncode == 1 and "unknown status 'finished'" in wrong.stderr
    update = run(["plan", "update", "A01", "--status", "started", "--date", "2021-03-01"], loaded_db, tmp_path)
    assert update.returncode == 0 and "recorded" in update.stdout

    future = run(["report", "--year", "2099"], loaded_db, tmp_path)
    assert future.returncode == 1 and "2099 has not begun" in future.stderr
    out = tmp_path / "report.html"
    report = run(["report", "--year", "2021", "--out", str(out), "--no-pdf", "--lang", "en"], loaded_db, tmp_path)
    assert report.returncode == 0, report.stderr
    assert "execution" in report.stderr and out.exists() and "Crack plan" in out.read_text(encoding="utf-8")
