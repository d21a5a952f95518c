"""Reference and class layers: boundaries, metro, works sites, Gi* and emerging classes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from maps.elements import Label, RuntimeLayer, label_html, legend_section
from maps.hexlayer import PRECISION
from maps.styles import (
    EMERGING_COLOURS,
    EMERGING_LABELS,
    GI_COLOURS,
    GI_LABELS,
    WORKS_ACTIVE,
    WORKS_INACTIVE,
)

SIMPLIFY = 0.00001  # degrees (~1 m): Douglas-Peucker keeps a subset of the original vertices


@dataclass
class ReferenceLayers:
    """Reference layers in EPSG:4326; any may be ``None`` (left off the map)."""

    arrondissements: gpd.GeoDataFrame | None = None  # code, number, name
    quartiers: gpd.GeoDataFrame | None = None  # code, name
    stations: gpd.GeoDataFrame | None = None  # name, lines, mode (points)
    lines: gpd.GeoDataFrame | None = None  # line, mode, colour
    works: gpd.GeoDataFrame | None = None  # id, purpose, street, starts, ends (ISO days)


def geojson(frame: gpd.GeoDataFrame, properties: list[str], *, simplify: float | None = SIMPLIFY) -> dict:
    """Return a FeatureCollection with rounded (and optionally simplified) coordinates."""
    geometries = frame.geometry.to_numpy()
    if simplify:
        geometries = shapely.simplify(geometries, simplify, preserve_topology=True)
    geometries = shapely.transform(geometries, lambda xy: np.round(xy, PRECISION))
    features = []
    for geometry, (_, row) in zip(geometries, frame[properties].iterrows(), strict=True):
        props = {k: _json_value(v) for k, v in row.items()}
        features.append({"type": "Feature", "properties": props, "geometry": shapely.geometry.mapping(geometry)})
    return {"type": "FeatureCollection", "features": features}


def _json_value(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value is pd.NaT:
        return None
    return value


def boundaries(frame: gpd.GeoDataFrame, name: Label, *, weight: float, dash: str | None = None,
               colour: str = "#333333", label: str = "name", show: bool = True) -> folium.GeoJson:
    """Return unfilled boundaries with their name as tooltip."""
    style = {"color": colour, "weight": weight, "fill": False, "opacity": 0.85, "dashArray": dash}
    return folium.GeoJson(geojson(frame, [label]), name=label_html(name), show=show, style_function=lambda _: style,
                          tooltip=folium.GeoJsonTooltip([label], labels=False), control=True, smooth_factor=0.5)


METRO_NAME = {"fr": "Lignes de métro et RER", "en": "Metro and RER lines"}
WORKS_NAME = {"fr": "Chantiers", "en": "Works sites"}


def metro_lines(frame: gpd.GeoDataFrame, name: Label | None = None) -> folium.GeoJson:
    """Return rail lines in their official colours."""
    frame = frame.assign(colour=["#" + c.lstrip("#") if isinstance(c, str) and c else "#777777"
                                 for c in frame["colour"]])
    return folium.GeoJson(geojson(frame, ["line", "colour"]), name=label_html(name or METRO_NAME),
                          style_function=lambda f: {"color": f["properties"]["colour"], "weight": 2, "opacity": 0.65},
                          tooltip=folium.GeoJsonTooltip(["line"], labels=False))


def stations(frame: gpd.GeoDataFrame, name: Label = "Stations") -> folium.GeoJson:
    """Return stations as small circles, with their name and lines as tooltip."""
    return folium.GeoJson(geojson(frame, ["name", "lines"], simplify=None), name=label_html(name),
                          marker=folium.CircleMarker(radius=3, weight=1.2, color="#333333", fill=True,
                                                     fill_color="#ffffff", fill_opacity=1.0),
                          tooltip=folium.GeoJsonTooltip(["name", "lines"], labels=False))


def works(frame: gpd.GeoDataFrame, name: Label | None = None, show: bool = True) -> RuntimeLayer:
    """Return works sites drawn with their periods (bold while active in the slider's step)."""
    data = geojson(frame, ["id", "purpose", "street", "starts", "ends"])
    options = {"active": WORKS_ACTIVE, "inactive": WORKS_INACTIVE, "title": {"fr": "Chantier", "en": "Works site"}}
    return RuntimeLayer("periodLayer", data, options, name=label_html(name or WORKS_NAME), show=show)


def works_legend(layer: RuntimeLayer) -> dict:
    """Return the works legend section."""
    return legend_section({"fr": "Chantiers", "en": "Works sites"}, [
        {"color": WORKS_ACTIVE["fillColor"], "border": WORKS_ACTIVE["color"],
         "label": {"fr": "en cours pendant la période", "en": "active during the step"}},
        {"color": "transparent", "border": WORKS_INACTIVE["color"], "dashed": True,
         "label": {"fr": "hors période", "en": "not active then"}}], layer)


def classes(frame: gpd.GeoDataFrame, column: str, colours: dict, labels: dict, name: Label,
            tooltip: list[str], aliases: list[str], show: bool = False) -> tuple[folium.GeoJson, dict]:
    """Return hexagons of a class column (only classes with a colour are drawn) and its legend."""
    drawn = frame[frame[column].isin(list(colours))].copy()
    drawn["_fill"] = [colours[v] for v in drawn[column]]
    for col in tooltip:
        if pd.api.types.is_float_dtype(drawn[col]):
            drawn[col] = drawn[col].round(3)
    layer = folium.GeoJson(geojson(drawn, [*tooltip, "_fill"], simplify=None), name=label_html(name), show=show,
                           style_function=lambda f: {"fillColor": f["properties"]["_fill"], "color": "#444444",
                                                     "weight": 0.6, "fillOpacity": 0.75},
                           tooltip=folium.GeoJsonTooltip(tooltip, aliases=aliases))
    present = set(drawn[column])
    items = [{"color": colours[k], "label": labels[k]} for k in colours if k in present]
    if not items:
        items = [{"color": "transparent", "label": {"fr": "aucune cellule", "en": "no cell"}}]
    return layer, legend_section(name, items, layer)


def gi_classes(frame: gpd.GeoDataFrame, show: bool = False) -> tuple[folium.GeoJson, dict]:
    """Return the Gi* hot and cold spots (``geo_monitor.analysis.cubes.hotspots``) and their legend."""
    return classes(frame, "gi_bin", GI_COLOURS, GI_LABELS,
                   {"fr": "Points chauds Gi*", "en": "Gi* hot spots"}, ["label", "count", "z", "p", "h3"],
                   ["class", "count", "z", "p", "cell"], show=show)


def emerging_classes(frame: gpd.GeoDataFrame, show: bool = False) -> tuple[folium.GeoJson, dict]:
    """Return the emerging hot spot patterns (``geo_monitor.analysis.cubes.emerging``) and their legend."""
    return classes(frame, "pattern", EMERGING_COLOURS, EMERGING_LABELS,
                   {"fr": "Tendances (points chauds émergents)", "en": "Emerging hot spots"},
                   ["pattern", "total", "trend", "h3"], ["pattern", "total", "trend", "cell"], show=show)
