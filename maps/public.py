"""The public map: released monthly counts only, in French with an English switch.

It is built from the release's hexagon counts, never from events: the page holds hexagon
vertices (recomputed from the H3 ids), arrondissement boundaries and numbers, nothing else.
Suppressed cells are drawn as "few or no reports": a cell shows a number only when its
protected count reaches the release's threshold tau (>= k), so every cell under k is grey.
"""

from __future__ import annotations

import html
from datetime import date

import folium
import geopandas as gpd
import numpy as np
import psycopg

from geo_monitor.settings import Settings, get_settings
from maps import layers
from maps.data import arrondissements, last_release_month
from maps.elements import NO_BASEMAP, Basemap, JsCall, basemap_setting, finish, new_map, to_js
from maps.hexlayer import MONTHS_FR, frame_choice, scale_legend, step_layer
from maps.planner import title_panel
from maps.styles import fixed_scale

GROUPS = {
    "drugs": {"fr": "Drogues : consommation, matériel, trafic", "en": "Drugs: use, litter, dealing"},
    "safety": {"fr": "Sécurité et tranquillité", "en": "Safety and peace"},
    "public_space": {"fr": "Espace public (DansMaRue)", "en": "Public space (DansMaRue)"},
    "incident": {"fr": "Incidents", "en": "Incidents"},
}


def _month_label(month: str) -> dict:
    try:
        day = date.fromisoformat(month[:7] + "-01")
    except ValueError:
        return {"fr": month, "en": month}
    return {"fr": f"{MONTHS_FR[day.month - 1]} {day.year}", "en": day.strftime("%B %Y")}


def protection_note(metadata: dict) -> str:
    """Return the plain-language note on how the numbers are protected (both languages, HTML)."""
    k = int(metadata.get("k", 11))
    tau = int(metadata.get("tau", k))
    epsilon = metadata.get("epsilon")
    eps = f" (ε = {float(epsilon):g})" if epsilon is not None else ""
    fr = ("<p>Chaque hexagone (environ 10 ha) compte les signalements d’un mois entier : aucun lieu précis, aucune "
          "date ni aucune heure n’est publié.</p>"
          f"<p>Un bruit aléatoire calibré{eps} est ajouté à chaque nombre (confidentialité différentielle) : un "
          "nombre peut s’écarter de quelques unités du vrai compte, ce qui empêche de reconnaître une personne.</p>"
          f"<p>Un hexagone n’affiche un nombre que si son compte protégé atteint {tau} : un hexagone de moins de "
          f"{k} signalements n’en affiche donc jamais, et d’autres, un peu plus fournis, restent aussi grisés "
          "« peu ou pas de signalements ». Quelques hexagones sont masqués pour qu’aucun nombre caché ne puisse "
          "être retrouvé par soustraction.</p>"
          "<p>Les actions des équipes médico-sociales ne sont publiées qu’à l’échelle de l’arrondissement.</p>")
    en = ("<p>Each hexagon (about 10 ha) counts the reports of one whole month: no exact place, date or time is "
          "published.</p>"
          f"<p>Calibrated random noise{eps} is added to every number (differential privacy): a number may differ "
          "from the true count by a few units, so that nobody can be singled out.</p>"
          f"<p>A hexagon shows a number only when its protected count reaches {tau}: a hexagon with fewer than {k} "
          "reports never shows one, and some with a few more stay grey too (“few or no reports”). A few hexagons "
          "are hidden so that no hidden number can be recovered by subtraction.</p>"
          "<p>Outreach work by the medico-social teams is published only at arrondissement level.</p>")
    return (f'<details open><summary><span class="gm-fr">Comment les chiffres sont protégés</span>'
            f'<span class="gm-en">How the numbers are protected</span></summary>'
            f'<div class="gm-fr">{fr}</div><div class="gm-en">{en}</div></details>')


def _cell(text: str) -> int:
    # Not hexagons.str_to_cell: with h3 4.x it refuses every cell (is_valid_cell wants the string).
    try:
        return int(text, 16)
    except (TypeError, ValueError):
        raise ValueError(f"release feature with h3 {text!r}: not an H3 cell id") from None


