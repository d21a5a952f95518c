"""/docs in headless Chromium with the network blocked: Swagger UI comes from the local copy, not a CDN."""

from __future__ import annotations

import socket
import threading
import time

import uvicorn

from api.main import create_app
from geo_monitor.settings import Settings


def test_docs_render_offline(maps_db: Settings, browser, screenshots) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(maps_db), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        left: list[str] = []
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(base)
                      else (left.append(route.request.url), route.abort()))
        page = context.new_page()
        page.goto(f"{base}/docs")
        page.wait_for_selector(".swagger-ui .opblock", timeout=20_000)
        page.screenshot(path=screenshots / "docs-offline.png")
        assert "geo_monitor API" in page.inner_text(".swagger-ui .info")
        text = page.inner_text(".swagger-ui")
        assert "/ogc/collections/{collection_id}/items" in text and "/events" in text
        page.locator(".opblock-post .opblock-summary").first.click()  # POST /events: its request body
        page.wait_for_selector(".opblock-body .body-param-content-type, .opblock-body select", timeout=10_000)
        assert "text/csv" in page.inner_html(".opblock-post")
        assert left == [], left
        context.close()
    finally:
        server.should_exit = True
        thread.join(timeout=15)
