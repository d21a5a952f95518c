"""Offline assets: local copies of Leaflet and its plugins, linked or inlined into the HTML.

Folium and branca link their JavaScript and CSS from public CDNs. The maps must work with
no internet, so :func:`render` rewrites every link to a local copy: inlined into the page
(standalone files from ``maps build``) or linked under a URL prefix the API serves.

Sources, both from package registries, nothing committed to the repository:

- Leaflet 1.9.4 (BSD-2-Clause): the npm package, fetched with ``npm pack`` and checked
  against its registry integrity hash (``python -m maps install-assets`` at setup time).
- Swagger UI 5.35.0 (Apache-2.0, npm ``swagger-ui-dist``, fetched and checked the same way):
  the API's /docs page, served from the same folder.
- Leaflet.heat 0.2.0 (BSD-2-Clause, with folium's weights patch): shipped by the folium
  wheel in ``folium/templates/leaflet_heat.min.js``.

jQuery, Bootstrap, Font Awesome and awesome-markers, which folium adds to every map, are
dropped: no builder here uses popups with HTML content, icons or ``$``. The legends are plain
HTML, so branca's d3 is not needed either.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import branca.element
import folium

from geo_monitor.errors import MapAssetsError

ENV_DIR = "GEO_MONITOR_MAP_ASSETS_DIR"
DEFAULT_DIR = Path.home() / ".cache" / "geo_monitor" / "map-assets"


@dataclass(frozen=True)
class NpmPackage:
    """One npm package: the files kept from its tarball and the registry's integrity hash."""

    name: str
    version: str
    integrity: str
    files: dict[str, str]  # path in the tarball (under package/) -> path in the asset folder


LEAFLET = NpmPackage(
    "leaflet", "1.9.4",
    "sha512-nxS1ynzJOmOlHp+iL3FyWqK89GtNL8U8rvlMOsQdTTssxZwCXh8N2NB3GDQOL+YR3XnWyZAxwQixURb+FA74PA==",
    {f"dist/{name}": f"leaflet/{name}" for name in (
        "leaflet.js", "leaflet.css", "images/layers.png", "images/layers-2x.png", "images/marker-icon.png",
        "images/marker-icon-2x.png", "images/marker-shadow.png")} | {"LICENSE": "leaflet/LICENSE"},
)
SWAGGER_UI = NpmPackage(  # the API's /docs page, served from the same local folder
    "swagger-ui-dist", "5.35.0",
    "sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==",
    {name: f"swagger-ui/{name}" for name in ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png",
                                             "LICENSE")},
)
PACKAGES = (LEAFLET, SWAGGER_UI)
FOLIUM_TEMPLATES = Path(folium.__file__).parent / "templates"
FROM_FOLIUM = {"leaflet.heat/leaflet-heat.js": FOLIUM_TEMPLATES / "leaflet_heat.min.js"}

# Resource names folium uses -> local path (None: dropped, nothing of ours needs it).
LOCAL: dict[str, str | None] = {
    "leaflet": "leaflet/leaflet.js",
    "leaflet_css": "leaflet/leaflet.css",
    "leaflet-heat.js": "leaflet.heat/leaflet-heat.js",
    "jquery": None,
    "bootstrap": None,
    "awesome_markers": None,
    "bootstrap_css": None,
    "glyphicons_css": None,
    "awesome_markers_font_css": None,
    "awesome_markers_css": None,
    "awesome_rotate_css": None,
}


def asset_dir() -> Path:
    """Return the folder holding the local copies (``GEO_MONITOR_MAP_ASSETS_DIR`` or the cache)."""
    return Path(os.environ.get(ENV_DIR) or DEFAULT_DIR)


def _missing(folder: Path, packages: tuple[NpmPackage, ...] = PACKAGES) -> list[str]:
    return [rel for package in packages for rel in package.files.values() if not (folder / rel).is_file()]


def _check_integrity(tarball: Path, integrity: str) -> None:
    algorithm, _, expected = integrity.partition("-")
    digest = base64.b64encode(hashlib.new(algorithm, tarball.read_bytes()).digest()).decode()
    if digest != expected:
        raise MapAssetsError(f"{tarball.name}: {algorithm} digest {digest} differs from the registry's {expected}")


def install_assets(folder: Path | None = None, *, npm: str = "npm") -> Path:
    """Fetch Leaflet and Swagger UI with ``npm pack``, check their integrity and unpack the files used.

    Idempotent: nothing is fetched when the files are already there. Returns the folder.
    """
    folder = Path(folder or asset_dir())
    for rel, source in FROM_FOLIUM.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, folder / rel)
    for package in PACKAGES:
        if _missing(folder, (package,)):
            _unpack(package, folder, npm)
    return folder


