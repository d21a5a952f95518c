"""The coordination map: zones with their teams and weekly schedules, recent incidents, gaps.

For police and outreach coordinators. It shows incidents only (no outreach below the
aggregate level): "uncovered" hot spots are Gi* incident hot spots outside every zone.
"""

from __future__ import annotations

import html
from datetime import date, timedelta

import folium
import geopandas as gpd
import numpy as np
import psycopg
import shapely

from geo_monitor import hexagons
from geo_monitor.analysis.counts import category_ids, check_resolution
from geo_monitor.analysis.cubes import step_cube
from geo_monitor.analysis.hotspots import hotspots
from geo_monitor.calendar import Window
from geo_monitor.errors import NotFoundError
from geo_monitor.privacy.tokens import Principal
from geo_monitor.settings import Settings, get_settings
from maps.data import has_zones_table, last_event_day, reference_layers
from maps.elements import (
    DEFAULT_BASEMAP,
    Basemap,
    JsCall,
    RuntimeLayer,
    finish,
    legend_section,
    new_map,
    to_js,
)
from maps.hexlayer import StepCounts, counts_layer, scale_legend, slider
from maps.layers import ReferenceLayers, geojson
from maps.planner import add_reference, title_panel
from maps.styles import UNCOVERED, team_colours

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAYS_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")


def _day_index(day: object) -> int:
    """Return 0 (Monday) to 6 for an index, an English or French day name or its first 3 letters."""
    if isinstance(day, int | np.integer) and 0 <= int(day) <= 6:
        return int(day)
    text = str(day).strip().lower()
    for names in (DAYS, DAYS_FR):
        for i, name in enumerate(names):
            if text in (name, name[:3]):
                return i
    raise ValueError(f"unknown day {day!r}: use 0-6 (Monday = 0) or a day name")


def _bi(fr: str, en: str) -> str:
    return f'<span class="gm-fr">{fr}</span><span class="gm-en">{en}</span>'


def schedule_table(schedule: list[dict] | None) -> str:
    """Return a zone's weekly schedule as an HTML table (day, hours, team), Monday first."""
    if not schedule:
        return f'<p class="gm-muted">{_bi("pas de créneau", "no slot")}</p>'
    rows = sorted(schedule, key=lambda s: (_day_index(s["day"]), str(s.get("start", ""))))
    body = "".join(
        f"<tr><td>{_bi(DAYS_FR[_day_index(s['day'])], DAYS[_day_index(s['day'])].capitalize())}</td>"
        f"<td>{html.escape(str(s.get('start', '')))}–{html.escape(str(s.get('end', '')))}</td>"
        f"<td>{html.escape(str(s.get('team', '')))}</td></tr>" for s in rows)
    head = f"<tr><th>{_bi('jour', 'day')}</th><th>{_bi('heures', 'hours')}</th><th>{_bi('équipe', 'team')}</th></tr>"
    return f"<table>{head}{body}</table>"


def _partners(value: object) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return ", ".join(map(str, value)) if isinstance(value, list | tuple | np.ndarray) else str(value)


def zones_layer(zones: gpd.GeoDataFrame) -> tuple[RuntimeLayer, dict, str]:
    """Return the zones coloured by owner team, their legend section and the schedules panel."""
    colours = team_colours([str(t) for t in zones["owner_team"]])
    frame = zones.copy()
    # Outlines only: a tint would change the colours that stand for the counts underneath,
    # and a filled polygon would take the hexagons' tooltips.
    frame["_style"] = [{"color": colours[str(t)], "weight": 3.5, "opacity": 0.95, "fill": False}
                       for t in frame["owner_team"]]
    tips, panel = [], [f"<h2>{_bi('Zones et plannings', 'Zones and schedules')}</h2>"]
    for _, zone in frame.iterrows():
        who = (f"<b>{html.escape(str(zone['name']))}</b><br>{_bi('responsable', 'owner')} : "
               f"{html.escape(str(zone['owner_team']))}")
        partners = _partners(zone.get("partner_teams"))
        if partners:
            who += f"<br>{_bi('partenaires', 'partners')} : {html.escape(partners)}"
        table = schedule_table(zone.get("schedule"))
        tips.append(who + table)
        swatch = f'<span class="gm-swatch" style="border:2px solid {colours[str(zone["owner_team"])]}"></span>'
        panel.append(f"<details><summary>{swatch}{html.escape(str(zone['name']))}</summary>{who}{table}</details>")
    frame["_tip"] = tips
    data = geojson(frame, ["_style", "_tip"])
    layer = RuntimeLayer("featureLayer", data, {"pane": "gm-zones", "zIndex": 395},
                         name=_bi("Zones de coordination", "Coordination zones"))
    items = [{"color": "transparent", "border": c, "label": team} for team, c in colours.items()]
    return layer, legend_section({"fr": "Zones (équipe responsable)", "en": "Zones (owner team)"}, items, layer), \
        "".join(panel)


def uncovered_hotspots(hot: gpd.GeoDataFrame, zones: gpd.GeoDataFrame | None, *, min_bin: int = 2) -> gpd.GeoDataFrame:
    """Return Gi* hot spots (``gi_bin >= min_bin``, 95 % by default) whose centre lies in no zone."""
    spots = hot[hot["gi_bin"] >= min_bin]
    if zones is None or zones.empty or spots.empty:
        return spots.copy()
    lat, lng = hexagons.cells_to_latlng(spots["cell"].to_numpy())
    covered = shapely.contains_xy(shapely.union_all(zones.geometry.to_numpy()), lng, lat)
    return spots[~covered].copy()


