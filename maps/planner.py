"""The planner map (internal): counts or rates by month with a slider, heat, Gi* and trends."""

from __future__ import annotations

import html
from datetime import date

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
from folium.plugins import HeatMap

from geo_monitor import hexagons
from geo_monitor.analysis.counts import category_ids, check_resolution
from geo_monitor.analysis.cubes import step_cube
from geo_monitor.analysis.emerging import emerging
from geo_monitor.analysis.hotspots import hotspots
from geo_monitor.calendar import Window
from geo_monitor.errors import NotFoundError
from geo_monitor.grid import ensure_population
from geo_monitor.settings import Settings, get_settings
from maps import layers
from maps.data import last_event_day, reference_layers
from maps.elements import DEFAULT_BASEMAP, Basemap, JsCall, finish, label_html, new_map, to_js
from maps.hexlayer import PRECISION, StepCounts, counts_layer, scale_legend, slider
from maps.layers import ReferenceLayers


def heat_layer(counts: StepCounts, show: bool = False) -> HeatMap:
    """Return a heat layer from hexagon centres weighted by their total count (never event points)."""
    totals = counts.counts.sum(axis=0).astype(np.float64)
    keep = totals > 0
    lat, lng = hexagons.cells_to_latlng(counts.cells[keep])
    weights = totals[keep] / totals.max() if keep.any() else totals[keep]
    data = [[round(float(a), PRECISION), round(float(b), PRECISION), round(float(w), 4)]
            for a, b, w in zip(lat, lng, weights, strict=True)]
    name = label_html({"fr": "Chaleur (interne)", "en": "Heat (internal)"})
    return HeatMap(data, name=name, show=show, radius=22, blur=18, min_opacity=0.25, max_zoom=16)


def add_reference(m: folium.Map, reference: ReferenceLayers, legend: list[dict], *, works: bool = True,
                  quartiers: bool = True, metro: bool = True) -> folium.Element | None:
    """Add works, boundaries, metro lines and stations; return the arrondissement layer (to fit)."""
    if works and reference.works is not None:
        layer = layers.works(reference.works)
        m.add_child(layer)
        legend.append(layers.works_legend(layer))
    if quartiers and reference.quartiers is not None:
        m.add_child(layers.boundaries(reference.quartiers, {"fr": "Quartiers", "en": "Quartiers"}, weight=1,
                                      dash="4 4", colour="#555555"))
    fit = None
    if reference.arrondissements is not None:
        fit = layers.boundaries(reference.arrondissements, {"fr": "Arrondissements", "en": "Arrondissements"},
                                weight=2.5)
        m.add_child(fit)
    if metro and reference.lines is not None:
        m.add_child(layers.metro_lines(reference.lines))
    if metro and reference.stations is not None:
        m.add_child(layers.stations(reference.stations))
    return fit


def title_panel(title: dict, lines: list[dict], position: str = "topleft") -> JsCall:
    """Return a panel with a bilingual title and lines of text."""
    body = f"<h1>{label_html(title)}</h1>" + "".join(f"<p>{label_html(line)}</p>" for line in lines)
    return JsCall(f"gm.panel(__GM_MAP__, {to_js(position)}, 'gm-title', {to_js(body)});")