def release_frames(release: dict) -> tuple[np.ndarray, list[dict], np.ndarray]:
    """Return (cells, one frame per group, groups × cells values with NaN where suppressed)."""
    features = release.get("features", [])
    groups = list(dict.fromkeys(f["properties"]["group"] for f in features))
    cells = np.unique(np.array([_cell(f["properties"]["h3"]) for f in features], dtype=np.int64))
    index = {int(c): i for i, c in enumerate(cells)}
    values = np.full((len(groups), len(cells)), np.nan)
    for feature in features:
        p = feature["properties"]
        if not p.get("suppressed") and p.get("value") is not None:
            values[groups.index(p["group"]), index[_cell(p["h3"])]] = float(p["value"])
    frames = [{"key": g, "label": GROUPS.get(g, {"fr": g, "en": g}), "start": None, "end": None} for g in groups]
    return cells, frames, values


def public_map(release: dict | None, *, boundaries: gpd.GeoDataFrame | None = None,
               basemap: Basemap | None = NO_BASEMAP, language: str = "fr") -> folium.Map:
    """Return the public map of one release.

    Parameters
    ----------
    release
        The release as GeoJSON (``get_release(conn, month).to_geojson()``): features with
        properties ``h3``, ``group``, ``value`` (``None`` when suppressed) and ``suppressed``,
        and ``metadata`` (``month``, ``k``, ``epsilon``…). Geometry is not read: hexagons are
        redrawn from their H3 ids. ``None``: a page saying nothing is published yet.
    boundaries
        Arrondissement boundaries (the only reference layer of the public map).
    basemap
        The background tiles; none by default (no third-party server sees a visitor).
    language
        ``"fr"`` or ``"en"`` first; a button switches.

    """
    m = new_map("Paris nord-est : signalements publiés / published reports")
    legend: list[dict] = []
    fit = None
    if release is not None and release.get("features"):
        metadata = release.get("metadata") or release.get("properties") or {}
        cells, frames, values = release_frames(release)
        scale = fixed_scale(values, integer=True)
        fewer = {"fr": "peu ou pas de signalements (non affiché)", "en": "few or no reports (not shown)"}
        layer = step_layer(cells, frames, values, scale=scale, initial=0, null_label=fewer,
                           name={"fr": "Signalements publiés", "en": "Published reports"},
                           tooltip=[{"label": {"fr": "signalements (bruités)", "en": "reports (noisy)"},
                                     "series": "values"}])
        m.add_child(layer)
        month = _month_label(str(metadata.get("month", "")))
        legend.append(scale_legend(scale, {"fr": f"Signalements, {month['fr']}", "en": f"Reports, {month['en']}"},
                                   layer, none=fewer))
        m.add_child(title_panel({"fr": f"Signalements dans le nord-est parisien, {month['fr']}",
                                 "en": f"Reports in north-east Paris, {month['en']}"}, []))
        m.add_child(frame_choice(layer, {"fr": "Type de signalement", "en": "Kind of report"}))
        m.add_child(JsCall(f"gm.panel(__GM_MAP__, 'topright', 'gm-note', {to_js(protection_note(metadata))});"))
        fit = layer
    else:
        m.add_child(title_panel({"fr": "Signalements dans le nord-est parisien", "en": "Reports in north-east Paris"},
                                [{"fr": "Aucune publication pour l’instant.", "en": "Nothing is published yet."}]))
    if boundaries is not None:
        arrondissements = layers.boundaries(boundaries, {"fr": "Arrondissements", "en": "Arrondissements"}, weight=2.5)
        m.add_child(arrondissements)
        fit = fit or arrondissements
    return finish(m, fit=fit, legend=legend, basemap=basemap, language=language)


def build_public(conn: psycopg.Connection, *, month: date | None = None,
                 settings: Settings | None = None) -> folium.Map:
    """Return the public map of ``month``'s release (the latest by default; a notice when none).

    The background is the ``public_basemap`` setting (none by default).
    """
    basemap = basemap_setting((settings or get_settings()).public_basemap)
    month = month or last_release_month(conn)
    boundaries = arrondissements(conn)
    if month is None:
        return public_map(None, boundaries=boundaries, basemap=basemap)
    from geo_monitor.privacy.releases import get_release  # the release module is only needed here

    m = public_map(get_release(conn, month).to_geojson(), boundaries=boundaries, basemap=basemap)
    m.get_root().title = html.escape(f"Paris nord-est — signalements publiés, {month:%Y-%m}")
    return m
