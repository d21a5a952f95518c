"""The public side: fixed snapshots only (no parameter at all), and a rate limit with Retry-After."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app


@pytest.mark.parametrize(("path", "query", "named"), [
    ("/public/releases", {"month": "2020-03"}, "month"),
    ("/public/releases/2020-03", {"resolution": "7"}, "resolution"),
    ("/public/releases/2020-03", {"bbox": "2.35,48.85,2.40,48.90"}, "bbox"),
    ("/public/rolling/2020-03", {"start": "2020-01-01", "end": "2020-02-01"}, "end"),
    ("/public/rolling/2020-03", {"kind": "outreach"}, "kind"),
    ("/public/releases/2020-03", {"": "x"}, None),
])
def test_public_release_takes_no_parameter(client, path, query, named) -> None:
    answer = client.get(path, params=query)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert "takes no parameters" in error["message"]
    for name in query:
        if name:
            assert name in error["message"]
    if named:
        assert named in error["parameter"]


def test_public_release_with_a_bare_question_mark_or_a_token_is_the_same(client, headers) -> None:
    bare = client.get("/public/releases/2020-03?")
    with_token = client.get("/public/releases/2020-03", headers=headers["planner"])
    assert bare.status_code == with_token.status_code
    assert bare.status_code in (404, 503)  # no release was published in this session


@pytest.mark.parametrize("month", ["2020-13", "2020-3", "20-03", "2020-03-01", "..%2F..", "2020-00"])
def test_public_month_must_be_a_month(client, month) -> None:
    answer = client.get(f"/public/releases/{month}")
    assert answer.status_code in (404, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]["parameter"] == "month"


def test_public_rate_limit_is_429_with_retry_after(api_settings, api_data, headers) -> None:
    rate = 8  # a bucket of 8 / 4 = 2 requests, refilled at 8 a minute
    with TestClient(create_app(api_settings.model_copy(update={"public_rate_per_minute": rate}))) as client:
        statuses = [client.get("/reference/arrondissements").status_code for _ in range(5)]
        assert statuses[:2] == [200, 200] and statuses[2:] == [429, 429, 429], statuses
        refused = client.get("/public/releases/2020-03")
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        assert 1 <= wait <= 60 / rate + 1
        assert "too many requests" in refused.json()["error"]["message"]
        # the data endpoints of token holders and the probes have no such bucket
        assert client.get("/health").status_code == 200
        data = client.get("/hexagons", params={"start": "2020-03-01", "end": "2020-04-01"}, headers=headers["planner"])
        assert data.status_code == 200
