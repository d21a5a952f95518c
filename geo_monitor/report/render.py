"""Turn the yearly report's data into one self-contained HTML page (and a PDF when WeasyPrint is there)."""

from __future__ import annotations

import math
from datetime import date
from importlib import resources
from pathlib import Path

import jinja2

from geo_monitor.plan.figures import GROUPS, Figure
from geo_monitor.report import svg
from geo_monitor.report.build import ReportData

WORDS = {
    "fr": {"title": "Plan crack 2019-2021 : évaluation de l'année", "internal": "Édition pour les partenaires du plan",
           "public": "Édition publique", "year": "Année", "previous": "Année précédente", "change": "Évolution",
           "target": "Cible", "progress": "Progression", "definition": "Définition", "source": "Source",
           "interval": "intervalle à 95 %", "none": "non disponible", "actions": "Actions du plan",
           "places": "Places d'hébergement et de repos", "map_incidents": "Incidents par hexagone dans l'année "
           "(contour noir : point chaud Gi*)", "map_released": "Signalements publiés, somme des douze mois "
           "(gris : masqué au moins un mois)", "generated": "Produit le", "contents": "Sommaire",
           "status": {"planned": "prévue", "started": "engagée", "done": "réalisée", "dropped": "abandonnée"},
           "budget": "Budget prévu", "lead": "Pilote", "objective": "Objectif", "operator": "Opérateur",
           "arrondissement": "Arrondissement", "opens": "Ouverture", "closes": "Fermeture", "type": "Type",
           "public_note": "Cette édition ne contient que des nombres déjà publiés dans les publications mensuelles "
           "protégées (bruit calibré, petits nombres masqués) et les informations publiques du plan.",
           "internal_note": "Document interne : chiffres calculés sur les événements anonymisés. Ne pas diffuser.",
           "times": "Heures sans fuseau lues à l'heure de Paris.",
           "groups": {"accompany": "1. Accompagner les usagers", "accommodation": "2. Hébergement et repos",
                      "public_space": "3. Espace public", "knowledge": "4. Connaissance et qualité des données",
                      "execution": "Exécution du plan"}},
    "en": {"title": "Crack plan 2019-2021: the year's evaluation", "internal": "Edition for the plan's partners",
           "public": "Public edition", "year": "Year", "previous": "Previous year", "change": "Change",
           "target": "Target", "progress": "Progress", "definition": "Definition", "source": "Source",
           "interval": "95 % interval", "none": "not available", "actions": "The plan's actions",
           "places": "Accommodation and rest places", "map_incidents": "Incidents per hexagon in the year "
           "(black outline: Gi* hot spot)", "map_released": "Published reports, sum of the twelve months "
           "(grey: hidden in at least one month)", "generated": "Generated on", "contents": "Contents",
           "status": {"planned": "planned", "started": "started", "done": "done", "dropped": "dropped"},
           "budget": "Planned budget", "lead": "Lead", "objective": "Objective", "operator": "Operator",
           "arrondissement": "Arrondissement", "opens": "Opens", "closes": "Closes", "type": "Type",
           "public_note": "This edition holds only numbers already published by the protected monthly releases "
           "(calibrated noise, small numbers hidden) and the plan's public information.",
           "internal_note": "Internal document: figures computed on the anonymised events. Do not circulate.",
           "times": "Times without an offset are read as Paris time.",
           "groups": {"accompany": "1. Accompany users", "accommodation": "2. Accommodation and rest",
                      "public_space": "3. Public space", "knowledge": "4. Knowledge and data quality",
                      "execution": "Execution of the plan"}},
}


def fmt(value: object, unit: str = "", lang: str = "fr") -> str:
    """Format a number for the page (thin spaces for thousands in French, shares as percentages)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return WORDS[lang]["none"]
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return {True: "oui", False: "non"}[value] if lang == "fr" else {True: "yes", False: "no"}[value]
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple):
        return "–".join(fmt(v, unit, lang) for v in value)
    if unit == "share":
        text = f"{value:.1%}"
    elif unit in ("ratio", "tau", "days") or (isinstance(value, float) and abs(value) < 10 and value != int(value)):
        text = f"{value:,.2f}"
    else:
        text = f"{value:,.0f}"
    if lang == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text + (" €" if unit == "euros" else "")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FunctionLoader(
        lambda name: resources.files("geo_monitor.report").joinpath("templates", name).read_text(encoding="utf-8")),
        autoescape=jinja2.select_autoescape(default=True), trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    return env


def render_html(data: ReportData, *, lang: str = "fr", generated: date | None = None) -> str:
    """Return the report as one HTML page: styles and charts inline, nothing fetched from the internet."""
    if lang not in WORDS:
        raise ValueError(f"unknown language {lang!r}: fr or en")
    side = 0 if lang == "fr" else 1
    charts: dict[str, str] = {}
    for figure in data.figures:
        if figure.monthly is not None:
            charts[figure.key] = svg.monthly_bars(figure.monthly, figure.monthly_previous, year=data.year, lang=lang)
    maps = {name: svg.hex_map(m["polygons"], m["values"], data.outlines, highlight=m["highlight"], title=name)
            for name, m in data.maps.items()}
    groups = [(g, [f for f in data.figures if f.group == g]) for g in GROUPS]
    return _environment().get_template("report.html.j2").render(
        data=data, lang=lang, side=side, w=WORDS[lang], groups=groups, charts=charts, maps=maps,
        progress_bar=svg.progress_bar, generated=generated or date.today(), Figure=Figure)


def write_pdf(html: str, path: Path) -> bool:
    """Write the PDF twin with WeasyPrint when it is installed; return False when it is not."""
    try:
        import weasyprint
    except (ImportError, OSError):
        return False
    weasyprint.HTML(string=html).write_pdf(str(path))
    return True
