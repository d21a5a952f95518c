"""Each map in headless Chromium with the network blocked: no failed request, no console error,
hexagons drawn in the colours of their numbers, legend visible, slider and layer toggles working.

Screenshots are written to tests/maps/screenshots/.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from map_browser import BACKGROUND, TILE_HOST, crop_colours, hex_check, pixels_changed, visit
from map_data import COORDINATION_END, PLANNER_END, demo_zones, fake_release
from PIL import Image

from geo_monitor import db
from geo_monitor.settings import Settings
from maps import build_coordination, build_planner, copy_assets, public_map, render
from maps.data import arrondissements
from maps.styles import GI_COLOURS

pytestmark = pytest.mark.usefixtures("maps_db")


@pytest.fixture(scope="module")
def pages(maps_db: Settings, site: tuple[Path, str]) -> dict[str, str]:
    """Build the maps from the session database and write them where the local server serves them."""
    folder, base = site
    with db.connect(maps_db) as conn:
        planner = build_planner(conn, end=PLANNER_END, settings=maps_db)
        built = {
            "planner": render(planner),
            "planner-linked": render(planner, asset_url="assets"),
            "coordination": render(build_coordination(conn, end=COORDINATION_END, zones=demo_zones(conn),
                                                      settings=maps_db)),
            "coordination-nozones": render(build_coordination(conn, end=COORDINATION_END, settings=maps_db,
                                                              zones=demo_zones(conn).iloc[:0])),
            "public": render(public_map(fake_release(conn, maps_db), boundaries=arrondissements(conn))),
        }
    copy_assets(folder)
    urls = {}
    for name, html in built.items():
        (folder / f"{name}.html").write_text(html, encoding="utf-8")
        urls[name] = f"{base}/{name}.html"
    return urls


def toggle(page, label: str) -> None:
    """Click a layer's name in the layer control."""
    page.locator(".leaflet-control-layers").get_by_text(label, exact=True).click()
    page.wait_for_timeout(200)


def _check_hexes(seen, png: bytes, *, min_positive: int = 20) -> None:
    check = hex_check(seen, png)
    assert check.positive.sum() >= min_positive, "too few coloured hexagons on screen"
    assert check.matches(check.positive) >= 0.85, "hexagons are not in the colours of their numbers"


def test_planner_offline(browser, pages, screenshots) -> None:
    seen = visit(browser, pages["planner"])
    seen.only_tile_probe_failed()
    assert seen.page.get_attribute("body", "data-gm-basemap") == "offline"
    png = seen.screenshot(screenshots / "planner.png")
    _check_hexes(seen, png)

    # Legend: visible, and every class colour of the fixed scale is on screen in it.
    legend = seen.page.locator("#gm-legend")
    assert legend.is_visible()
    scale = seen.page.evaluate("gm.stepLayers[0].gmProbe().scale")
    swatches = crop_colours(png, legend.bounding_box())
    for colour in scale["colors"]:
        assert tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5)) in swatches, colour
    legend_text = legend.inner_text()

    # Tooltip: the number behind the colour of a cell.
    check = hex_check(seen, png)
    probe = seen.page.evaluate("gm.stepLayers[0].gmProbe()")
    i = int(np.flatnonzero(check.positive)[0])
    seen.page.mouse.move(*probe["points"][i])
    tooltip = seen.page.locator(".leaflet-tooltip")
    tooltip.wait_for(state="visible")
    assert f"nombre : {probe['values'][i]}" in tooltip.inner_text()
    seen.page.mouse.move(5, 795)

    # The slider moves to the first month: colours change, each still the colour of its number.
    last = seen.page.get_attribute("body", "data-gm-frame")
    seen.page.focus("#gm-slider input")
    seen.page.keyboard.press("Home")
    seen.page.wait_for_timeout(200)
    assert seen.page.get_attribute("body", "data-gm-frame") == "0" != last
    assert "janv. 2019" in seen.page.inner_text("#gm-slider")
    first = seen.screenshot(screenshots / "planner-first-month.png")
    _check_hexes(seen, first)
    before, after = hex_check(seen, png), hex_check(seen, first)
    assert (np.abs(before.actual - after.actual).max(axis=1) > 8).sum() >= 10
    assert legend.inner_text() == legend_text, "the scale must stay fixed across the slider"

    # Layer control: Gi* on adds its classes (and its legend), the choropleth off removes the hexes.
    toggle(seen.page, "Points chauds Gi*")
    seen.page.wait_for_timeout(200)
    with_gi = seen.screenshot(screenshots / "planner-gi.png")
    assert pixels_changed(first, with_gi) > 300
    gi_colours = {tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in GI_COLOURS.values()}
    assert crop_colours(with_gi, legend.bounding_box()) & gi_colours
    toggle(seen.page, "Incidents par mois")
    seen.page.wait_for_timeout(200)
    without = seen.screenshot()
    off = hex_check(seen, without)
    assert seen.page.evaluate("gm.stepLayers[0].gmProbe().onMap") is False
    assert off.matches(off.positive) < 0.2
    seen.only_tile_probe_failed()
    seen.page.context.close()


