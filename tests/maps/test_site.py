"""``geo-monitor publish``: the static public site, incremental, checksummed, opened from disk with the network cut."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from map_browser import BACKGROUND
from PIL import Image

from geo_monitor import db
from geo_monitor.privacy.release import create_release
from geo_monitor.settings import Settings
from maps.site import publish_site

REPO = Path(__file__).resolve().parents[2]
FIRST, SECOND = "2021-04", "2021-05"  # months of the maps sample no other test releases


@pytest.fixture(scope="module")
def low_k(maps_db: Settings) -> Settings:
    """The maps database with a low k, so the small sample shows numbers."""
    return maps_db.model_copy(update={"release_k": 5})


def publish_cli(settings: Settings, out: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``geo-monitor publish --out OUT`` on the settings' database."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GEO_MONITOR_")}
    environ.update({"GEO_MONITOR_DATABASE_URL": settings.database_url, "GEO_MONITOR_ENVIRONMENT": "test",
                    "GEO_MONITOR_REFERENCE_DIR": str(settings.reference_dir),
                    "GEO_MONITOR_CACHE_DIR": str(settings.cache_dir), "PYTHONPATH": str(REPO), **env})
    return subprocess.run([sys.executable, "-c", "from cli.main import run; run()", "publish", "--out", str(out)],
                          env=environ, capture_output=True, text=True, timeout=300, cwd=out.parent)


def test_publish_is_incremental_and_checksummed(low_k: Settings, tmp_path: Path) -> None:
    out = tmp_path / "site"
    with db.connect(low_k) as conn:
        create_release(conn, FIRST, settings=low_k)
        conn.commit()
    first = publish_cli(low_k, out)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "written" in first.stdout and (out / "index.html").is_file()
    with db.connect(low_k) as conn:
        again = publish_site(conn, out, low_k)
        assert again.written == [], again.written  # same data: no byte rewritten
        create_release(conn, SECOND, settings=low_k)
        conn.commit()
        added = publish_site(conn, out, low_k)
    name = f"{SECOND}-v1"
    new = {f"releases/{name}.geojson", f"releases/{name}.cells.csv", f"releases/{name}.totals.csv",
           f"map-{name}.html", "index.html", "manifest.json"}
    # map.html is the latest month's map: rewritten only when no later month is released in this database;
    # the year's public report changes with its months, when another test has loaded the plan
    reports = {"reports/2021-fr.html", "reports/2021-en.html"}
    assert new <= set(added.written) <= new | {"map.html"} | reports, added.written
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["latest"] >= SECOND and "none" in manifest["basemap"]
    for relative, entry in manifest["files"].items():
        assert hashlib.sha256((out / relative).read_bytes()).hexdigest() == entry["sha256"], relative
    assert {f"releases/{FIRST}-v1.geojson", "method/fr.html", "map.html"} <= set(manifest["files"])
    cells = pd.read_csv(out / "releases" / f"{name}.cells.csv")
    published = json.loads((out / "releases" / f"{name}.geojson").read_text())
    assert len(cells) == len(published["features"]) and set(cells["month"]) == {SECOND}
    assert list(cells.columns) == ["month", "group", "h3", "arrondissement", "value", "suppressed"]
    assert cells.loc[cells["suppressed"], "value"].isna().all()


def test_static_site_opens_from_disk_with_the_network_cut(low_k: Settings, browser, screenshots,
                                                          tmp_path: Path) -> None:
    out = tmp_path / "offline"
    with db.connect(low_k) as conn:
        create_release(conn, FIRST, settings=low_k)  # stored already when the other test ran: no new loss
        conn.commit()
        publish_site(conn, out, low_k)
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    left: list[str] = []
    errors: list[str] = []
    context.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file://")
                  else (left.append(route.request.url), route.abort()))
    page = context.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "index.html").as_uri())
    page.get_by_role("link", name="Carte du dernier mois publié").click()
    page.wait_for_selector("body[data-gm-ready][data-gm-basemap]", state="attached", timeout=15_000)
    page.wait_for_timeout(300)
    assert page.get_attribute("body", "data-gm-basemap") == "none"
    png = page.screenshot(path=screenshots / "static-site-map.png")
    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    drawn = np.abs(image - np.array(BACKGROUND)).sum(axis=2) > 60  # hexagons (grey when not shown), panels
    assert drawn.sum() > 300_000, "the hexagons are not drawn on the static map"
    assert "sans fond de carte" in page.inner_text(".leaflet-control-attribution")
    page.goto((out / "method" / "en.html").as_uri())
    assert "Basemap: none" in page.inner_text("#basemap")
    page.get_by_role("link", name="Français").click()
    assert page.url.endswith("/method/fr.html") and "Fond de carte : aucun" in page.inner_text("#basemap")
    page.goto((out / "releases" / f"{FIRST}-v1.geojson").as_uri())
    assert left == [] and errors == [], (left, errors)
    context.close()


def test_publish_adds_the_public_report_of_each_released_year(low_k: Settings, tmp_path: Path) -> None:
    """With a plan loaded, each released year gets its public report, dated by its data: republishing writes nothing."""
    from geo_monitor.plan.loader import load_plan

    out = tmp_path / "site"
    with db.connect(low_k) as conn:
        create_release(conn, FIRST, settings=low_k)
        load_plan(conn, low_k.data_dir / "plan_2019_2021.yaml", author="test")
        conn.commit()
        published = publish_site(conn, out, low_k)
        again = publish_site(conn, out, low_k)
    assert {"reports/2021-fr.html", "reports/2021-en.html"} <= set(published.written)
    assert again.written == []
    page = (out / "reports" / "2021-en.html").read_text()
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert 'href="reports/2021-fr.html"' in (out / "index.html").read_text()
    manifest = json.loads((out / "manifest.json").read_text())
    assert "reports/2021-fr.html" in manifest["files"]
