"""Attacks a police token could try on outreach counts, over HTTP on the running app.

The invariant (DESIGN.md, Roles): no combination of answers a police token can get pins an
outreach count under k for any cell and day. This module plants outreach contacts in May and
June 2007 (a period no other test uses) so that one quartier holds a busy cell V and a small
cell H, and then tries, as a police user would:

- share x total: ``count / share`` gives the slice's total, minus what is shown;
- windows one day apart: the same month from the 1st and from the 2nd;
- windows one month apart: May against May-June;
- areas one cell apart: two bboxes that differ by the small cell only;
- another category, another resolution: the same events through a linked table;
- one surface against another: hexagons, exports, hotspots, emerging, coverage, impact, the
  zone summary and the coordination map.

The planner's answers (exact counts) say what the truth is; each attack checks whether what
the police answers give equals a true count under k.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import psycopg
import pytest
import shapely
from builders import ingest_all
from fastapi.testclient import TestClient

from api.main import create_app
from geo_monitor import db, hexagons
from geo_monitor.grid import study_grid
from geo_monitor.privacy.disclosure import lp_intervals
from geo_monitor.privacy.release import layout
from geo_monitor.settings import Settings

MAY = {"start": "2007-05-01", "end": "2007-06-01"}
JUNE = {"start": "2007-06-01", "end": "2007-07-01"}
MAY_JUNE = {"start": "2007-05-01", "end": "2007-07-01"}
OUTREACH8 = {"kind": "outreach", "resolution": 8}
SOURCE = "police-attack-outreach"


@dataclass(frozen=True)
class Plant:
    """The planted resolution-8 cells (int64) and the quartier and arrondissement holding V and H."""

    v: int  # busy in May (20 contacts on the 10th, 2 on the 1st, 3 kits), 3 contacts in June
    h: int  # 3 contacts in May: under k
    w: int  # 30 contacts in May, same arrondissement, outside the quartier
    x: int  # 25 contacts in May, another arrondissement
    y: int  # 2 contacts in May, another arrondissement
    g: int  # 30 contacts in May, H's sibling under their resolution-7 parent
    quartier: int
    arrondissement: int


def _fine_children(conn: psycopg.Connection) -> tuple[np.ndarray, np.ndarray]:
    """Resolution-11 cells inside the study area and their resolution-8 parents."""
    area = shapely.from_wkb(conn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0])
    fine = study_grid(conn, 11)
    lat, lng = hexagons.cells_to_latlng(fine)
    fine = fine[shapely.contains_xy(area, lng, lat)]
    return fine, hexagons.cells_to_parents(fine, 8)


def _centre(cell: int) -> tuple[float, float]:
    lat, lng = hexagons.cells_to_latlng(np.array([cell], dtype=np.int64))
    return float(lng[0]), float(lat[0])


def _box(*cells: int, margin: float = 2e-4) -> str:
    xs, ys = zip(*(_centre(c) for c in cells), strict=True)
    return f"{min(xs) - margin},{min(ys) - margin},{max(xs) + margin},{max(ys) + margin}"


def _contacts(cell: int, n: int, day: str, prefix: str, category: str = "contact") -> list[dict]:
    lng, lat = _centre(cell)
    return [{"kind": "outreach", "category": category, "occurred_at": f"{day}T12:00:00+02:00", "lon": str(lng),
             "lat": str(lat), "source": SOURCE, "external_id": f"{prefix}-{i}"} for i in range(n)]


@pytest.fixture(scope="module")
def plant(api_settings: Settings, api_data) -> Plant:
    """Plant the May and June 2007 contacts once for this module."""
    with db.connect(api_settings) as conn:
        fine, parents = _fine_children(conn)
        usable = set(parents.tolist())
        child = {p: int(fine[parents == p][0]) for p in usable}
        quartiers = conn.execute(
            "SELECT q.code, a.code, ST_AsBinary(q.geom) FROM quartiers q JOIN arrondissements a "
            "ON ST_Contains(a.geom, ST_PointOnSurface(q.geom)) JOIN study_area s ON a.code = ANY(s.codes) "
            "ORDER BY q.code").fetchall()
        arrondissements = dict(conn.execute("SELECT code, ST_AsBinary(geom) FROM arrondissements").fetchall())
        cells = np.array(sorted(usable), dtype=np.int64)
        lat, lng = hexagons.cells_to_latlng(cells)
        chosen = None
        for q_code, a_code, q_geom in quartiers:
            in_q = cells[shapely.contains_xy(shapely.from_wkb(q_geom), lng, lat)]
            in_a = cells[shapely.contains_xy(shapely.from_wkb(arrondissements[a_code]), lng, lat)]
            others = cells[~shapely.contains_xy(shapely.from_wkb(arrondissements[a_code]), lng, lat)]
            if len(in_q) >= 2 and len(others) >= 2:
                v, h = int(in_q[0]), int(in_q[1])
                x, y = int(others[0]), int(others[-1])
                hx, hy = _centre(h)
                rest = sorted((c for c in in_a.tolist() if c not in in_q.tolist()),
                              key=lambda c: (_centre(c)[0] - hx) ** 2 + (_centre(c)[1] - hy) ** 2)
                siblings = [c for c in cells.tolist() if c not in (v, h, x, y)
                            and hexagons.cells_to_parents(np.array([c]), 7)[0]
                            == hexagons.cells_to_parents(np.array([h]), 7)[0]]
                for w in rest:
                    box = shapely.box(*map(float, _box(h, w).split(",")))
                    outside = [g for g in siblings if g != w and not box.contains(shapely.Point(_centre(g)))]
                    if outside and not any(box.contains(shapely.Point(_centre(c))) for c in (v, x, y)):
                        chosen = Plant(v, h, int(w), x, y, int(outside[0]), q_code, a_code)
                        break
            if chosen:
                break
        assert chosen, "no quartier with two resolution-8 cells, a neighbour in its arrondissement and a sibling"
        p = chosen
        records = (_contacts(child[p.v], 20, "2007-05-10", "v") + _contacts(child[p.v], 2, "2007-05-01", "v1")
                   + _contacts(child[p.v], 3, "2007-05-10", "vk", "harm_reduction_kit")
                   + _contacts(child[p.h], 3, "2007-05-10", "h") + _contacts(child[p.w], 30, "2007-05-10", "w")
                   + _contacts(child[p.x], 25, "2007-05-10", "x") + _contacts(child[p.y], 2, "2007-05-10", "y")
                   + _contacts(child[p.g], 30, "2007-05-10", "g")
                   + _contacts(child[p.v], 3, "2007-06-10", "vj") + _contacts(child[p.w], 40, "2007-06-10", "wj")
                   + _contacts(child[p.x], 40, "2007-06-10", "xj"))
        ingest_all(conn, api_settings, records, SOURCE)
        conn.commit()
    return chosen


def get(client, headers, role: str, path: str = "/hexagons", **params):
    """GET with a role's token."""
    return client.get(path, params=params, headers=headers[role])


