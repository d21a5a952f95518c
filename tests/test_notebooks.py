"""The notebooks run top to bottom against a real database (they call the library only)."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from geo_monitor import db
from geo_monitor.settings import Settings
from geo_monitor.store.ingest import ingest_file
from geo_monitor.store.sample import generate_sample

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
# What each notebook must show once it has run (a notebook not listed here fails the test).
EXPECTED = {"hotspots": "hot 99%", "quality_review": "events whose quartier lies in another arrondissement: 0",
            "evaluation": "direct SQL"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: Path, loaded_db: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sample = generate_sample(tmp_path / "sample.parquet", 20_000, seed=3, settings=loaded_db).path
    with db.connect(loaded_db) as conn:
        ingest_file(conn, sample, source="notebook-sample", settings=loaded_db)
    monkeypatch.setenv("GEO_MONITOR_DATABASE_URL", loaded_db.database_url)
    monkeypatch.setenv("GEO_MONITOR_REFERENCE_DIR", str(loaded_db.reference_dir))
    notebook = nbformat.read(path, as_version=4)

    NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    shown = " ".join(str(o.get("data", {})) + str(o.get("text", "")) for o in outputs)
    assert EXPECTED[path.stem] in shown