def uncovered_layer(uncovered: gpd.GeoDataFrame) -> tuple[RuntimeLayer, dict]:
    """Return the uncovered hot spots outlined in magenta, and their legend section."""
    frame = uncovered.copy()
    frame["_style"] = [{"color": UNCOVERED, "weight": 3, "fillOpacity": 0.0}] * len(frame)
    frame["_tip"] = [f"<b>{_bi('Point chaud hors zone', 'Hot spot outside every zone')}</b><br>"
                     f"{html.escape(str(row.get('label', '')))}<br>{_bi('incidents', 'incidents')} : "
                     f"{int(row.get('count', 0))}" for _, row in frame.iterrows()]
    layer = RuntimeLayer("featureLayer", geojson(frame, ["_style", "_tip"], simplify=None),
                         {"pane": "gm-uncovered", "zIndex": 450},
                         name=_bi("Points chauds non couverts", "Uncovered hot spots"))
    section = legend_section({"fr": "À couvrir", "en": "To cover"}, [
        {"color": "transparent", "border": UNCOVERED,
         "label": {"fr": "point chaud (95 %) hors de toute zone", "en": "hot spot (95%) outside every zone"}}], layer)
    return layer, section


def coordination_map(zones: gpd.GeoDataFrame | None, hexes: StepCounts, stations: gpd.GeoDataFrame | None,
                     works: gpd.GeoDataFrame | None, uncovered: gpd.GeoDataFrame | None, *,
                     boundaries: gpd.GeoDataFrame | None = None, lines: gpd.GeoDataFrame | None = None,
                     basemap: Basemap | None = DEFAULT_BASEMAP) -> folium.Map:
    """Return the coordination map.

    Parameters
    ----------
    zones
        Coordination zones (polygons) with ``name``, ``owner_team``, ``partner_teams`` (list)
        and ``schedule`` (list of ``{day, start, end, team}``); ``None`` or empty: the map
        says no zone is defined yet.
    hexes
        Incident counts per week of the last weeks (a slider moves between them).
    stations, works, boundaries, lines
        Reference layers (works are bold while active in the week shown).
    uncovered
        Hot spots to highlight (see :func:`uncovered_hotspots`).

    """
    m = new_map("geo_monitor — carte de coordination / coordination map")
    layer, scale, title = counts_layer(hexes, measure="count")
    m.add_child(layer)
    legend = [scale_legend(scale, title, layer)]
    panel = f'<p>{_bi("Aucune zone de coordination n’est encore définie.", "No coordination zone is defined yet.")}</p>'
    if zones is not None and not zones.empty:
        zone_layer, section, panel = zones_layer(zones)
        m.add_child(zone_layer)
        legend.append(section)
    if uncovered is not None:
        spots, section = uncovered_layer(uncovered)
        m.add_child(spots)
        legend.append(section)
    fit = add_reference(m, ReferenceLayers(arrondissements=boundaries, stations=stations, lines=lines, works=works),
                        legend, quartiers=False)
    m.add_child(slider(layer, {"fr": "Semaine", "en": "Week"}))
    m.add_child(title_panel({"fr": "Coordination : qui couvre quoi, où aller", "en": "Coordination: who covers what, where to go"},
                            [{"fr": f"Incidents des {len(hexes.steps)} dernières semaines.",
                              "en": f"Incidents of the last {len(hexes.steps)} weeks."}]))
    m.add_child(JsCall(f"gm.panel(__GM_MAP__, 'topleft', 'gm-zones', {to_js(panel)});"))
    return finish(m, fit=fit or layer, legend=legend, basemap=basemap, language="fr")


def stored_zones(conn: psycopg.Connection, viewer: Principal | str | None = None) -> gpd.GeoDataFrame | None:
    """Return the zones ``viewer`` may see, or ``None`` when the store has no zones table yet."""
    if not has_zones_table(conn):
        return None
    from geo_monitor.zones.edit import zones_frame  # only the coordination map needs zones

    return zones_frame(conn, viewer)


def build_coordination(conn: psycopg.Connection, *, weeks: int = 4, end: date | None = None, resolution: int = 9,
                       zones: gpd.GeoDataFrame | None = None, viewer: Principal | str | None = None,
                       settings: Settings | None = None) -> folium.Map:
    """Return the coordination map of the last ``weeks`` whole weeks (Monday to Sunday) of incidents.

    ``end`` (exclusive, a Monday) defaults to the Monday after the latest incident. ``zones``
    defaults to the stored zones ``viewer`` may see (``geo_monitor.zones.edit.zones_frame``: a
    Principal, a team name, or None for every zone); pass an empty frame for none.
    """
    settings = settings or get_settings()
    if zones is None:
        zones = stored_zones(conn, viewer)
    check_resolution(resolution, settings)
    if end is None:
        last = last_event_day(conn, ["incident"])
        if last is None:
            raise NotFoundError("no incident in the store: ingest data first (geo-monitor ingest FILE, or demo)")
        end = last + timedelta(days=7 - last.weekday())
    start = end - timedelta(weeks=weeks)
    steps, grid, cube = step_cube(conn, category_ids(conn, ["incident"]), Window.of(start, end),
                                           resolution, "week")
    hexes = StepCounts(steps, "week", grid, cube)
    hot = hotspots(conn, start=start, end=end, resolution=resolution, kinds=["incident"], settings=settings)
    reference = reference_layers(conn, start=start, end=end)
    m = coordination_map(zones, hexes, reference.stations, reference.works, uncovered_hotspots(hot, zones),
                         boundaries=reference.arrondissements, lines=reference.lines)
    m.get_root().title = html.escape(f"geo_monitor — coordination map, weeks {start} to {end - timedelta(days=1)}")
    return m