def counts(answer) -> dict[str, int | None]:
    """{h3: count} of a 200 answer."""
    assert answer.status_code == 200, answer.text[:300]
    return {f["properties"]["h3"]: f["properties"]["count"] for f in answer.json()["features"]}


def implied_total(answer) -> int:
    """The slice's total as a police user reads it: count / share of a shown cell, else the total."""
    for f in answer.json()["features"]:
        props = f["properties"]
        if props["count"] and props["share"]:
            return round(props["count"] / props["share"])
    return answer.json()["metadata"]["total"]


def pinned(found: int | None, truth: int, k: int) -> bool:
    """Whether an attack found an exact count under k (zero is no one: not a disclosure)."""
    return found is not None and found == truth and 0 < truth < k


@pytest.fixture(scope="module")
def k(api_settings: Settings) -> int:
    return api_settings.release_k


def test_share_times_total_pins_nothing(client, headers, plant, k) -> None:
    """The issue's quartier attack: count / share - sum of shown = the hidden cells' sum."""
    h = hexagons.cell_to_str(plant.h)
    for area in (f"quartier:{plant.quartier}", f"arrondissement:{plant.arrondissement}", None):
        params = {**MAY, **OUTREACH8, **({"area": area} if area else {})}
        truth = counts(get(client, headers, "planner", **params))
        police = get(client, headers, "police", **params)
        shown = counts(police)
        hidden = [c for c, n in shown.items() if n is None]
        recovered = implied_total(police) - sum(n for n in shown.values() if n)
        truth_hidden = sum(truth.get(c, 0) for c in hidden)
        assert not (len(hidden) == 1 and pinned(recovered, truth_hidden, k)), (area, hidden, recovered)
        assert not pinned(recovered, truth[h], k) or h not in hidden, (area, recovered)
        meta = police.json()["metadata"]
        assert meta["total"] == sum(n for n in shown.values() if n), "the total is the sum of what is shown"


