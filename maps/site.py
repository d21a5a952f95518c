"""The public side as static files any web server or CDN can serve (``geo-monitor publish``).

Layout of the folder::

    index.html                      links to everything below (French and English)
    map.html                        the public map of the latest release
    map-YYYY-MM-vN.html             the map of each release (immutable)
    releases/YYYY-MM-vN.geojson     each release as published (hexagons, totals, metadata; immutable)
    releases/YYYY-MM-vN.cells.csv   its hexagons; releases/YYYY-MM-vN.totals.csv its totals
    method/fr.html, method/en.html  how the numbers are protected, and which basemap the map uses
    reports/YYYY-fr.html, -en.html  the public edition of each released year's report (plan loaded)
    assets/                         Leaflet and the map runtime (no CDN)
    manifest.json                   every file with its size and sha256

Incremental: a file whose bytes are unchanged is not rewritten, so its modification time
and any cache in front of it stay valid; a new release adds its files. Nothing here reads
events: only stored releases (``geo_monitor.privacy.releases``) and the arrondissements.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import psycopg

from geo_monitor import __version__
from geo_monitor.calendar import next_month
from geo_monitor.errors import GeoMonitorError
from geo_monitor.privacy import releases as published
from geo_monitor.report.files import report_html
from geo_monitor.settings import Settings, get_settings
from maps.assets import ensure_assets, render
from maps.data import arrondissements
from maps.elements import basemap_setting
from maps.method import method_page
from maps.public import public_map

_ELEMENT_ID = re.compile(r"_[0-9a-f]{32}(?![0-9a-f])")  # folium names elements with random uuids


@dataclass
class Published:
    """What a publish run did: files written, files left as they were."""

    folder: Path
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    files: dict[str, dict] = field(default_factory=dict)  # relative path -> {bytes, sha256}

    def put(self, relative: str, content: bytes) -> None:
        """Write a file unless it holds these bytes already; record its checksum either way."""
        path = self.folder / relative
        if path.exists() and path.read_bytes() == content:
            self.unchanged.append(relative)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(path.name + ".part")
            temporary.write_bytes(content)
            temporary.replace(path)  # a reader never sees half a file
            self.written.append(relative)
        self.files[relative] = {"bytes": len(content), "sha256": hashlib.sha256(content).hexdigest()}

    def summary(self) -> str:
        """Return one line: how many files were written and left unchanged."""
        return f"{len(self.written)} file(s) written, {len(self.unchanged)} unchanged in {self.folder}"


def stable_ids(page: str) -> str:
    """Return a rendered map with folium's random element ids numbered in order (same map, same bytes)."""
    names: dict[str, str] = {}
    return _ELEMENT_ID.sub(lambda m: names.setdefault(m.group(0), f"_{len(names):032x}"), page)


def _json(data: object, *, indent: int | None = None) -> bytes:
    separators = None if indent else (",", ":")
    return json.dumps(data, ensure_ascii=False, sort_keys=True, indent=indent, separators=separators,
                      default=str).encode()


def _csv(frame) -> bytes:
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, lineterminator="\n")
    return buffer.getvalue().encode()


INDEX = """<!doctype html><html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Paris nord-est : signalements publiés</title>
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#222}}
a{{color:#0b5394}} table{{border-collapse:collapse}} td,th{{padding:.2em .6em;border-bottom:1px solid #ddd}}</style>
</head><body><h1>Signalements publiés — nord-est parisien</h1>
<p><a href="map.html">Carte du dernier mois publié</a> / <a href="map.html">map of the latest month</a>
 · <a href="method/fr.html">Méthode</a> / <a href="method/en.html">Method</a>
 · <a href="manifest.json">manifest (sha256)</a></p>
{reports}<table><tr><th>mois / month</th><th>carte / map</th><th>données / data</th></tr>{rows}</table>
</body></html>"""