def planner_map(counts: StepCounts, *, measure: str = "count", hotspots: gpd.GeoDataFrame | None = None,
                emerging: gpd.GeoDataFrame | None = None, reference: ReferenceLayers | None = None,
                heat: bool = True, basemap: Basemap | None = DEFAULT_BASEMAP) -> folium.Map:
    """Return the planner map: a monthly (or weekly) choropleth with its slider and analysis layers.

    Parameters
    ----------
    counts
        Counts of the whole grid per step (``StepCounts``; rates need its population).
    measure
        ``"count"`` or ``"rate"`` (per 1,000 residents). The colour scale is fitted once to
        every step, so a colour means the same number whatever the slider shows.
    hotspots
        ``geo_monitor.analysis.cubes.hotspots`` output (``gi_bin``, ``label``, ``z``, ``p``…).
    emerging
        ``geo_monitor.analysis.cubes.emerging`` output (``pattern``, ``trend``, ``total``…).
    reference
        Boundaries, metro and works sites (works are drawn bold while active in the step).
    heat
        Add the heat layer (hexagon centres weighted by counts; internal maps only).
    basemap
        Online tiles used when reachable, ``None`` for none.

    """
    m = new_map("geo_monitor — carte des aménageurs / planner map")
    layer, scale, title = counts_layer(counts, measure=measure)
    m.add_child(layer)
    legend = [scale_legend(scale, title, layer, none={"fr": "pas d'habitant", "en": "no residents"}
                           if measure == "rate" else None)]
    if hotspots is not None:
        gi, section = layers.gi_classes(hotspots)
        m.add_child(gi)
        legend.append(section)
    if emerging is not None:
        trends, section = layers.emerging_classes(emerging)
        m.add_child(trends)
        legend.append(section)
    if heat:
        m.add_child(heat_layer(counts))
    fit = add_reference(m, reference or ReferenceLayers(), legend)
    m.add_child(slider(layer, {"fr": "Période", "en": "Period"}))
    frames = counts.frames()
    span = {"fr": f"{frames[0]['label']['fr']} – {frames[-1]['label']['fr']}",
            "en": f"{frames[0]['label']['en']} – {frames[-1]['label']['en']}"}
    resolution = hexagons.cell_resolution(int(counts.cells[0])) if len(counts.cells) else "?"
    m.add_child(title_panel(
        {"fr": "Où et quand : incidents par hexagone", "en": "Where and when: incidents by hexagon"},
        [span, {"fr": f"Hexagones H3 de résolution {resolution} ; échelle de couleurs fixe sur toute la période.",
                "en": f"H3 hexagons, resolution {resolution}; one colour scale for the whole period."},
         {"fr": "Usage interne : ne pas diffuser.", "en": "Internal use: do not publish."}]))
    return finish(m, fit=fit or layer, legend=legend, basemap=basemap, language="fr")


def _month_start(day: date, months_back: int = 0) -> date:
    return (pd.Timestamp(day.replace(day=1)) - pd.DateOffset(months=months_back)).date()


def build_planner(conn: psycopg.Connection, *, months: int = 36, end: date | None = None, resolution: int = 9,
                  kinds: list[str] | None = None, categories: list[str] | None = None, measure: str = "count",
                  settings: Settings | None = None) -> folium.Map:
    """Return the planner map of the last ``months`` whole months of data (end exclusive).

    ``end`` defaults to the first day of the month after the latest event of ``kinds``
    (incidents by default); Gi* and emerging hot spots cover the same window.
    """
    settings = settings or get_settings()
    kinds = kinds or ["incident"]
    check_resolution(resolution, settings)
    if end is None:
        last = last_event_day(conn, kinds)
        if last is None:
            raise NotFoundError(f"no {', '.join(kinds)} event in the store: ingest data first "
                                "(geo-monitor ingest FILE, or geo-monitor demo)")
        end = _month_start(last, -1)
    start = _month_start(end, months)
    window = Window.of(start, end)
    steps, grid, cube = step_cube(conn, category_ids(conn, kinds, categories), window, resolution, "month")
    population = ensure_population(conn, resolution).reindex(grid, fill_value=0.0).to_numpy()
    what = {"fr": "incidents", "en": "incidents"} if kinds == ["incident"] else {"fr": "événements", "en": "events"}
    counts = StepCounts(steps, "month", grid, cube, population, what=what)
    hot = hotspots(conn, start=start, end=end, resolution=resolution, kinds=kinds, categories=categories,
                            settings=settings)
    trends = emerging(conn, start=start, end=end, resolution=resolution, step="month", kinds=kinds,
                               categories=categories, settings=settings)
    reference = reference_layers(conn, start=start, end=end)
    m = planner_map(counts, measure=measure, hotspots=hot, emerging=trends, reference=reference)
    m.get_root().title = html.escape(f"geo_monitor — planner map {start:%Y-%m} to {end:%Y-%m}")
    return m
