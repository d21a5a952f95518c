"""One real server: ``uvicorn --factory api.main:app_factory`` in a subprocess, real HTTP over loopback."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def start_server(api_settings, api_data, tmp_path) -> Iterator:
    """``start(**env) -> base URL`` of a uvicorn process on a free port; stopped after the test."""
    started: list[tuple[subprocess.Popen, object]] = []

    def start(**extra_env: str) -> str:
        port = free_port()
        env = {**os.environ, "GEO_MONITOR_DATABASE_URL": api_settings.database_url,
               "GEO_MONITOR_REFERENCE_DIR": str(api_settings.reference_dir), "GEO_MONITOR_ENVIRONMENT": "test",
               "GEO_MONITOR_CACHE_DIR": str(api_settings.cache_dir), "PYTHONPATH": str(REPO), **extra_env}
        log = open(tmp_path / f"uvicorn-{port}.log", "w+b")  # closed at teardown, read on failure
        process = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "api.main:app_factory",
                                    "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                   cwd=tmp_path, env=env, stdout=log, stderr=log)
        started.append((process, log))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    return base
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"uvicorn did not come up (exit {process.poll()}):\n{log.read().decode()[-3000:]}")
            time.sleep(0.2)

    yield start
    for process, log in started:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def test_real_uvicorn_process_serves_the_api(start_server, tokens) -> None:
    with httpx.Client(base_url=start_server(), timeout=30) as http:
        assert http.get("/health").json() == {"status": "ok"}
        ready = http.get("/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"
        planner = {"Authorization": f"Bearer {tokens['planner']}"}
        answer = http.get("/hexagons", params={"start": "2020-03-01", "end": "2020-04-01", "resolution": 9},
                          headers=planner)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/geo+json"
        assert answer.json()["type"] == "FeatureCollection" and answer.json()["metadata"]["total"] > 0
        again = http.get("/hexagons", params={"start": "2020-03-01", "end": "2020-04-01", "resolution": 9},
                         headers={**planner, "If-None-Match": answer.headers["ETag"]})
        assert again.status_code == 304
        assert http.get("/hexagons", params={"start": "2020-03-01", "end": "2020-04-01"}).status_code == 401
        assert http.get("/openapi.json").json()["info"]["title"] == "geo_monitor API"


def test_more_concurrent_requests_than_threads_and_connections_all_succeed(start_server, tokens, tmp_path) -> None:
    """80 uncached requests at once on 3 pooled connections and 40 worker threads: queued, never 503.

    A connection given back by a sync ``yield`` dependency needs a free worker thread; with
    every thread waiting for a connection, none is, and requests hung until the pool timeout.
    """
    base = start_server(GEO_MONITOR_API_POOL_SIZE="3")
    planner = {"Authorization": f"Bearer {tokens['planner']}"}
    categories = ["drug_litter", "dealing", "aggression", "contact", "graffiti", "lighting", "cleanliness"]
    queries = [{"start": f"2020-{1 + i % 12:02d}-01", "end": f"2020-{1 + i % 12:02d}-28", "resolution": 7 + i % 5,
                "category": [c for j, c in enumerate(categories) if (i >> j) & 1] or ["dealing"]} for i in range(80)]

    async def run() -> list[int]:
        async with httpx.AsyncClient(base_url=base, headers=planner, timeout=60,
                                     limits=httpx.Limits(max_connections=100)) as http:
            answers = await asyncio.gather(*(http.get("/hexagons", params=q) for q in queries))
        return [a.status_code for a in answers]

    for resolution in (7, 8, 9, 10, 11):  # residents per cell are computed on first use: not what is measured
        warm = httpx.get(f"{base}/hexagons", params={**queries[0], "resolution": resolution}, headers=planner,
                         timeout=60)
        assert warm.status_code == 200
    started = time.monotonic()
    statuses = asyncio.run(run())
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("uvicorn-*.log"))
    assert statuses == [200] * len(queries), (sorted(set(statuses)), logs)
    assert time.monotonic() - started < 30
