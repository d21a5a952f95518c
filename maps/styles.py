"""Colours, fixed colour scales and the legend entries that go with them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# ColorBrewer YlOrRd, 7 classes (sequential, colour-blind safe, prints in grey).
SEQUENTIAL = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
ZERO = "#f4f1ea"
SUPPRESSED = "#bdbdbd"
FILL_OPACITY = 0.78
ZERO_OPACITY = 0.35

# Gi* confidence bins -3..3, ArcGIS's hot spot colours.
GI_COLOURS = {3: "#d62f27", 2: "#ed7551", 1: "#fab984", -1: "#c0ccbe", -2: "#849eba", -3: "#4575b5"}
GI_LABELS = {
    3: {"fr": "point chaud, 99 %", "en": "hot spot, 99%"},
    2: {"fr": "point chaud, 95 %", "en": "hot spot, 95%"},
    1: {"fr": "point chaud, 90 %", "en": "hot spot, 90%"},
    -1: {"fr": "point froid, 90 %", "en": "cold spot, 90%"},
    -2: {"fr": "point froid, 95 %", "en": "cold spot, 95%"},
    -3: {"fr": "point froid, 99 %", "en": "cold spot, 99%"},
}

# Emerging hot spot patterns (geo_monitor.analysis.emerging.PATTERNS, "no pattern" is not drawn).
_HOT = ("#67000d", "#a50f15", "#de2d26", "#fb6a4a", "#fc9272", "#fdae6b", "#e6550d", "#fdd0a2")
_COLD = ("#08306b", "#08519c", "#3182bd", "#6baed6", "#9ecae1", "#9e9ac8", "#756bb1", "#c6dbef")
_KINDS = ("new", "consecutive", "intensifying", "persistent", "diminishing", "sporadic", "oscillating",
          "historical")
_KINDS_FR = ("nouveau", "consécutif", "qui s'intensifie", "persistant", "qui diminue", "sporadique",
             "oscillant", "historique")
EMERGING_COLOURS = {f"{kind} {side} spot": colours[i] for side, colours in (("hot", _HOT), ("cold", _COLD))
                    for i, kind in enumerate(_KINDS)}
EMERGING_LABELS = {f"{kind} {side} spot": {"fr": f"point {'chaud' if side == 'hot' else 'froid'} {fr}",
                                           "en": f"{kind} {side} spot"}
                   for side in ("hot", "cold") for kind, fr in zip(_KINDS, _KINDS_FR, strict=True)}

# Categorical colours for teams (ColorBrewer Dark2, then Set1).
TEAM_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666",
                "#e41a1c", "#377eb8", "#4daf4a", "#984ea3")
UNCOVERED = "#c51b8a"
WORKS_ACTIVE = {"color": "#6a3d9a", "weight": 2, "fillColor": "#6a3d9a", "fillOpacity": 0.25, "opacity": 0.9}
WORKS_INACTIVE = {"color": "#6a3d9a", "weight": 1, "fillOpacity": 0.0, "opacity": 0.3, "dashArray": "2 3"}


@dataclass(frozen=True)
class Scale:
    """A fixed classed colour scale: ``breaks`` are the classes' lower bounds (first > 0)."""

    breaks: tuple[float, ...]
    colors: tuple[str, ...]
    integer: bool
    zero: str = ZERO
    none: str = SUPPRESSED

    def to_json(self) -> dict:
        """Return the scale as the map runtime reads it."""
        return {"breaks": list(self.breaks), "colors": list(self.colors), "zero": self.zero, "none": self.none}

    def colour(self, value: float | None) -> str | None:
        """Return the colour of a value (``None`` for a value not shown), as the runtime does."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        if value <= 0:
            return self.zero
        index = int(np.searchsorted(np.asarray(self.breaks), value, side="right")) - 1
        return self.colors[max(index, 0)]

    def labels(self) -> list[str]:
        """Return one legend label per class: ``1–3``, ``4–9``… ``≥ 57`` (or decimal ranges)."""
        out = []
        for i, low in enumerate(self.breaks):
            high = self.breaks[i + 1] if i + 1 < len(self.breaks) else None
            if high is None:
                out.append(f"≥ {_number(low)}")
            elif self.integer:
                out.append(_number(low) if high - 1 <= low else f"{_number(low)}–{_number(high - 1)}")
            else:
                out.append(f"{_number(low)}–{_number(high)}")
        return out


def _number(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f") if float(value).is_integer() else f"{value:.3g}"


def _nice(value: float, integer: bool) -> float:
    if integer:
        return float(max(1, math.ceil(value)))
    digits = 1 - int(math.floor(math.log10(value)))  # two significant digits
    return round(value, digits)


def fixed_scale(values: np.ndarray, *, integer: bool = True, classes: int = len(SEQUENTIAL)) -> Scale:
    """Return a colour scale fitted once to every value of every step (so it never moves).

    Breaks are quantiles of the positive values, rounded to nice numbers and deduplicated:
    each colour holds about as many cell-steps as the others, and 0 has its own colour.
    """
    data = np.asarray(values, dtype=np.float64)
    positive = data[np.isfinite(data) & (data > 0)]
    if positive.size == 0:
        breaks = [1.0]
    else:
        quantiles = np.quantile(positive, np.linspace(0, 1, classes + 1)[:-1])
        breaks = sorted({_nice(q, integer) for q in quantiles if q > 0})
        if not integer:
            breaks[0] = min(breaks[0], float(positive.min()))
    palette = _spread(len(breaks))
    return Scale(tuple(breaks), palette, integer)


def _spread(n: int) -> tuple[str, ...]:
    """Pick ``n`` colours spread over the sequential palette (all of it when n = 7)."""
    if n >= len(SEQUENTIAL):
        return SEQUENTIAL[:n] if n == len(SEQUENTIAL) else SEQUENTIAL + (SEQUENTIAL[-1],) * (n - len(SEQUENTIAL))
    index = np.round(np.linspace(0, len(SEQUENTIAL) - 1, n)).astype(int)
    return tuple(SEQUENTIAL[i] for i in index)


def team_colours(teams: list[str]) -> dict[str, str]:
    """Return a stable colour per team name (sorted, cycling when there are many)."""
    return {team: TEAM_COLOURS[i % len(TEAM_COLOURS)] for i, team in enumerate(sorted(set(teams)))}