def _unpack(package: NpmPackage, folder: Path, npm: str) -> None:
    if shutil.which(npm) is None:
        raise MapAssetsError(f"the map assets are missing from {folder} and {npm!r} is not installed: "
                             f"install Node.js and npm, then run `python -m maps install-assets`, or set {ENV_DIR} "
                             f"to a folder holding {', '.join(package.files.values())}")
    with tempfile.TemporaryDirectory() as tmp:
        spec = f"{package.name}@{package.version}"
        done = subprocess.run([npm, "pack", spec, "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True, check=False, cwd=tmp)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or len(tarballs) != 1:
            raise MapAssetsError(f"`npm pack {spec}` failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        _check_integrity(tarballs[0], package.integrity)
        with tarfile.open(tarballs[0]) as archive:
            for inner, rel in package.files.items():
                source = archive.extractfile(f"package/{inner}")
                target = folder / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(source.read())


def ensure_assets(*, install: bool = True) -> Path:
    """Return the asset folder, installing the copies first when missing (``install``)."""
    folder = asset_dir()
    if _missing(folder) or any(not (folder / rel).is_file() for rel in FROM_FOLIUM):
        if not install:
            raise MapAssetsError(f"the map assets are missing from {folder}: run `python -m maps install-assets`")
        install_assets(folder)
    return folder


def copy_assets(out_dir: Path) -> Path:
    """Copy the local assets to ``out_dir/assets`` (for pages rendered with ``asset_url="assets"``)."""
    target = Path(out_dir) / "assets"
    shutil.copytree(ensure_assets(), target, dirs_exist_ok=True)
    return target


def _elements(element: branca.element.Element):
    yield element
    for child in element._children.values():
        yield from _elements(child)


def _local_links(element: branca.element.Element) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Return the element's (name, local path) JS and CSS lists; refuse an unknown CDN asset."""
    lists = []
    for attribute in ("default_js", "default_css"):
        kept = []
        for name, url in getattr(element, attribute, []):
            if name not in LOCAL:
                raise MapAssetsError(f"{type(element).__name__} needs {name} ({url}), which has no local "
                                     "copy: add it to maps.assets.LOCAL and install_assets")
            if LOCAL[name] is not None:
                kept.append((name, LOCAL[name]))
        lists.append(kept)
    return lists[0], lists[1]


def _inline_css(text: str, folder: Path) -> str:
    def data_uri(match: re.Match) -> str:
        path = folder / "leaflet" / match.group(1)
        return f"url(data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"

    return re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, text)


def _strip_source_map(text: str) -> str:
    return re.sub(r"//# sourceMappingURL=\S+", "", text)


def render(m: folium.Map, asset_url: str | None = None) -> str:
    """Return the map as one HTML page whose scripts and styles are all local.

    Parameters
    ----------
    m
        A map from this package's builders.
    asset_url
        ``None``: inline Leaflet and its plugins (a standalone page, ~170 kB more).
        Otherwise the URL prefix under which :func:`asset_dir` is served, e.g.
        ``"/maps/assets"`` in the API or ``"assets"`` next to files from :func:`copy_assets`.

    """
    folder = ensure_assets()
    figure = m.get_root()
    js: dict[str, str] = {}
    css: dict[str, str] = {}
    for element in _elements(figure):
        if isinstance(element, folium.elements.JSCSSMixin) or hasattr(element, "default_js"):
            # Keep the element's own list: a map may be rendered again (inline, then linked).
            if "_gm_links" not in element.__dict__:
                element._gm_links = (list(element.default_js), list(element.default_css))
            element.default_js, element.default_css = element._gm_links
            element_js, element_css = _local_links(element)
            js.update(element_js)
            css.update(element_css)
            element.default_js, element.default_css = [], []
    if asset_url is None:
        styles = "".join(f"<style>{_inline_css((folder / p).read_text(), folder)}</style>" for p in css.values())
        scripts = "".join(f"<script>{_strip_source_map((folder / p).read_text())}</script>" for p in js.values())
    else:
        base = asset_url.rstrip("/")
        styles = "".join(f'<link rel="stylesheet" href="{base}/{p}"/>' for p in css.values())
        scripts = "".join(f'<script src="{base}/{p}"></script>' for p in js.values())
    # The leaflet script must precede every map script: header children render in order,
    # so the assets go in first.
    figure.header._children.pop("gm_assets", None)
    figure.header._children = {"gm_assets": branca.element.Element(styles + scripts),
                               **figure.header._children}
    html = figure.render()
    check_offline(html)
    return html


_EXTERNAL = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I)


def check_offline(html: str) -> None:
    """Raise :class:`MapAssetsError` when the page loads a script, style or image from the network."""
    found = _EXTERNAL.search(html)
    if found:
        raise MapAssetsError(f"the page still loads a network resource: {html[found.start():found.start() + 160]}")