def test_planner_linked_assets(browser, pages) -> None:
    """The API's way: Leaflet linked from a local static path instead of inlined."""
    seen = visit(browser, pages["planner-linked"])
    seen.only_tile_probe_failed()
    _check_hexes(seen, seen.screenshot())
    seen.page.context.close()


def test_planner_online_tiles(browser, pages, screenshots) -> None:
    """When the tile server answers, the basemap is added under the hexagons and listed as a base layer."""
    buffer = io.BytesIO()
    Image.new("RGB", (256, 256), (90, 160, 220)).save(buffer, format="PNG")
    seen = visit(browser, pages["planner"], tiles=buffer.getvalue())
    assert seen.external == [] and seen.failed == [] and seen.errors == []
    assert seen.page.get_attribute("body", "data-gm-basemap") == "online"
    seen.page.wait_for_timeout(500)
    png = seen.screenshot(screenshots / "planner-online.png")
    corner = Image.open(io.BytesIO(png)).convert("RGB").getpixel((640, 790))
    assert corner != BACKGROUND
    assert seen.page.locator(".leaflet-tile-loaded").count() > 0
    assert seen.page.locator(".leaflet-control-layers").get_by_text("Fond de carte", exact=True).is_visible()
    assert TILE_HOST
    seen.page.context.close()


def test_coordination_with_zones(browser, pages, screenshots) -> None:
    seen = visit(browser, pages["coordination"])
    seen.only_tile_probe_failed()
    png = seen.screenshot(screenshots / "coordination.png")
    _check_hexes(seen, png, min_positive=5)
    panel = seen.page.text_content("#gm-zones")
    assert "Zone " in panel and "Maraude Chapelle <b>&</b>" in panel  # escaped, shown as text
    assert seen.page.locator("#gm-legend").is_visible()
    seen.page.locator("#gm-zones summary").first.click()
    assert "lundi" in seen.page.inner_text("#gm-zones")
    seen.page.focus("#gm-slider input")
    seen.page.keyboard.press("Home")
    seen.page.wait_for_timeout(200)
    assert "semaine du 29/11/2021" in seen.page.inner_text("#gm-slider")
    before = seen.screenshot()
    toggle(seen.page, "Zones de coordination")
    seen.page.wait_for_timeout(200)
    assert pixels_changed(before, seen.screenshot()) > 300
    seen.only_tile_probe_failed()
    seen.page.context.close()


def test_coordination_without_zones(browser, pages, screenshots) -> None:
    seen = visit(browser, pages["coordination-nozones"])
    seen.only_tile_probe_failed()
    _check_hexes(seen, seen.screenshot(screenshots / "coordination-nozones.png"), min_positive=5)
    assert "Aucune zone de coordination" in seen.page.inner_text("#gm-zones")
    seen.page.context.close()


def test_public_map(browser, pages, screenshots) -> None:
    seen = visit(browser, pages["public"])
    seen.only_tile_probe_failed()
    png = seen.screenshot(screenshots / "public.png")
    check = hex_check(seen, png)
    assert check.matches(check.positive) >= 0.85
    assert check.suppressed.sum() >= 5 and check.matches(check.suppressed) >= 0.85, "suppressed cells not drawn"
    assert "peu ou pas de signalements" in seen.page.inner_text("#gm-legend")

    # Another group: the colours change.
    seen.page.locator("#gm-frames input").nth(1).check()
    seen.page.wait_for_timeout(200)
    other = seen.screenshot()
    assert seen.page.get_attribute("body", "data-gm-frame") == "1"
    assert pixels_changed(png, other) > 200

    # English: the other text is shown, the French hidden.
    assert seen.page.locator("#gm-note .gm-en").first.is_hidden()
    seen.page.get_by_role("button", name="English").click()
    assert seen.page.get_attribute("html", "lang") == "en"
    assert seen.page.get_by_text("How the numbers are protected").is_visible()
    assert seen.page.get_by_text("Comment les chiffres sont protégés").is_hidden()
    assert "few or no reports" in seen.page.inner_text("#gm-legend")
    seen.screenshot(screenshots / "public-en.png")
    seen.page.get_by_role("button", name="Français").click()
    assert seen.page.get_attribute("html", "lang") == "fr"
    seen.only_tile_probe_failed()
    seen.page.context.close()
