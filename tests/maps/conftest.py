# ruff: noqa: E402  (the sys.path fix below must run before ``maps`` is imported)
"""Map fixtures: a sample in the session database, the maps built from it, a local server, Chromium.

The maps are written to a temporary folder served by ``http.server`` on 127.0.0.1; Chromium
(Debian's, driven by Playwright's Python package) loads them with every other address
blocked. Screenshots go to tests/maps/screenshots/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This folder is named like the maps package: put the repository root first so that
# ``import maps`` finds the package, not this folder as a namespace package.
REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
if getattr(sys.modules.get("maps"), "__file__", "") is None:
    del sys.modules["maps"]

import functools
import http.server
import os
import threading
from collections.abc import Iterator

import pytest
from builders import ingest_sample
from map_data import EVENTS, SOURCE

from geo_monitor.settings import Settings

CHROMIUM = os.environ.get("GEO_MONITOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path(__file__).parent / "screenshots"


@pytest.fixture(scope="session")
def maps_db(loaded_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The session database with a 30,000-event sample under this package's own source."""
    ingest_sample(loaded_db, tmp_path_factory.mktemp("maps-sample"), EVENTS, seed=4242, source=SOURCE)
    return loaded_db


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1, and its base URL."""
    folder = tmp_path_factory.mktemp("site")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"Chromium not found at {CHROMIUM}: install Debian's chromium package (bash .ci/setup.sh)",
                    pytrace=False)
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(scope="session")
def screenshots() -> Path:
    """The folder the test run writes its screenshots to."""
    SCREENSHOTS.mkdir(exist_ok=True)
    return SCREENSHOTS