def test_windows_one_day_apart_pin_nothing(client, headers, plant, k) -> None:
    """The issue's day attack: the month from the 1st minus the month from the 2nd = the 1st's contacts."""
    first = get(client, headers, "police", **MAY, **OUTREACH8)
    second = get(client, headers, "police", start="2007-05-02", end="2007-06-01", **OUTREACH8)
    day = counts(get(client, headers, "planner", start="2007-05-01", end="2007-05-02", **OUTREACH8))
    if second.status_code != 200:
        assert second.status_code == 403 and second.json()["error"]["parameter"] == "start"
        return
    a, b = counts(first), counts(second)
    leaks = {c: a[c] - b[c] for c in a if a[c] is not None and b.get(c) is not None
             and pinned(a[c] - b[c], day.get(c, 0), k)}
    assert leaks == {}, f"contacts of 1 May pinned by differencing: {leaks}"


def test_windows_one_month_apart_pin_nothing(client, headers, plant, k) -> None:
    may = counts(get(client, headers, "police", **MAY, **OUTREACH8))
    both = counts(get(client, headers, "police", **MAY_JUNE, **OUTREACH8))
    june = counts(get(client, headers, "planner", **JUNE, **OUTREACH8))
    leaks = {c: both[c] - may[c] for c in both if both[c] is not None and may.get(c) is not None
             and pinned(both[c] - may[c], june.get(c, 0), k)}
    assert leaks == {}, f"June contacts pinned by May-June minus May: {leaks}"


def test_areas_one_cell_apart_pin_nothing(client, headers, plant, k) -> None:
    """Two bboxes that differ by the small cell H: the difference of their totals is H."""
    wide, narrow = _box(plant.h, plant.w), _box(plant.w)
    truth = [implied_total(get(client, headers, "planner", **MAY, **OUTREACH8, bbox=b)) for b in (wide, narrow)]
    police = [get(client, headers, "police", **MAY, **OUTREACH8, bbox=b) for b in (wide, narrow)]
    found = implied_total(police[0]) - implied_total(police[1])
    assert truth[0] - truth[1] == 3, "the two boxes differ by H (3 contacts) only"
    assert not pinned(found, truth[0] - truth[1], k), f"H's {found} contacts pinned by two bboxes"


def test_another_category_pins_nothing(client, headers, plant, k) -> None:
    """All outreach minus one category = the other categories' count in a cell."""
    every = get(client, headers, "police", **MAY, **OUTREACH8)
    contact = get(client, headers, "police", **MAY, **OUTREACH8, category="contact")
    kits = counts(get(client, headers, "planner", **MAY, **OUTREACH8, category="harm_reduction_kit"))
    if contact.status_code != 200:
        assert contact.status_code == 403 and contact.json()["error"]["parameter"] == "category"
        return
    a, b = counts(every), counts(contact)
    leaks = {c: a[c] - b[c] for c in a if a[c] is not None and b.get(c) is not None
             and pinned(a[c] - b[c], kits.get(c, 0), k)}
    assert leaks == {}, f"harm-reduction kits pinned by category differencing: {leaks}"


