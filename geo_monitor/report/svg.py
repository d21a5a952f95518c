"""Charts and static maps as inline SVG: nothing to load, nothing to install, text that prints sharply."""

from __future__ import annotations

import math
from html import escape

import shapely

YEAR_COLOUR, PREVIOUS_COLOUR, TARGET_COLOUR = "#1f5f8b", "#b8c7d3", "#c0392b"
RAMP = ("#fff5eb", "#fdd0a2", "#fdae6b", "#fd8d3c", "#e6550d", "#a63603")
MONTHS = {"fr": "JFMAMJJASOND", "en": "JFMAMJJASOND"}


def _number(value: float) -> str:
    return f"{value:,.0f}".replace(",", "\u202f") if abs(value) >= 10 or value == int(value) else f"{value:.2f}"


def monthly_bars(current: list[float], previous: list[float] | None, *, year: int, lang: str = "fr",
                 width: int = 560, height: int = 150) -> str:
    """Draw the twelve months of the year as bars, the previous year's months as a grey bar behind each."""
    values = [v for v in current + (previous or []) if v is not None]
    top = max(values + [1])
    left, bottom, plot_h = 44, 20, height - 34
    step = (width - left - 8) / 12
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{year}">',
             f'<text x="{left - 6}" y="14" font-size="10" text-anchor="end">{_number(top)}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" stroke="#555"/>']
    for i in range(12):
        x = left + i * step
        if previous is not None and previous[i]:
            h = previous[i] / top * plot_h
            parts.append(f'<rect x="{x + 2:.1f}" y="{height - bottom - h:.1f}" width="{step - 4:.1f}" '
                         f'height="{h:.1f}" fill="{PREVIOUS_COLOUR}"><title>{year - 1}: {_number(previous[i])}</title></rect>')
        h = (current[i] or 0) / top * plot_h
        parts.append(f'<rect x="{x + step * 0.3:.1f}" y="{height - bottom - h:.1f}" width="{step * 0.4:.1f}" '
                     f'height="{h:.1f}" fill="{YEAR_COLOUR}"><title>{year}: {_number(current[i] or 0)}</title></rect>')
        parts.append(f'<text x="{x + step / 2:.1f}" y="{height - 6}" font-size="10" text-anchor="middle">'
                     f'{MONTHS[lang][i]}</text>')
    legend = f"■ {year}" + (f"  ■ {year - 1}" if previous is not None else "")
    parts.append(f'<text x="{width - 6}" y="12" font-size="10" text-anchor="end" fill="{YEAR_COLOUR}">{legend}</text>')
    parts.append("</svg>")
    return "".join(parts)


def progress_bar(value: float | None, target: float | None, *, width: int = 220) -> str:
    """Draw the share of the target reached as a bar (capped at its end; the number says more)."""
    if value is None or not target:
        return ""
    share = max(0.0, min(value / target, 1.0))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} 14" width="{width}" height="14" role="img" '
            f'aria-label="{value / target:.0%}"><rect width="{width}" height="14" fill="#eee"/>'
            f'<rect width="{share * width:.1f}" height="14" fill="{YEAR_COLOUR}"/>'
            f'<line x1="{width - 1}" y1="0" x2="{width - 1}" y2="14" stroke="{TARGET_COLOUR}" stroke-width="2"/></svg>')


def hex_map(polygons: list[shapely.Geometry], values: list[float | None], outlines: list[shapely.Geometry], *,
            highlight: list[bool] | None = None, title: str = "", width: int = 520) -> str:
    """Draw hexagons coloured by value (a grey hatch where no value), with boundary outlines, as SVG.

    Coordinates are lon/lat projected equirectangularly at the map's mean latitude (accurate
    to well under a pixel over four arrondissements).
    """
    shapes = list(polygons) + list(outlines)
    if not shapes:
        return ""
    minx, miny, maxx, maxy = shapely.total_bounds(shapely.GeometryCollection(shapes))
    kx = math.cos(math.radians((miny + maxy) / 2))
    scale = (width - 10) / max((maxx - minx) * kx, 1e-9)
    height = int((maxy - miny) * scale) + 10

    def path(geometry: shapely.Geometry) -> str:
        rings = []
        for poly in getattr(geometry, "geoms", [geometry]):
            for ring in (poly.exterior, *poly.interiors):
                pts = " ".join(f"{(x - minx) * kx * scale + 5:.1f},{(maxy - y) * scale + 5:.1f}" for x, y in ring.coords)
                rings.append(f"M{pts}Z")
        return "".join(rings)

    finite = [v for v in values if v is not None and v > 0]
    top = max(finite) if finite else 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="{escape(title)}">']
    for i, (poly, value) in enumerate(zip(polygons, values, strict=True)):
        if value is None:
            fill = "#d9d9d9"
        else:
            fill = RAMP[min(int(math.sqrt(max(value, 0) / top) * (len(RAMP) - 1) + 0.5), len(RAMP) - 1)]
        stroke = ' stroke="#000" stroke-width="1.6"' if highlight and highlight[i] else ' stroke="#fff" stroke-width="0.3"'
        label = "—" if value is None else _number(value)
        parts.append(f'<path d="{path(poly)}" fill="{fill}"{stroke}><title>{label}</title></path>')
    for outline in outlines:
        parts.append(f'<path d="{path(outline)}" fill="none" stroke="#333" stroke-width="1"/>')
    parts.append("</svg>")
    return "".join(parts)
