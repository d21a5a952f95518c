"""Synthetic, seeded sample data in the canonical record, written to CSV or GeoParquet in chunks.

Incidents and outreach cluster around real places of the north-east (data/places.csv) with
evening/night and weekend rhythms for incidents, maraude hours 7 days a week for outreach (a
share of it at metro stations) and a hotspot drift from Porte de la Chapelle towards Stalingrad
and Éole over 2019-2021. Works events come from the reference works layer when it is available.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely
from pyproj import CRS
from shapely.geometry import shape

from geo_monitor.errors import InvalidArgumentError, ReferenceDataError
from geo_monitor.settings import Settings, get_settings
from geo_monitor.store.lake import wkb_points
from geo_monitor.store.reference import reference_features
from geo_monitor.store.vocabulary import vocabulary

COLUMNS = ("kind", "category", "occurred_at", "lon", "lat", "source", "external_id", "ends_at")
MIN_EVENTS, MAX_EVENTS = 1_000, 10_000_000
CHUNK_ROWS = 500_000
SOURCE = "sample"
FIRST_DAY, END_DAY = np.datetime64("2019-01-01", "D"), np.datetime64("2022-01-01", "D")
M_PER_DEG_LAT = 111_320.0
M_PER_DEG_LON = M_PER_DEG_LAT * math.cos(math.radians(48.88))
OUTREACH_SHARE = 0.29 / 0.99  # of the incident + outreach rows (works take the last ~1%)
BACKGROUND_SHARE = 0.10  # uniform noise over the study area
METRO_SHARE = 0.25  # of outreach contacts, made in metro stations with the RATP
METRO_SPREAD_M = 12.0
WORKS_PER_EVENTS = 100  # at most one works event per 100 events

# Local-time rhythms: index = hour of day, or day of week (Monday = 0).
_HOURS = {
    "incident": [6, 5, 4, 3, 2, 1.5, 1, 1, 1.2, 1.5, 1.8, 2, 2.2, 2.2, 2.3, 2.5, 2.8, 3.2, 4, 5, 6, 7, 7.5, 7],
    "outreach": [0.2, 0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 1, 4, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 5, 4, 1],
}
_WEEKDAYS = {"incident": [0.9, 0.9, 0.95, 1.0, 1.2, 1.4, 1.25], "outreach": [1, 1, 1, 1, 1, 0.95, 0.9]}
# Category weights; a category added by configuration gets weight 1.
_DRUG = {"consumption_gathering": 8, "drug_litter": 6, "dealing": 5, "aggression": 2,
         "resident_complaint": 5, "police_intervention": 4}
_OUTREACH = {"contact": 10, "harm_reduction_kit": 6, "care_referral": 2,
             "accommodation_referral": 1.5, "rest_space_referral": 1}
_WORKS_CATEGORY = (("ECLAIRAGE", "lighting"), ("NETTOY", "cleaning"), ("PROPRETE", "cleaning"),
                   ("AMENAGEMENT", "redesign"), ("TRAMWAY", "redesign"), ("IMMEUBLE", "fencing"),
                   ("CLOTURE", "fencing"))


@dataclass
class SampleSummary:
    """What generate_sample wrote."""

    path: Path
    events: int
    by_kind: dict[str, int] = field(default_factory=dict)
    works_sites: int = 0
    seconds: float = 0.0


def _study_area(settings: Settings) -> shapely.Geometry:
    features = reference_features("arrondissements", settings)
    parts = [shape(f["geometry"]) for f in features
             if str(f["properties"].get("c_arinsee")) in settings.study_area]
    if not parts:
        raise ReferenceDataError(f"no arrondissement of the study area {settings.study_area} in the reference layer")
    area = shapely.union_all(parts)
    shapely.prepare(area)
    return area


def _places(settings: Settings, area: shapely.Geometry) -> pd.DataFrame:
    places = pd.read_csv(settings.data_dir / "places.csv")
    return places[shapely.contains_xy(area, places["lon"].to_numpy(), places["lat"].to_numpy())].reset_index(drop=True)


def _metro_stations(settings: Settings, area: shapely.Geometry) -> np.ndarray:
    xy = np.array(sorted({tuple(f["geometry"]["coordinates"][:2]) for f in reference_features("stations", settings)
                          if (f["properties"] or {}).get("mode") == "METRO"}), dtype=float).reshape(-1, 2)
    return xy[shapely.contains_xy(area, xy[:, 0], xy[:, 1])] if len(xy) else xy


def _iso_paris(utc: np.ndarray) -> pa.Array:
    """Format UTC instants as ISO 8601 Paris wall-clock time with its offset."""
    utc = np.asarray(utc, dtype="datetime64[s]")
    local = pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert("Europe/Paris").tz_localize(None)
    local = local.to_numpy().astype("datetime64[s]")
    offsets, inverse = np.unique((local - utc).astype(np.int64), return_inverse=True)
    labels = np.array([f"{'+' if o >= 0 else '-'}{abs(o) // 3600:02d}:{abs(o) % 3600 // 60:02d}" for o in offsets])
    text = pa.array(np.datetime_as_string(local, unit="s"))
    return pc.binary_join_element_wise(text, pa.array(labels[inverse.ravel()]), "")


def _paris_to_utc(local: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turn Paris wall-clock times into UTC instants (DST gaps shift forward, folds pick at random)."""
    index = pd.DatetimeIndex(local).tz_localize(
        "Europe/Paris", ambiguous=rng.random(len(local)) < 0.5, nonexistent="shift_forward")
    return index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[s]")


