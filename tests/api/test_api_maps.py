"""The maps over HTTP, per role: each audience gets its own map and no other."""

from __future__ import annotations

import re

import pytest

MATRIX = {  # map -> role -> status
    "planner": {"admin": 200, "planner": 200, "police": 403, "outreach": 403, "public": 401},
    "coordination": {"admin": 200, "planner": 200, "police": 200, "outreach": 200, "public": 401},
    "public": {"admin": 200, "planner": 200, "police": 200, "outreach": 200, "public": 200},
}


@pytest.mark.parametrize(("page", "role"), [(p, r) for p, roles in MATRIX.items() for r in roles])
def test_each_role_gets_its_maps(client, headers, page: str, role: str) -> None:
    answer = client.get(f"/maps/{page}", headers=headers[role])

    assert answer.status_code == MATRIX[page][role], answer.text[:300]
    if answer.status_code == 200:
        assert answer.headers["content-type"].startswith("text/html")
        scripts = re.findall(r'<script[^>]+src="([^"]+)"', answer.text)
        assert scripts and all(src.startswith("/maps/assets/") for src in scripts)  # Leaflet from here, not a CDN
        assert client.get(scripts[0]).status_code == 200


def test_the_public_map_takes_no_parameters(client) -> None:
    answer = client.get("/maps/public", params={"month": "2021-01"})

    assert answer.status_code == 400
    assert answer.json()["error"]["parameter"] == "month"
