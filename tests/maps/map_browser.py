"""Helpers of the browser tests: a visit with the network blocked, pixel checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

import numpy as np

from maps.elements import DEFAULT_BASEMAP
from maps.styles import Scale

BACKGROUND = (0xEC, 0xEA, 0xE4)  # .leaflet-container in templates/gm.css
TILE_HOST = urlsplit(DEFAULT_BASEMAP.probe).hostname.split(".", 1)[1]  # basemaps.cartocdn.com


@dataclass
class Visit:
    """One page load: the page and what went wrong or out."""

    page: object
    external: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def screenshot(self, path=None) -> bytes:
        """Return (and optionally write) a PNG of the viewport."""
        return self.page.screenshot(path=path)

    def only_tile_probe_failed(self) -> None:
        """Assert nothing but the basemap's one probe left the machine, failed or logged an error.

        With the network blocked the probe is refused and Chromium logs "Failed to load
        resource" for it: that one message is expected, and filtered here by its URL.
        """
        assert all(TILE_HOST in url for url in self.external), self.external
        assert self.external in ([], [DEFAULT_BASEMAP.probe]), self.external
        assert all(DEFAULT_BASEMAP.probe in f for f in self.failed), self.failed
        unexpected = [e for e in self.errors if not (e.startswith("Failed to load resource")
                                                     and DEFAULT_BASEMAP.probe in e)]
        assert unexpected == [], unexpected


def visit(browser, url: str, *, tiles: bytes | None = None) -> Visit:
    """Open ``url`` with every request outside the local server blocked (or tiles faked)."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    page = context.new_page()
    seen = Visit(page)
    local = url.split("/", 3)[:3]
    origin = "/".join(local)

    def route(request_route) -> None:
        target = request_route.request.url
        if target.startswith(origin) or target.startswith("data:"):
            request_route.continue_()
        elif tiles is not None and TILE_HOST in target:
            request_route.fulfill(status=200, content_type="image/png", body=tiles)
        else:
            seen.external.append(target)
            request_route.abort()

    page.route("**/*", route)
    page.on("console", lambda m: seen.errors.append(f"{m.text} @ {m.location.get('url', '')}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: seen.errors.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: seen.failed.append(f"{r.url} {r.failure}"))
    page.goto(url)
    page.wait_for_selector("body[data-gm-ready][data-gm-basemap]", state="attached", timeout=15_000)
    page.wait_for_timeout(300)  # let the canvas repaint after fitBounds
    return seen


def colours_at(png: bytes, points: np.ndarray) -> np.ndarray:
    """Return the RGB colour of a screenshot at each (x, y) point (n × 3 ints, -1 outside)."""
    import io

    from PIL import Image

    image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    xy = np.round(np.asarray(points)).astype(int)
    inside = (xy[:, 0] >= 0) & (xy[:, 0] < image.shape[1]) & (xy[:, 1] >= 0) & (xy[:, 1] < image.shape[0])
    out = np.full((len(xy), 3), -1)
    out[inside] = image[xy[inside, 1], xy[inside, 0]]
    return out


def blend(colour: str, alpha: float, under: tuple[int, int, int] = BACKGROUND) -> np.ndarray:
    """Return the RGB of ``colour`` drawn with ``alpha`` over ``under``."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    return np.round(alpha * rgb + (1 - alpha) * np.asarray(under))


def control_boxes(page) -> list[tuple[float, float, float, float]]:
    """Return the screen boxes of the map's controls (legend, slider, panels…)."""
    return page.evaluate("""Array.from(document.querySelectorAll('.leaflet-control')).map(e => {
        const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })""")


@dataclass
class HexCheck:
    """Where the hexagons of the step layer are, what they should look like and what they look like."""

    frame: int
    values: list
    positive: np.ndarray  # visible cells with a value > 0
    suppressed: np.ndarray  # visible cells with no value
    expected: np.ndarray
    actual: np.ndarray  # centre pixel of each cell
    patches: np.ndarray  # n × 25 × 3: the 5 × 5 pixels around each centre

    def matches(self, cells: np.ndarray) -> float:
        """Return the share of ``cells`` showing the expected colour (±6 per channel).

        A cell matches when a pixel within 2 px of its centre does: a boundary or metro line
        may cross the very centre.
        """
        if not cells.any():
            return 0.0
        diff = np.abs(self.patches[cells] - self.expected[cells][:, None, :]).max(axis=2)
        return float((diff <= 6).any(axis=1).mean())


def hex_check(visit_: Visit, png: bytes, layer: int = 0) -> HexCheck:
    """Compare each visible cell's centre pixel with the colour its value should get."""
    probe = visit_.page.evaluate(f"gm.stepLayers[{layer}].gmProbe()")
    s = probe["scale"]
    scale = Scale(tuple(s["breaks"]), tuple(s["colors"]), integer=True, zero=s["zero"], none=s["none"])
    points = np.asarray(probe["points"], dtype=float)
    values = probe["values"]
    visible = np.ones(len(points), dtype=bool)
    for left, top, right, bottom in control_boxes(visit_.page):
        visible &= ~((points[:, 0] >= left - 4) & (points[:, 0] <= right + 4)
                     & (points[:, 1] >= top - 4) & (points[:, 1] <= bottom + 4))
    visible &= (points[:, 0] > 2) & (points[:, 0] < 1278) & (points[:, 1] > 2) & (points[:, 1] < 798)
    expected = []
    for v in values:
        colour = scale.colour(v)
        if colour is None:
            expected.append(blend(scale.none, probe["fillOpacity"]))
        else:
            expected.append(blend(colour, probe["fillOpacity"] if v > 0 else probe["zeroOpacity"]))
    positive = visible & np.array([v is not None and v > 0 for v in values])
    suppressed = visible & np.array([v is None for v in values])
    offsets = np.array([(dx, dy) for dx in range(-2, 3) for dy in range(-2, 3)], dtype=float)
    patches = np.stack([colours_at(png, points + o) for o in offsets], axis=1)
    return HexCheck(probe["frame"], values, positive, suppressed, np.asarray(expected), colours_at(png, points),
                    patches)


def crop_colours(png: bytes, box: dict) -> set[tuple[int, int, int]]:
    """Return the set of RGB colours inside a screen box ({x, y, width, height})."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    region = image.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))
    return {tuple(c) for c in np.asarray(region).reshape(-1, 3)}


def pixels_changed(before: bytes, after: bytes) -> int:
    """Return how many pixels differ between two screenshots."""
    import io

    from PIL import Image

    a = np.asarray(Image.open(io.BytesIO(before)).convert("RGB")).astype(int)
    b = np.asarray(Image.open(io.BytesIO(after)).convert("RGB")).astype(int)
    return int((np.abs(a - b).max(axis=2) > 8).sum())