def _local_times(rng: np.random.Generator, kind: str, m: int) -> np.ndarray:
    days = np.arange(FIRST_DAY, END_DAY)
    dow = (days.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    season = 1 + 0.15 * np.sin(2 * np.pi * ((days - FIRST_DAY).astype(float) / 365.25 - 0.3))
    p_day = np.asarray(_WEEKDAYS[kind])[dow] * season
    p_hour = np.asarray(_HOURS[kind], dtype=float)
    day = rng.choice(days, size=m, p=p_day / p_day.sum())
    hour = rng.choice(24, size=m, p=p_hour / p_hour.sum())
    return day.astype("datetime64[s]") + (hour * 3600 + rng.integers(0, 3600, size=m)).astype("timedelta64[s]")


def _draw_points(rng: np.random.Generator, area: shapely.Geometry, cx: np.ndarray, cy: np.ndarray,
                 spread_m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian points around centres (NaN centre = uniform), redrawn until inside the area."""
    minx, miny, maxx, maxy = area.bounds
    uniform = np.isnan(cx)
    lon, lat = np.empty(len(cx)), np.empty(len(cx))
    todo, attempt = np.arange(len(cx)), 0
    while todo.size:
        if attempt == 30:  # a centre hugging the boundary: give up on it, use the background
            uniform[todo] = True
        k, u = todo.size, uniform[todo]
        gx = cx[todo] + rng.standard_normal(k) * spread_m[todo] / M_PER_DEG_LON
        gy = cy[todo] + rng.standard_normal(k) * spread_m[todo] / M_PER_DEG_LAT
        lon[todo] = np.round(np.where(u, rng.uniform(minx, maxx, k), gx), 6)
        lat[todo] = np.round(np.where(u, rng.uniform(miny, maxy, k), gy), 6)
        todo = todo[~shapely.contains_xy(area, lon[todo], lat[todo])]
        attempt += 1
    return lon, lat


def _pick(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """Draw one column index per row of a (rows x columns) weight matrix."""
    cumulative = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cumulative[:, -1]
    return np.minimum((cumulative < u[:, None]).sum(axis=1), weights.shape[1] - 1)


class _Model:
    """Everything a chunk needs: area, places, stations and the category vocabulary."""

    def __init__(self, settings: Settings) -> None:
        self.area = _study_area(settings)
        self.places = _places(settings, self.area)
        self.stations = _metro_stations(settings, self.area)
        self.vocab = vocabulary(settings)
        self.categories = [c for kind in ("incident", "outreach", "works") for c in self.vocab[kind]]

    def category_weights(self, kind: str, hotspot: bool) -> np.ndarray:
        if kind == "outreach":
            return np.array([_OUTREACH.get(c, 1.0) for c in self.vocab[kind]])
        if hotspot:  # around the named places the plan's own problems dominate
            return np.array([_DRUG.get(c, 0.4) for c in self.vocab[kind]])
        return np.array([0.4 if c in _DRUG else 1.0 for c in self.vocab[kind]])


def _synthetic(rng: np.random.Generator, model: _Model, m: int, first_row: int, seed: int) -> pa.Table:
    """Draw m incident/outreach events."""
    is_outreach = rng.random(m) < OUTREACH_SHARE
    local = np.empty(m, dtype="datetime64[s]")
    for kind, mask in (("incident", ~is_outreach), ("outreach", is_outreach)):
        local[mask] = _local_times(rng, kind, int(mask.sum()))
    utc = _paris_to_utc(local, rng)
    years = (local - np.datetime64("2020-07-01", "s")).astype(float) / (365.25 * 86400)

    places, cx, cy = model.places, np.full(m, np.nan), np.full(m, np.nan)
    spread = np.zeros(m)
    component = rng.random(m)
    on_place = component >= BACKGROUND_SHARE
    if len(places):
        kinds = places["kinds"].str.split(";")
        base = np.array([[kind in k for k in kinds] for kind in ("incident", "outreach")], dtype=float)
        base *= places["weight"].to_numpy()
        w = base[is_outreach.astype(int)] * np.exp(np.outer(years, places["trend"].to_numpy()))
        on_place &= w.sum(axis=1) > 0
        choice = _pick(rng, w)[on_place]
        cx[on_place], cy[on_place] = places["lon"].to_numpy()[choice], places["lat"].to_numpy()[choice]
        spread[on_place] = places["spread_m"].to_numpy()[choice]
    if len(model.stations):
        metro = is_outreach & (component >= 1 - METRO_SHARE)
        station = rng.integers(0, len(model.stations), size=int(metro.sum()))
        cx[metro], cy[metro] = model.stations[station, 0], model.stations[station, 1]
        spread[metro] = METRO_SPREAD_M
    lon, lat = _draw_points(rng, model.area, cx, cy, spread)

    category = np.empty(m, dtype=np.int64)
    offset = 0
    for kind in ("incident", "outreach"):
        for hotspot in (True, False):
            mask = (is_outreach == (kind == "outreach")) & (~np.isnan(cx) == hotspot)
            p = model.category_weights(kind, hotspot)
            category[mask] = offset + rng.choice(len(p), size=int(mask.sum()), p=p / p.sum())
        offset += len(model.vocab[kind])
    rows = pa.array(np.arange(first_row, first_row + m))
    return pa.table({
        "kind": pc.take(pa.array(["incident", "outreach"]), pa.array(is_outreach.astype(np.int8))),
        "category": pc.take(pa.array(model.categories), pa.array(category)),
        "occurred_at": _iso_paris(utc),
        "lon": lon, "lat": lat,
        "source": pa.array(np.full(m, SOURCE)),
        "external_id": pc.binary_join_element_wise(f"S-{seed}-", pc.cast(rows, pa.string()), ""),
        "ends_at": pa.nulls(m, pa.string()),
    })


def _works_category(objet: str | None, allowed: list[str]) -> str:
    name = (objet or "").upper()
    category = next((cat for key, cat in _WORKS_CATEGORY if key in name), "roadworks")
    return category if category in allowed else allowed[0]


def _works(rng: np.random.Generator, model: _Model, settings: Settings, limit: int, seed: int) -> pa.Table:
    """Works events from the reference works layer, or synthetic sites near the places without it."""
    allowed = model.vocab["works"]
    try:
        features = [f for f in reference_features("works", settings) if f.get("geometry")]
        points = shapely.point_on_surface([shape(f["geometry"]) for f in features])
        lon, lat = np.round(shapely.get_x(points), 6), np.round(shapely.get_y(points), 6)
        props = [f["properties"] for f in features]
        keep = shapely.contains_xy(model.area, lon, lat) & np.array([bool(p.get("date_debut") and p.get("date_fin")) for p in props])
        keep &= ~pd.Series([p.get("identifiant") for p in props]).duplicated().to_numpy()
        idx = np.flatnonzero(keep)
        starts = pd.to_datetime([props[i]["date_debut"] for i in idx], utc=True)
        ends = pd.to_datetime([props[i]["date_fin"] for i in idx], utc=True)
        table = {"category": [_works_category(props[i].get("objet"), allowed) for i in idx],
                 "lon": lon[idx], "lat": lat[idx], "external_id": [f"W-{props[i]['identifiant']}" for i in idx]}
    except ReferenceDataError:
        n, places = 36, model.places
        centre = rng.integers(0, len(places), size=n) if len(places) else None
        cx = places["lon"].to_numpy()[centre] if centre is not None else np.full(n, np.nan)
        cy = places["lat"].to_numpy()[centre] if centre is not None else np.full(n, np.nan)
        lon, lat = _draw_points(rng, model.area, cx, cy, np.full(n, 300.0))
        start_local = FIRST_DAY.astype("datetime64[s]") + rng.integers(0, 3 * 365, n) * 86400 + 7 * 3600
        starts = pd.DatetimeIndex(_paris_to_utc(start_local, rng), tz="UTC")
        ends = starts + pd.to_timedelta(rng.integers(30, 365, n), unit="D")
        table = {"category": list(rng.choice(allowed, size=n)), "lon": lon, "lat": lat,
                 "external_id": [f"W-S-{seed}-{i}" for i in range(n)]}
    chosen = np.sort(rng.choice(len(starts), size=min(limit, len(starts)), replace=False))
    m = len(chosen)
    starts = starts.tz_convert("UTC").tz_localize(None).to_numpy()[chosen]
    ends = ends.tz_convert("UTC").tz_localize(None).to_numpy()[chosen]
    return pa.table({
        "kind": pa.array(["works"] * m), "category": pa.array(np.asarray(table["category"])[chosen]),
        "occurred_at": _iso_paris(starts), "lon": table["lon"][chosen], "lat": table["lat"][chosen],
        "source": pa.array([SOURCE] * m), "external_id": pa.array(np.asarray(table["external_id"])[chosen]),
        "ends_at": _iso_paris(ends),
    })


SCHEMA = pa.schema([(c, pa.float64() if c in ("lon", "lat") else pa.string()) for c in COLUMNS])


_models: dict[str, _Model] = {}


def synthetic_events(rows: int, *, seed: int, chunk: int, first_row: int, settings: Settings | None = None) -> pa.Table:
    """Return one chunk of seeded synthetic incident and outreach records (canonical columns, as text).

    Chunks are independent (their generator is seeded by ``(seed, chunk)``), so workers can
    draw them in parallel; ``first_row`` numbers their external ids.
    """
    settings = settings or get_settings()
    key = settings.model_dump_json(include={"study_area", "reference_dir", "cache_dir", "extra_categories"})
    if key not in _models:
        _models[key] = _Model(settings)
    rng = np.random.default_rng(np.random.SeedSequence([seed, chunk]))
    return _synthetic(rng, _models[key], rows, first_row, seed).cast(SCHEMA)


def generate_sample(out: Path, n_events: int = 100_000, *, seed: int = 42, settings: Settings | None = None,
                    progress: Callable[[int], None] | None = None) -> SampleSummary:
    """Write ``n_events`` seeded synthetic events to ``out`` (.csv or GeoParquet .parquet), chunk by chunk.

    The same ``(seed, n_events)`` and reference data always give a byte-identical file. GeoParquet
    files carry the canonical columns plus a WKB ``geometry`` column (EPSG:4326).
    """
    started = time.perf_counter()
    out = Path(out)
    if not MIN_EVENTS <= n_events <= MAX_EVENTS:
        raise InvalidArgumentError(
            f"n_events must be between {MIN_EVENTS:,} and {MAX_EVENTS:,}, got {n_events:,}")
    if out.suffix.lower() not in (".csv", ".parquet"):
        raise InvalidArgumentError(f"output must end in .csv or .parquet, got {out.name!r}")
    settings = settings or get_settings()
    model = _Model(settings)
    n_chunks = -(-n_events // CHUNK_ROWS)
    works_rng, *chunk_rngs = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n_chunks + 1))
    works = _works(works_rng, model, settings, n_events // WORKS_PER_EVENTS, seed)
    parquet = out.suffix.lower() == ".parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".part")  # a failed run never leaves a truncated file behind
    if parquet:
        geo = {"version": "1.0.0", "primary_column": "geometry", "columns": {"geometry": {
            "encoding": "WKB", "geometry_types": ["Point"], "crs": CRS.from_epsg(4326).to_json_dict()}}}
        schema = SCHEMA.append(pa.field("geometry", pa.binary())).with_metadata({"geo": json.dumps(geo)})
        writer = pq.ParquetWriter(partial, schema, compression="zstd")
    else:
        schema, writer = SCHEMA, pacsv.CSVWriter(partial, SCHEMA)
    by_kind = {"incident": 0, "outreach": 0, "works": 0}
    written = 0
    try:
        for i, rng in enumerate(chunk_rngs):
            head = works.num_rows if i == 0 else 0  # works rows open the file
            m = min(CHUNK_ROWS, n_events - written) - head
            table = _synthetic(rng, model, m, written + head, seed).cast(SCHEMA)
            if head:
                table = pa.concat_tables([works.cast(SCHEMA), table])
            if parquet:
                table = table.append_column("geometry", wkb_points(table["lon"].to_numpy(), table["lat"].to_numpy()))
            writer.write_table(table.cast(schema))
            for entry in pc.value_counts(table["kind"]).to_pylist():
                by_kind[entry["values"]] += entry["counts"]
            written += table.num_rows
            if progress:
                progress(written)
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    writer.close()
    partial.replace(out)
    return SampleSummary(out, written, by_kind, works.num_rows, time.perf_counter() - started)

