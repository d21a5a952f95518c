"""One real server: ``uvicorn --factory api.main:app_factory`` in a subprocess, real HTTP over loopback."""

from __future__ import annotations

import asyncio
import time

import httpx


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
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in tmp_path.glob("server-*.log"))
    assert statuses == [200] * len(queries), (sorted(set(statuses)), logs)
    assert time.monotonic() - started < 30