def test_another_resolution_pins_nothing(client, headers, plant, k) -> None:
    """A resolution-7 cell minus its shown resolution-8 children = the hidden child."""
    coarse = get(client, headers, "police", **MAY, kind="outreach", resolution=7)
    if coarse.status_code != 200:
        assert coarse.status_code == 403 and coarse.json()["error"]["parameter"] == "resolution"
        return
    fine = counts(get(client, headers, "police", **MAY, **OUTREACH8))
    truth = counts(get(client, headers, "planner", **MAY, **OUTREACH8))
    leaks = {}
    for parent, n in counts(coarse).items():
        children = [c for c in fine if hexagons.cell_to_str(
            int(hexagons.cells_to_parents(np.array([hexagons.str_to_cell(c)]), 7)[0])) == parent]
        hidden = [c for c in children if fine[c] is None]
        if n is not None and len(hidden) == 1:
            found = n - sum(fine[c] for c in children if fine[c] is not None)
            if pinned(found, truth[hidden[0]], k):
                leaks[hidden[0]] = found
    assert leaks == {}, f"resolution-8 cells pinned through resolution 7: {leaks}"


def test_the_police_table_itself_leaves_every_hidden_cell_k_wide(client, headers, plant, k, api_settings) -> None:
    """LP audit of one whole answer: shown cells, arrondissement totals, grand total and the share-implied total."""
    answer = get(client, headers, "police", **MAY, **OUTREACH8)
    shown = counts(answer)
    meta = answer.json()["metadata"]
    with db.connect(api_settings) as conn:
        frame = layout(conn, api_settings.model_copy(update={"release_resolution": 8}))
    n, m = len(frame.cells), len(frame.codes)
    h3 = [hexagons.cell_to_str(c) for c in frame.cells.tolist()]
    values = np.array([shown.get(c) or 0 for c in h3] + [0] * (m + 1), dtype=np.int64)
    hidden = np.array([shown.get(c, 0) is None for c in h3] + [True] * (m + 1))
    for i, code in enumerate(frame.codes.tolist()):
        subtotal = meta.get("arrondissements", {}).get(str(code))
        if subtotal is not None:
            values[n + i], hidden[n + i] = subtotal, False
    grand = meta.get("partition_total", implied_total(answer))
    if grand is not None:
        values[-1], hidden[-1] = grand, False
    equations = [(n + i, np.flatnonzero(frame.parent == i)) for i in range(m)] + [(n + m, n + np.arange(m))]
    low, high = lp_intervals(values, hidden, equations, np.zeros(len(values)), np.full(len(values), np.inf))
    truth = counts(get(client, headers, "planner", **MAY, **OUTREACH8))
    narrow = {h3[i]: (low[i], high[i]) for i in np.flatnonzero(hidden[:n])
              if np.floor(high[i] + 1e-7) - np.ceil(low[i] - 1e-7) < k and 0 < truth.get(h3[i], 0) < k}
    assert narrow == {}, f"hidden cells narrowed below k by the answer itself: {narrow}"


def test_identical_questions_get_identical_answers(client, headers, plant) -> None:
    a = client.get("/hexagons", params={**MAY, **OUTREACH8}, headers=headers["police"])
    b = client.get("/hexagons", params={**OUTREACH8, **MAY}, headers=headers["police"])
    assert a.status_code == b.status_code == 200 and a.json() == b.json()