def _public_reports(conn: psycopg.Connection, listed: list[dict], done: Published, settings: Settings,
                    progress: Callable[[str], None] | None) -> str:
    """Write the public edition of each year's report that releases cover; return the index's links.

    A report is dated the day after the year's last released month, not today, so an unchanged
    year is rewritten never and the site stays immutable.
    """
    links = []
    for year in sorted({int(r["month"][:4]) for r in listed}):
        last = max(r["month"] for r in listed if r["month"].startswith(f"{year}-"))
        as_of = next_month(date.fromisoformat(f"{last}-01"))
        pages = {}
        try:
            for lang in ("fr", "en"):
                if progress:
                    progress(f"report {year} ({lang})")
                pages[lang], _ = report_html(conn, year, public=True, lang=lang, settings=settings, today=as_of)
        except GeoMonitorError:  # a year the report refuses (before the plan, not over): no edition
            continue
        for lang, page in pages.items():
            done.put(f"reports/{year}-{lang}.html", page.encode())
        links.append(f'<a href="reports/{year}-fr.html">{year}</a> (<a href="reports/{year}-en.html">en</a>)')
    if not links:
        return ""
    return f"<p>Bilans annuels / yearly reports : {' · '.join(links)}</p>\n"


def publish_site(conn: psycopg.Connection, out_dir: Path, settings: Settings | None = None, *,
                 progress: Callable[[str], None] | None = None) -> Published:
    """Write (or bring up to date) the static public site in ``out_dir``; return what changed."""
    settings = settings or get_settings()
    basemap = basemap_setting(settings.public_basemap)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = Published(out_dir)
    assets = ensure_assets()
    for path in sorted(p for p in assets.rglob("*") if p.is_file()):
        done.put(f"assets/{path.relative_to(assets).as_posix()}", path.read_bytes())
    boundaries = arrondissements(conn)
    listed = sorted(published.list_releases(conn), key=lambda r: r["month"])
    rows, latest = [], None
    for entry in listed:
        name = f"{entry['month']}-v{entry['version']}"
        if progress:
            progress(name)
        release = published.get_release(conn, entry["month"], settings=settings)
        geojson = release.to_geojson()
        done.put(f"releases/{name}.geojson", _json(geojson))
        cells = release.cells_frame().drop(columns="geometry")
        cells.insert(0, "month", entry["month"])
        done.put(f"releases/{name}.cells.csv", _csv(cells))
        totals = release.totals_frame()
        totals.insert(0, "month", entry["month"])
        done.put(f"releases/{name}.totals.csv", _csv(totals))
        page = stable_ids(render(public_map(geojson, boundaries=boundaries, basemap=basemap), asset_url="assets"))
        done.put(f"map-{name}.html", page.encode())
        latest = page
        rows.append(f'<tr><td>{html.escape(entry["month"])}</td><td><a href="map-{name}.html">carte / map</a></td>'
                    f'<td><a href="releases/{name}.geojson">GeoJSON</a> · <a href="releases/{name}.cells.csv">CSV '
                    f'hexagones</a> · <a href="releases/{name}.totals.csv">CSV totaux</a></td></tr>')
    if latest is None:
        latest = stable_ids(render(public_map(None, boundaries=boundaries, basemap=basemap), asset_url="assets"))
    done.put("map.html", latest.encode())
    for lang, other in (("fr", "en"), ("en", "fr")):
        done.put(f"method/{lang}.html", method_page(lang, basemap, other_href=f"{other}.html").encode())
    reports = _public_reports(conn, listed, done, settings, progress)
    done.put("index.html", INDEX.format(rows="".join(reversed(rows)), reports=reports).encode())
    manifest = {"generator": f"geo_monitor {__version__}", "basemap": basemap.describe()["en"],
                "latest": listed[-1]["month"] if listed else None,
                "releases": [{k: r[k] for k in ("month", "version", "resolution", "k", "epsilon")} for r in listed],
                "files": dict(sorted(done.files.items()))}
    done.put("manifest.json", _json(manifest, indent=1))
    done.files.pop("manifest.json")
    return done
