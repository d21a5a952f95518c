"""Attacks on the public release, on the real PostGIS.

Thirteen months (2016-01 .. 2017-01) are planted by this module with busy hexagons, small
ones (1..k-1 events), arrondissements with a tiny total and empty ones, then released.
Every check below reads only what the release publishes (plus, where stated, the
engineers' primary/secondary flag, which makes the attacker stronger than a real one).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pandas as pd
import psycopg
import pytest
import shapely
from builders import in_month, ingest_all, records_in_cells
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from geo_monitor import hexagons
from geo_monitor.privacy import disclosure, noise
from geo_monitor.privacy.release import Layout, create_release, layout, protect_month
from geo_monitor.privacy.releases import Release, get_release, rolling_view
from geo_monitor.settings import Settings
from geo_monitor.store.vocabulary import vocabulary

MONTHS = [f"2016-{m:02d}" for m in range(1, 13)] + ["2017-01"]
GROUPS = ("drugs", "safety", "public_space")
CATEGORY = {"drugs": ("incident", "dealing"), "safety": ("incident", "aggression"),
            "public_space": ("incident", "graffiti"), "outreach": ("outreach", "care_referral")}
K = 11


def inner(frame: Layout, conn: psycopg.Connection) -> np.ndarray:
    """Indexes of layout cells whose centre lies in the study area."""
    area = shapely.from_wkb(conn.execute("SELECT ST_AsBinary(geom) FROM study_area").fetchone()[0])
    lat, lng = hexagons.cells_to_latlng(frame.cells)
    return np.flatnonzero(shapely.contains_xy(area, lng, lat))


def month_counts(rng: np.random.Generator, frame: Layout, usable: np.ndarray, steady: dict) -> Counter:
    """True counts {(group, cell index): n} of one generated month."""
    counts: Counter = Counter()
    codes = frame.codes.tolist()
    by_arr = {a: usable[frame.arrondissement[usable] == a] for a in codes}
    for group in GROUPS:
        for i in steady[group]:
            counts[(group, i)] = int(rng.integers(60, 120))
        for i in rng.choice(usable, min(3, len(usable)), replace=False):  # busy some months only
            counts[(group, int(i))] += int(rng.integers(0, 2) * rng.integers(30, 60))
        for i in rng.choice(usable, min(25, len(usable) // 2), replace=False):
            counts[(group, int(i))] += int(rng.integers(1, K))
    # Tiny arrondissement totals (1..k-1 events in the whole arrondissement) and empty ones.
    for group, code in (("drugs", codes[0]), ("safety", codes[0]), ("public_space", codes[0]),
                        ("public_space", codes[1])):
        for key in [key for key in counts if key[0] == group and frame.arrondissement[key[1]] == code]:
            del counts[key]
        if (group != "public_space" or code == codes[0]) and len(by_arr[code]):
            counts[(group, int(rng.choice(by_arr[code])))] = int(rng.integers(1, K))
    for code, n in zip(codes, (int(rng.integers(1, K)), 300, 150, 0), strict=True):
        if n and len(by_arr[code]):
            counts[("outreach", int(rng.choice(by_arr[code])))] = n
    return counts


def steady_cells(rng: np.random.Generator, frame: Layout, usable: np.ndarray) -> dict[str, list[int]]:
    """Busy cells of every month: for drugs one per arrondissement but the first (whose total stays
    tiny), so that exactly one arrondissement total is primary and needs a partner."""
    codes = frame.codes.tolist()
    steady = {g: [int(i) for i in rng.choice(usable, min(6, len(usable) // 2), replace=False)] for g in GROUPS}
    steady["drugs"] = [int(rng.choice(usable[frame.arrondissement[usable] == a])) for a in codes[1:]
                       if (frame.arrondissement[usable] == a).any()]
    return steady


def truth(counts: Counter, frame: Layout) -> dict[tuple, int]:
    """True counts of every published node: (group, 'cell', h3 int), (group, arrondissement or None)."""
    out: Counter = Counter()
    for (group, i), n in counts.items():
        if group != "outreach":
            out[(group, "cell", int(frame.cells[i]))] += n
        out[(group, int(frame.arrondissement[i]))] += n
        out[(group, None)] += n
    return out


def plant(conn: psycopg.Connection, settings: Settings, frame: Layout, months: dict[str, Counter]) -> pd.DataFrame:
    rows = [(frame.cells[i], *CATEGORY[group], at, f"attack-{month}-{group}-{i}-{j}")
            for month, counts in months.items() for (group, i), n in counts.items()
            for j, at in enumerate(in_month(month, n))]
    cells, kinds, categories, times, ids = zip(*rows, strict=True)
    records = records_in_cells(cells, kind=kinds, category=categories, occurred_at=times, ids=ids)
    return ingest_all(conn, settings, records, "test_attacks")


@pytest.fixture(scope="module")
def year(loaded_db: Settings, mconn: psycopg.Connection) -> dict:
    frame = layout(mconn, loaded_db)
    usable = inner(frame, mconn)
    rng = np.random.default_rng(1617)
    steady = steady_cells(rng, frame, usable)
    months = {m: month_counts(rng, frame, usable, steady) for m in MONTHS}
    planted = plant(mconn, loaded_db, frame, months)
    releases = {m: create_release(mconn, m, settings=loaded_db) for m in MONTHS}
    return {"frame": frame, "months": months, "planted": planted, "releases": releases,
            "rolling": {m: rolling_view(mconn, m) for m in ("2016-12", "2017-01")}}


@pytest.fixture(scope="module")
def coarse(loaded_db: Settings, mconn: psycopg.Connection) -> dict:
    """2017-05 released at resolution 7 (10 hexagons): in the 19e, two busy hexagons and a small
    one, so a hexagon is suppressed only to protect another (secondary suppression in action)."""
    settings = loaded_db.model_copy(update={"release_resolution": 7})
    frame = layout(mconn, settings)
    usable = inner(frame, mconn)
    third = usable[frame.arrondissement[usable] == frame.codes[2]]
    assert len(third) == 3
    counts = Counter({("drugs", int(third[0])): 100, ("drugs", int(third[1])): 90, ("drugs", int(third[2])): 4})
    for i in usable:
        counts[("safety", int(i))] = 80
        counts[("outreach", int(i))] = 5
    counts[("public_space", int(third[0]))] = 7
    plant(mconn, settings, frame, {"2017-05": counts})
    release = create_release(mconn, "2017-05", settings=settings)
    drugs = release.cells[release.cells["group"] == "drugs"].set_index("cell")
    assert drugs.loc[int(frame.cells[third[2]]), "reason"] == "primary"
    assert (drugs.loc[frame.cells[third[:2]], "reason"] == "secondary").sum() == 1
    return {"frame": frame, "counts": counts, "release": release}


def monthly(year: dict, coarse: dict) -> list[tuple[Layout, str, Counter, Release]]:
    """Every released month with its layout and true counts."""
    out = [(year["frame"], m, year["months"][m], r) for m, r in year["releases"].items()]
    return [*out, (coarse["frame"], "2017-05", coarse["counts"], coarse["release"])]


def shown(release: Release) -> dict[tuple, int | None]:
    """What the public sees: node -> value, None when not shown."""
    out = {}
    for group, h3, value, suppressed in release.cells_frame()[["group", "h3", "value", "suppressed"]].itertuples(
            index=False):
        out[(group, "cell", int(h3, 16))] = None if suppressed else int(value)
    for group, arr, value, suppressed, _ in release.totals_frame().itertuples(index=False):
        out[(group, None if pd.isna(arr) else int(arr))] = None if suppressed else int(value)
    return out


# --- 1. a count of 1..k-1 never shows --------------------------------------------------------------


def test_small_counts_never_show_in_any_month_area_or_view(year: dict, coarse: dict) -> None:
    frame = year["frame"]
    checked = 0
    for month_frame, month, counts, release in monthly(year, coarse):
        assert {hexagons.cell_resolution(c) for c in release.cells["cell"].tolist()} == {release.resolution}
        public = shown(release)
        for node, n in truth(counts, month_frame).items():
            if 0 < n < K:
                assert public[node] is None, (month, node, n, public[node])
                checked += 1
    assert checked > 13 * 50
    for month, view in year["rolling"].items():
        last = MONTHS.index(month)
        total = sum((Counter(truth(year["months"][m], frame)) for m in MONTHS[last - 11:last + 1]), Counter())
        public = shown(view)
        for node, n in total.items():
            if 0 < n < K:
                assert public[node] is None, (month, node, n)


_PLANS: dict[int, noise.NoisePlan] = {}


def _plan(frame: Layout) -> noise.NoisePlan:
    if frame.resolution not in _PLANS:
        _PLANS[frame.resolution] = noise.plan_noise(frame.incident_categories(), frame.outreach_categories(),
                                                    contributions=1, epsilon=1.0, outreach_share=0.2)
    return _PLANS[frame.resolution]


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), k=st.sampled_from([5, 11, 20]), fine=st.booleans())
def test_small_counts_never_show_in_generated_months(year: dict, coarse: dict, mconn: psycopg.Connection,
                                                     seed: int, k: int, fine: bool) -> None:
    # The same path as create_release after the SQL read, on many generated months at
    # resolutions 9 and 7. delta is 1e-9 here so that thousands of small cells keep the test
    # deterministic in practice.
    frame = year["frame"] if fine else coarse["frame"]
    rng = np.random.default_rng(seed)
    usable = inner(frame, mconn)
    counts = month_counts(rng, frame, usable, steady_cells(rng, frame, usable))
    rows = [f"outreach|{frame.arrondissement[i]}" if g == "outreach" else f"{g}|{frame.cells[i]:x}"
            for (g, i), n in counts.items() for _ in range(n)]
    plan = _plan(frame)
    measurement = noise.release_measurement(frame.incident_categories(), frame.outreach_categories(),
                                            plan.scale_incidents, plan.scale_outreach)
    tables = protect_month(*noise.draw(measurement, rows), frame, plan, k=k, delta=1e-9)
    n, codes = len(frame.cells), frame.codes.tolist()
    for (node_group, *rest), true in truth(counts, frame).items():
        if not 0 < true < k:
            continue
        table = tables[node_group]
        if rest[0] == "cell":
            index = int(np.searchsorted(frame.cells, rest[1]))
        elif node_group == "outreach":
            index = codes.index(rest[0]) if rest[0] is not None else len(codes)
        else:
            index = n + (codes.index(rest[0]) if rest[0] is not None else len(codes))
        assert table.protection.suppressed[index], (node_group, rest, true)


# --- 2. subtraction never recovers a suppressed count ----------------------------------------------


def test_subtracting_published_parents_and_children_recovers_nothing(year: dict, coarse: dict) -> None:
    secondary = 0
    for frame, month, _, release in monthly(year, coarse):
        parent = frame.parent
        secondary += int((release.cells["reason"] == "secondary").sum() + (release.totals["reason"] == "secondary").sum())
        delta, k = release.display_delta, release.k
        for group in (*GROUPS, "outreach"):
            totals = release.totals[release.totals["group"] == group]
            if group == "outreach":
                leaves, table = totals.iloc[:-1], disclosure.hierarchy(np.zeros(len(frame.codes), dtype=int))
                scale = release.scales["outreach"]
            else:
                leaves = release.cells[release.cells["group"] == group].sort_values("cell")
                leaves = pd.concat([leaves, totals.iloc[:-1]])
                table = disclosure.hierarchy(np.zeros(len(frame.cells), dtype=int), parent, len(frame.codes))
                scale = release.scales["incidents"]
            nodes = pd.concat([leaves, totals.iloc[-1:]])
            suppressed = nodes["suppressed"].to_numpy()
            values = nodes["value"].fillna(0).to_numpy(dtype=np.int64)
            # Each published equation hides either nothing or at least two members.
            for p, children in table.equations:
                members = np.append(children, p)
                assert suppressed[members].sum() != 1, (month, group, p)
            # The LP over everything published, the attacker knowing each node's reason.
            thresholds = np.array([noise.display_threshold(k, scale, int(m), delta) for m in table.size])
            floors = np.array([noise.noise_floor(scale, int(m), delta) for m in table.size])
            primary = (nodes["reason"] == "primary").to_numpy()
            lower = np.where(primary, floors, thresholds).astype(float)
            upper = np.where(primary, thresholds - 1.0, np.inf)
            low, high = disclosure.lp_intervals(values, suppressed, table.equations, lower, upper)
            width = np.floor(high + 1e-7) - np.ceil(low - 1e-7)
            assert (width[suppressed] >= k).all(), (month, group, np.flatnonzero(suppressed & (width < k)))
    assert secondary >= 13  # drugs: one tiny arrondissement a month needs a partner


def test_two_months_and_a_twelve_month_view_recover_nothing(year: dict) -> None:
    months = {m: shown(r) for m, r in year["releases"].items()}
    views = {m: shown(v) for m, v in year["rolling"].items()}
    for month, view in views.items():
        last = MONTHS.index(month)
        window = MONTHS[last - 11:last + 1]
        for node, value in view.items():
            monthly = [months[m].get(node) for m in window]
            if value is None:
                assert None in monthly
            else:  # shown only when every month is shown: the view adds nothing
                assert None not in monthly and value == sum(monthly)
    # R(2017-01) - R(2016-12) = x(2017-01) - x(2016-01): both shown whenever both views are.
    for node, value in views["2017-01"].items():
        before = views["2016-12"].get(node)
        if value is not None and before is not None:
            assert months["2017-01"][node] is not None and months["2016-01"][node] is not None
            assert value - before == months["2017-01"][node] - months["2016-01"][node]


# --- 3. repeated requests ------------------------------------------------------------------------


def test_averaging_repeated_requests_gives_nothing(loaded_db: Settings, mconn: psycopg.Connection,
                                                   year: dict) -> None:
    original = year["releases"]["2016-06"]
    spent = mconn.execute("SELECT sum(epsilon) FROM privacy_ledger WHERE month = '2016-06-01'").fetchone()[0]
    answers = [create_release(mconn, "2016-06", settings=loaded_db) for _ in range(5)]
    answers += [get_release(mconn, "2016-06") for _ in range(5)]
    values = np.array([a.cells["value"].fillna(-1).to_numpy() for a in answers])
    assert (values == original.cells["value"].fillna(-1).to_numpy()).all()
    assert mconn.execute("SELECT sum(epsilon) FROM privacy_ledger WHERE month = '2016-06-01'").fetchone()[0] == spent


# --- 4. one person adds several events ------------------------------------------------------------


def test_one_person_adding_several_events_stays_within_the_stated_loss(loaded_db: Settings,
                                                                       mconn: psycopg.Connection,
                                                                       year: dict) -> None:
    c = 3
    settings = loaded_db.model_copy(update={"release_contributions": c})
    frame = year["frame"]
    usable = inner(frame, mconn)
    rng = np.random.default_rng(3)
    people = []  # (person, group, cell index): the person id exists only in this test
    for person in range(400):
        home = int(rng.choice(usable))
        for _ in range(int(rng.integers(1, c + 1))):
            people.append((person, str(rng.choice([*GROUPS, "outreach"])), home))
    counts = Counter((g, i) for _, g, i in people)
    plant(mconn, settings, frame, {"2017-03": counts})
    release = create_release(mconn, "2017-03", settings=settings)
    ledger = mconn.execute("SELECT query, epsilon, contributions FROM privacy_ledger WHERE release_id = %s",
                           (release.id,)).fetchall()
    assert {row[2] for row in ledger} == {c} and release.contributions == c
    assert sum(row[1] for row in ledger) == pytest.approx(release.epsilon) and release.epsilon <= 1.0
    measurement = noise.release_measurement(frame.incident_categories(), frame.outreach_categories(),
                                            release.scales["incidents"], release.scales["outreach"])
    assert measurement.map(c) <= release.epsilon
    assert release.scales["incidents"] == pytest.approx(c / 0.8)
    # Removing any one person changes the event rows by at most c: within the stated loss.
    per_person = Counter(p for p, _, _ in people)
    assert max(per_person.values()) == c
    for d in set(per_person.values()):
        assert measurement.map(d) <= release.epsilon


# --- 5. nothing of a record reaches the release ----------------------------------------------------


def test_no_record_detail_reaches_the_release(year: dict, coarse: dict, mconn: psycopg.Connection) -> None:
    outreach_categories = set(vocabulary()["outreach"])
    planted = year["planted"]
    points = set(zip(planted["lon"].astype(float).round(9), planted["lat"].astype(float).round(9), strict=True))
    for release in [*year["releases"].values(), *year["rolling"].values(), coarse["release"]]:
        doc = release.to_geojson()
        text = json.dumps(doc) + release.totals_frame().to_json() + release.cells_frame().drop(
            columns="geometry").to_json()
        words = set(re.findall(r"[a-z_]+", text))
        assert not words & outreach_categories
        assert not re.search(r"\d{4}-\d{2}-\d{2}T|\d{2}:\d{2}", text)  # no timestamps, only the month
        assert "attack-" not in text and "reason" not in text and "primary" not in text
        for feature in doc["features"]:
            ring = shapely.geometry.shape(feature["geometry"])
            assert ring.equals_exact(hexagons.cells_to_polygons(np.array([int(feature["properties"]["h3"], 16)]))[0],
                                     1e-12)
            corners = {(round(x, 9), round(y, 9)) for x, y in ring.exterior.coords}
            assert not corners & points
    columns = mconn.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_name IN "
        "('releases', 'release_cells', 'release_totals') AND data_type LIKE 'timestamp%%'").fetchall()
    assert columns == [("releases", "created_at")]  # when it was published, nothing about an event