def test_other_surfaces_show_police_no_outreach(client, headers, plant, works_site) -> None:
    """Every other surface either refuses police outreach or shows none of it."""
    refused = [("/exports/hexagons.csv", {**MAY, **OUTREACH8}), ("/hotspots", {**MAY, "kind": "outreach"}),
               ("/hotspots/emerging", {**MAY_JUNE, "kind": "outreach"}), ("/coverage", MAY),
               (f"/impact/{works_site}", {"before_start": "2007-04-01", "before_end": "2007-05-01",
                                          "after_start": "2007-05-01", "after_end": "2007-06-01",
                                          "kind": "outreach"})]
    for path, params in refused:
        assert client.get(path, params=params, headers=headers["police"]).status_code == 403, path
    default = client.get("/hotspots", params={**MAY, "resolution": 8}, headers=headers["police"])
    assert default.status_code == 200 and sum(f["properties"]["count"] for f in default.json()["features"]) == 0
    lng, lat = _centre(plant.v)
    zone = client.post("/zones", headers=headers["police"], json={
        "type": "Feature", "geometry": shapely.geometry.mapping(shapely.Point(lng, lat).buffer(0.01)),
        "properties": {"name": "attack zone", "partner_teams": [], "schedule": []}})
    assert zone.status_code == 201, zone.text
    summary = client.get(f"/zones/{zone.json()['id']}/summary", params=MAY, headers=headers["police"])
    assert summary.status_code == 200 and "outreach" not in summary.json()
    page = client.get("/maps/coordination", headers=headers["police"])
    assert page.status_code == 200 and '"outreach":' not in page.text


def test_police_outreach_windows_are_whole_past_months(client, headers, plant) -> None:
    for params, parameter in (({"start": "2007-05-02", "end": "2007-06-01"}, "start"),
                              ({"start": "2007-05-01", "end": "2007-05-31"}, "end"),
                              ({"start": "2099-01-01", "end": "2099-02-01"}, "end")):
        answer = get(client, headers, "police", **params, **OUTREACH8)
        assert answer.status_code == 403, params
        assert answer.json()["error"]["parameter"] == parameter
        assert "calendar month" in answer.json()["error"]["message"] or "over" in answer.json()["error"]["message"]
    # incidents keep free windows for police
    assert get(client, headers, "police", start="2007-05-02", end="2007-05-09", kind="incident").status_code == 200


def test_a_month_once_answered_does_not_move_when_late_events_arrive(client, headers, plant, api_settings) -> None:
    """Asking the same month before and after a late upload would isolate the late events: it is kept."""
    before = get(client, headers, "police", **JUNE, **OUTREACH8)
    planner_before = get(client, headers, "planner", **JUNE, **OUTREACH8).json()["metadata"]["total"]
    with db.connect(api_settings) as conn:
        ingest_all(conn, api_settings, _contacts(_fine_child(conn, plant.x), 2, "2007-06-20", "late"), SOURCE)
        conn.commit()
    after = get(client, headers, "police", **JUNE, **OUTREACH8)
    assert get(client, headers, "planner", **JUNE, **OUTREACH8).json()["metadata"]["total"] == planner_before + 2
    assert after.status_code == 200 and after.json() == before.json()


def _fine_child(conn, cell: int) -> int:
    fine, parents = _fine_children(conn)
    return int(fine[parents == cell][0])


def test_a_month_is_shown_only_once_it_has_settled(api_settings, api_data, headers) -> None:
    """With 400 days to settle, last month is refused, and a month of two years ago answered."""
    slow = api_settings.model_copy(update={"police_outreach_settle_days": 400})
    this_month = date.today().replace(day=1)
    last_month = (this_month - timedelta(days=1)).replace(day=1)
    with TestClient(create_app(slow)) as app:
        answer = app.get("/hexagons", params={"start": str(last_month), "end": str(this_month), **OUTREACH8},
                         headers=headers["police"])
        assert answer.status_code == 403 and answer.json()["error"]["parameter"] == "end"
        assert "400 days after it is over" in answer.json()["error"]["message"]
        old = app.get("/hexagons", params={"start": "2008-03-01", "end": "2008-04-01", **OUTREACH8},
                      headers=headers["police"])
        assert old.status_code == 200
