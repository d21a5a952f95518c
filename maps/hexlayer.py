"""The stepped hexagon choropleth: geometry once, a small array of values per step.

folium's TimestampedGeoJson (or one GeoJson layer per step) repeats every hexagon in every
step. Here the hexagons are written once as rings of [lat, lng] vertices and each step adds
one number per cell; the runtime restyles the same polygons when the slider moves, against
a colour scale fitted once to all steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import pandas as pd

from geo_monitor import hexagons
from maps.elements import JsCall, Label, RuntimeLayer, clean, label_html, legend_section, to_js
from maps.styles import FILL_OPACITY, ZERO_OPACITY, Scale, fixed_scale

PRECISION = 6  # decimal degrees: ~0.1 m, far below a resolution-11 cell
MONTHS_FR = ("janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc.")


@dataclass
class StepCounts:
    """Counts of a fixed set of cells over equal time steps (``geo_monitor.analysis.cubes.step_cube``).

    Attributes
    ----------
    steps
        First day of each step, ascending.
    step
        ``"month"`` or ``"week"``.
    cells
        int64 H3 cells (the whole grid, empty cells included).
    counts
        T × n counts aligned with ``steps`` and ``cells``.
    population
        Residents per cell (for rates per 1,000), or ``None``.

    """

    steps: list[date]
    step: str
    cells: np.ndarray
    counts: np.ndarray
    population: np.ndarray | None = None
    what: Label = field(default_factory=lambda: {"fr": "incidents", "en": "incidents"})

    def rates(self) -> np.ndarray:
        """Return T × n counts per 1,000 residents (NaN where fewer than 1 resident lives)."""
        if self.population is None:
            raise ValueError("rates need the population of each cell")
        pop = np.asarray(self.population, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pop >= 1, self.counts / pop * 1000.0, np.nan)

    def frames(self) -> list[dict]:
        """Return the runtime's frames: key, bilingual label, start and (exclusive) end day."""
        out = []
        for start in self.steps:
            if self.step == "month":
                end = (pd.Timestamp(start) + pd.offsets.MonthBegin(1)).date()
                label = {"fr": f"{MONTHS_FR[start.month - 1]} {start.year}", "en": start.strftime("%b %Y")}
            else:
                end = start + timedelta(days=7)
                label = {"fr": f"semaine du {start:%d/%m/%Y}", "en": f"week of {start:%d %b %Y}"}
            out.append({"key": start.isoformat(), "label": label, "start": start.isoformat(), "end": end.isoformat()})
        return out


def hex_rings(cells: np.ndarray) -> list[list[list[float]]]:
    """Return each cell's outer ring as [lat, lng] vertices (Leaflet's order), rounded."""
    polygons = hexagons.cells_to_polygons(np.asarray(cells, dtype=np.int64))
    return [[[round(y, PRECISION), round(x, PRECISION)] for x, y in p.exterior.coords[:-1]] for p in polygons]


def step_layer(cells: np.ndarray, frames: list[dict], values: np.ndarray, *, scale: Scale, name: Label,
               tooltip: list[dict], series: dict[str, list] | None = None, digits: int | None = None,
               initial: int | None = None, null_label: Label = "–", show: bool = True) -> RuntimeLayer:
    """Return the hexagon layer whose colours follow the chosen frame.

    Parameters
    ----------
    cells
        int64 cells, one polygon each.
    frames
        One dict per frame (``key``, ``label``, ``start``, ``end``): time steps or groups.
    values
        frames × cells values to colour; NaN is "not shown" (grey, dashed outline).
    scale
        The fixed scale (fit it to all frames with :func:`maps.styles.fixed_scale`).
    tooltip
        Rows ``{"label", "series", "digits"}``; series ``"values"`` or a key of ``series``.
    series
        Extra numbers for the tooltip: frames × cells lists or one list per cell.
    initial
        Frame shown first (the last one by default).

    """
    values = np.asarray(values, dtype=np.float64)
    rows = [[clean(v, digits) for v in row] for row in values]
    data = {"cells": [hexagons.cell_to_str(c) for c in cells], "rings": hex_rings(cells), "frames": frames,
            "values": rows, "series": series or {}}
    options = {"scale": scale.to_json(), "tooltip": tooltip, "initial": len(frames) - 1 if initial is None else initial,
               "fillOpacity": FILL_OPACITY, "zeroOpacity": ZERO_OPACITY, "nullLabel": null_label,
               "cellLabel": {"fr": "cellule", "en": "cell"}}
    return RuntimeLayer("stepLayer", data, options, name=label_html(name), show=show)


def scale_legend(scale: Scale, title: Label, layer: RuntimeLayer, *, zero: bool = True,
                 none: dict | None = None) -> dict:
    """Return the legend section of a fixed scale (classes, then zero and not-shown swatches)."""
    items = [{"color": c, "label": label} for c, label in zip(scale.colors, scale.labels(), strict=True)]
    if zero:
        items.insert(0, {"color": scale.zero, "label": "0"})
    if none is not None:
        items.append({"color": scale.none, "label": none, "dashed": True})
    return legend_section(title, items, layer)


def slider(layer: RuntimeLayer, title: Label) -> JsCall:
    """Return the time slider driving ``layer``."""
    return JsCall(f"gm.slider(__GM_MAP__, {layer.get_name()}, {to_js(title)});")


def frame_choice(layer: RuntimeLayer, title: Label) -> JsCall:
    """Return radio buttons choosing the frame of ``layer`` (groups rather than time)."""
    return JsCall(f"gm.frameChoice(__GM_MAP__, {layer.get_name()}, {to_js(title)});")


def counts_layer(data: StepCounts, *, measure: str = "count", show: bool = True) -> tuple[RuntimeLayer, Scale, Label]:
    """Return the stepped layer of counts or rates per 1,000 residents, its scale and title."""
    counts_row = {"label": {"fr": "nombre", "en": "count"}, "series": "counts" if measure == "rate" else "values"}
    if measure == "rate":
        values = data.rates()
        scale = fixed_scale(values, integer=False)
        tooltip = [{"label": {"fr": "pour 1 000 hab.", "en": "per 1,000 residents"}, "series": "values", "digits": 2},
                   counts_row,
                   {"label": {"fr": "habitants", "en": "residents"}, "series": "population", "digits": 0}]
        series = {"counts": data.counts.tolist(), "population": [clean(p, 0) for p in data.population]}
        digits = 3
        title = {"fr": _cap(f"{_fr(data.what)} pour 1 000 habitants"), "en": _cap(f"{_en(data.what)} per 1,000 residents")}
    elif measure == "count":
        values = data.counts
        scale = fixed_scale(values, integer=True)
        tooltip = [counts_row]
        if data.population is not None:
            tooltip.append({"label": {"fr": "habitants", "en": "residents"}, "series": "population", "digits": 0})
        series = {"population": [clean(p, 0) for p in data.population]} if data.population is not None else {}
        digits = None
        title = {"fr": _cap(f"{_fr(data.what)} par {'mois' if data.step == 'month' else 'semaine'}"),
                 "en": _cap(f"{_en(data.what)} per {data.step}")}
    else:
        raise ValueError(f"measure must be 'count' or 'rate', got {measure!r}")
    layer = step_layer(data.cells, data.frames(), values, scale=scale, name=title, tooltip=tooltip, series=series,
                       digits=digits, show=show, null_label={"fr": "pas d'habitant", "en": "no residents"})
    return layer, scale, title


def _fr(label: Label) -> str:
    return label if isinstance(label, str) else label["fr"]


def _en(label: Label) -> str:
    return label if isinstance(label, str) else label["en"]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]
