"""Folium elements calling the map runtime (templates/gm.js): layers, controls, basemap."""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import branca.element
import folium
from folium.map import Layer
from jinja2 import Template

from geo_monitor.errors import ConfigurationError

Label = str | dict[str, str]  # plain text, or {"fr": ..., "en": ...}


def label_html(label: Label) -> str:
    """Return a label as HTML: both languages in spans, the stylesheet shows the current one."""
    if isinstance(label, str):
        return html.escape(label)
    return f'<span class="gm-fr">{html.escape(label["fr"])}</span><span class="gm-en">{html.escape(label["en"])}</span>'


def to_js(value: Any) -> str:
    """Serialise to compact JSON that is safe inside a <script> (no ``</``, no NaN)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).replace("</", "<\\/")


def clean(value: float | None, digits: int | None = None) -> float | int | None:
    """Return a JSON-ready number: ``None`` for NaN, rounded to ``digits`` when given."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits) if digits is not None else int(value)


class Raw(branca.element.Element):
    """Literal HTML, never read as a Jinja template (scripts may contain ``{{``)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.html = html

    def render(self, **kwargs: Any) -> str:
        """Return the HTML unchanged."""
        return self.html


def _runtime() -> str:
    files = resources.files("maps") / "templates"
    return f"<style>{(files / 'gm.css').read_text()}</style><script>{(files / 'gm.js').read_text()}</script>"


def new_map(title: str) -> folium.Map:
    """Return an empty map (no tiles, no CDN links once rendered) carrying the runtime."""
    m = folium.Map(location=None, zoom_start=13, tiles=None, control_scale=True, zoom_snap=0.25)
    figure = m.get_root()
    figure.title = title
    figure.header.add_child(Raw(_runtime()), name="gm_runtime")
    return m


class JsCall(branca.element.MacroElement):
    """One statement of the runtime, run after the map exists; ``__GM_MAP__`` is the map variable."""

    _template = Template("{% macro script(this, kwargs) %}{{ this.code.replace('__GM_MAP__', this._parent.get_name()) }}"
                         "{% endmacro %}")

    def __init__(self, code: str) -> None:
        super().__init__()
        self._name = "JsCall"
        self.code = code


class RuntimeLayer(Layer):
    """A layer built by a runtime function: ``var NAME = gm.FUNCTION(map, ARGS...)``."""

    _template = Template("{% macro script(this, kwargs) %}var {{ this.get_name() }} = gm.{{ this.function }}("
                         "{{ this._parent.get_name() }}, {{ this.arguments }});{% endmacro %}")

    def __init__(self, function: str, *arguments: Any, name: str, show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "RuntimeLayer"
        self.function = function
        self.arguments = ", ".join(to_js(a) for a in arguments)


@dataclass(frozen=True)
class Basemap:
    """Online tiles used when their server answers a probe (CARTO Positron by default); no url: none at all."""

    url: str | None = "https://{s}.basemaps.cartocdn.com/light_all/{z}/{x}/{y}.png"
    probe: str | None = "https://a.basemaps.cartocdn.com/light_all/12/2074/1408.png"  # a tile over Paris
    attribution: str = ('&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                        'contributors &copy; <a href="https://carto.com/attributions">CARTO</a>')
    subdomains: str = "abcd"
    max_zoom: int = 19
    timeout_ms: int = 4000

    def options(self) -> dict:
        """Return the runtime's options for :func:`gm.basemap`."""
        return {"url": self.url, "probe": self.probe, "attribution": self.attribution,
                "subdomains": self.subdomains, "maxZoom": self.max_zoom, "timeout": self.timeout_ms,
                "name": {"fr": "Fond de carte", "en": "Basemap"},
                "offline": {"fr": "fond de carte indisponible : couches de référence seules",
                            "en": "basemap unavailable: reference layers only"},
                "none": {"fr": "sans fond de carte : aucun serveur tiers", "en": "no basemap: no third-party server"}}


    def describe(self) -> dict[str, str]:
        """Return, in French and English, what the visitor's browser asks of which server for the background."""
        if not self.url:
            return {"fr": "Fond de carte : aucun. La carte ne montre que les limites des arrondissements ; votre "
                          "navigateur ne contacte aucun serveur tiers.",
                    "en": "Basemap: none. The map shows the arrondissement boundaries only; your browser contacts "
                          "no third-party server."}
        host = urlsplit(self.url.replace("{s}", "a")).hostname or self.url
        return {"fr": f"Fond de carte : tuiles de {host}, que votre navigateur demande à ce serveur (il voit donc "
                      "votre adresse IP). Sans réponse, la carte montre les limites des arrondissements seules.",
                "en": f"Basemap: tiles from {host}, which your browser requests from that server (it therefore "
                      "sees your IP address). Without an answer, the map shows the arrondissement boundaries only."}


DEFAULT_BASEMAP = Basemap()
NO_BASEMAP = Basemap(url=None, probe=None, attribution="")


def basemap_setting(value: str) -> Basemap:
    """Return the basemap of a setting: ``none``, ``carto`` or a tile URL template with {z}/{x}/{y}."""
    if value.strip().lower() in ("", "none"):
        return NO_BASEMAP
    if value.strip().lower() == "carto":
        return DEFAULT_BASEMAP
    if not all(part in value for part in ("{z}", "{x}", "{y}")) or not value.startswith(("https://", "http://")):
        raise ConfigurationError(f"public basemap {value[:80]!r}: give none, carto or an http(s) tile URL with "
                                 "{z}, {x} and {y}")
    probe = value.replace("{s}", "a").replace("{z}", "12").replace("{x}", "2074").replace("{y}", "1408")
    return Basemap(url=value, probe=probe, attribution="", subdomains="abc")


def legend_section(title: Label, items: list[dict], layer: Layer | None = None) -> dict:
    """Return one legend section, shown only while ``layer`` (if any) is on the map."""
    return {"title": title, "items": items, "layer": layer.get_name() if layer is not None else None}


def finish(m: folium.Map, *, fit: Layer | None, legend: list[dict], basemap: Basemap | None,
           language: str | None = None, collapsed: bool = False) -> folium.Map:
    """Add the legend, the layer control, the basemap probe, the language switch and the view."""
    if legend:
        m.add_child(JsCall(f"gm.legend(__GM_MAP__, {to_js(legend)});"))
    control = folium.LayerControl(position="topright", collapsed=collapsed)
    m.add_child(control)
    if language:
        m.add_child(JsCall(f"gm.languages(__GM_MAP__, {to_js(language)});"))
    if basemap is not None:
        # The control itself, not its name: folium declares it with `let` (not a window property).
        m.add_child(JsCall(f"gm.basemap(__GM_MAP__, {to_js(basemap.options())}, {control.get_name()});"))
    if fit is not None:
        m.add_child(JsCall(f"gm.fit(__GM_MAP__, {to_js(fit.get_name())});"))
    m.add_child(JsCall("gm.ready();"))
    return m
