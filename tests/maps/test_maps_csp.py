"""The maps and the API docs as the API serves them, with its Content-Security-Policy, in Chromium.

``geo-monitor serve`` runs in a subprocess on the session database; each page is opened in
headless Chromium with every request off the server blocked, and must load with no CSP
violation (the policy is the response header, exactly as a browser in the field gets it).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port, server_env, start_server, stop_server

from geo_monitor import db
from geo_monitor.privacy.tokens import create_token
from geo_monitor.settings import Settings

GEO_MONITOR = Path(sys.executable).parent / "geo-monitor"
LISTEN = """window.__csp = [];
document.addEventListener('securitypolicyviolation',
    e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + (e.sourceFile || '')));"""


@pytest.fixture(scope="module")
def server(maps_db: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, planner token) of ``geo-monitor serve`` on the maps' database."""
    with db.connect(maps_db) as conn:
        token = create_token(conn, role="planner", team="csp-check", days=1)[1]
    port = free_port()
    process = start_server([str(GEO_MONITOR), "serve", "--port", str(port)], server_env(maps_db),
                           tmp_path_factory.mktemp("csp-serve"), port)
    try:
        yield f"http://127.0.0.1:{port}", token
    finally:
        stop_server(process)


def open_page(browser, base: str, path: str, token: str | None) -> tuple[object, list[str], list[str]]:
    """Open a page of the server (nothing else reachable); return it, its CSP violations and console errors."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    context = browser.new_context(viewport={"width": 1280, "height": 800}, extra_http_headers=headers)
    page = context.new_page()
    page.add_init_script(LISTEN)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(base) or r.request.url.startswith("data:")
               else r.abort())
    answer = page.goto(base + path)
    assert answer is not None and answer.status == 200, path
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    return page, errors, []


@pytest.mark.parametrize(("path", "token"), [("/maps/public", False), ("/maps/planner", True),
                                             ("/maps/coordination", True)])
def test_maps_run_under_the_content_security_policy(browser, server, path, token, screenshots) -> None:
    base, planner = server
    page, errors, _ = open_page(browser, base, path, planner if token else None)
    page.wait_for_selector("body[data-gm-ready]", state="attached", timeout=60_000)
    page.wait_for_timeout(300)
    violations = page.evaluate("window.__csp")
    assert violations == [], violations
    assert not [e for e in errors if "Content Security Policy" in e], errors
    assert page.locator(".leaflet-container").count() == 1 and page.locator(".leaflet-interactive").count() > 0
    page.screenshot(path=screenshots / f"csp{path.replace('/', '-')}.png")
    page.context.close()


def test_docs_pass_the_content_security_policy(browser, server) -> None:
    """Swagger UI comes from the local copy: it renders under the policy, with no violation."""
    base, _ = server
    page, errors, _ = open_page(browser, base, "/docs", None)
    page.wait_for_timeout(1000)
    violations = page.evaluate("window.__csp")
    assert violations == [], violations
    assert not [e for e in errors if "Content Security Policy" in e], errors
    page.context.close()
