"""Reference layers: find the official files (folder, cache or download) and load them.

Files come from ``GEO_MONITOR_REFERENCE_DIR`` when it is set, otherwise from the cache
folder, downloading what is missing from the official portals listed in
data/reference_manifest.json. Nothing of them is committed to the repository.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg

from geo_monitor.errors import ReferenceDataError
from geo_monitor.settings import Settings, get_settings

LAYERS = ("arrondissements", "quartiers", "iris", "stations", "lines", "works")


def manifest(settings: Settings | None = None) -> dict[str, dict]:
    """Return the manifest entries by layer name (official URL, licence, checksum)."""
    settings = settings or get_settings()
    data = json.loads((settings.data_dir / "reference_manifest.json").read_text(encoding="utf-8"))
    return {name: entry for name, entry in data.items() if not name.startswith("_")}


def sha256_file(path: Path) -> str:
    """Return the hex SHA-256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically (a partial download never stays behind)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    request = urllib.request.Request(url, headers={"User-Agent": "geo-monitor"})
    tmp_path: Path | None = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (https URLs from our manifest)
            with tempfile.NamedTemporaryFile(dir=dest.parent, delete=False, suffix=".part") as tmp:
                tmp_path = Path(tmp.name)
                shutil.copyfileobj(response, tmp)
            if response.length:  # the server closed the connection before the announced end
                raise ReferenceDataError(
                    f"download of {url} was interrupted ({response.length} bytes missing)"
                )
        data = json.loads(tmp_path.read_bytes())
        if not isinstance(data, dict) or not isinstance(data.get("features"), list):
            raise ReferenceDataError(f"{url} did not return a GeoJSON FeatureCollection")
        tmp_path.replace(dest)
    except http.client.HTTPException as exc:  # e.g. IncompleteRead: the connection dropped
        raise ReferenceDataError(f"download of {url} was interrupted ({exc!r})") from exc
    except ValueError as exc:
        raise ReferenceDataError(f"{url} did not return GeoJSON ({exc})") from exc
    finally:
        if tmp_path is not None:
            tmp_path.unlink(missing_ok=True)  # no-op once moved to dest
    return dest


def _missing_message(settings: Settings, missing: dict[str, str]) -> str:
    names = ", ".join(entry for entry in missing)
    reasons = "; ".join(f"{name}: {why}" for name, why in missing.items())
    return (
        f"reference data not found ({names}). Either set GEO_MONITOR_REFERENCE_DIR to a folder "
        "holding the files named in data/reference_manifest.json, or unset it and connect to the "
        f"internet so they can be downloaded into {settings.cache_dir / 'reference'} "
        f"(see docs/reference-data.md). Details: {reasons}"
    )


def locate(layers: tuple[str, ...] = LAYERS, settings: Settings | None = None,
           downloader: Callable[[str, Path], Path] = download) -> dict[str, Path]:
    """Return the local path of each layer's file, downloading into the cache if needed."""
    settings = settings or get_settings()
    entries = manifest(settings)
    found: dict[str, Path] = {}
    missing: dict[str, str] = {}
    for layer in layers:
        entry = entries[layer]
        if settings.reference_dir is not None:
            path = Path(settings.reference_dir) / entry["file"]
            if path.is_file():
                found[layer] = path
            else:
                missing[layer] = f"{path} does not exist"
            continue
        path = settings.cache_dir / "reference" / entry["file"]
        if not path.is_file() and entry.get("direct_download") is False:
            missing[layer] = f"no direct download: export {entry['file']} from {entry['url']} into the cache"
            continue
        if not path.is_file():
            try:
                downloader(entry["url"], path)
            except (OSError, urllib.error.URLError, ReferenceDataError) as exc:
                missing[layer] = f"download of {entry['url']} failed ({exc})"
                continue
        found[layer] = path
    if missing:
        raise ReferenceDataError(_missing_message(settings, missing))
    return found


def reference_features(layer: str, settings: Settings | None = None) -> list[dict]:
    """Return the GeoJSON features of one layer (for the sample generator and tests)."""
    path = locate((layer,), settings)[layer]
    return json.loads(path.read_text(encoding="utf-8"))["features"]


@dataclass
class LayerLoad:
    """The outcome of loading one layer."""

    layer: str
    features: int
    changed: bool
    warning: str | None = None


def _props(feature: dict) -> dict:
    return feature.get("properties") or {}


def _int_or_none(value) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


# Each layer: target table, SQL insert and a row builder from one GeoJSON feature.
# Geometry goes in as GeoJSON text and is made valid, multi and SRID 4326 in SQL.
_GEOM = "ST_Multi(ST_CollectionExtract(ST_MakeValid(ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326)), {dim}))"
_LAYER_SQL: dict[str, tuple[str, str, Callable[[dict], tuple]]] = {
    "arrondissements": (
        "arrondissements",
        "INSERT INTO arrondissements (code, number, name, geom) VALUES (%s, %s, %s, " + _GEOM.format(dim=3) + ")",
        lambda f: (int(_props(f)["c_arinsee"]), int(_props(f)["c_ar"]),
                   _props(f).get("l_aroff") or _props(f).get("l_ar"), json.dumps(f["geometry"])),
    ),
    "quartiers": (
        "quartiers",
        "INSERT INTO quartiers (code, arrondissement, name, geom) VALUES (%s, %s, %s, " + _GEOM.format(dim=3) + ")",
        lambda f: (int(_props(f)["c_quinsee"]), 75100 + int(_props(f)["c_ar"]), _props(f)["l_qu"],
                   json.dumps(f["geometry"])),
    ),
    "iris": (
        "iris",
        "INSERT INTO iris (label, population, geom) VALUES (%s, %s, " + _GEOM.format(dim=3) + ")",
        lambda f: (_props(f)["l_ir"], _int_or_none(_props(f).get("nb_pop")) or 0, json.dumps(f["geometry"])),
    ),
    "stations": (
        "stations",
        "INSERT INTO stations (station_id, name, line, mode, geom) "
        "VALUES (%s, %s, %s, %s, ST_SetSRID(ST_GeomFromGeoJSON(%s), 4326))",
        lambda f: (str(_props(f).get("id_gares")), _props(f).get("nom_gares") or "",
                   _props(f).get("res_com") or "", _props(f).get("mode") or "", json.dumps(f["geometry"])),
    ),
    "lines": (
        "rail_lines",
        "INSERT INTO rail_lines (line, mode, colour, geom) VALUES (%s, %s, %s, " + _GEOM.format(dim=2) + ")",
        lambda f: (_props(f).get("res_com") or "", _props(f).get("mode") or "",
                   _props(f).get("colourweb_hexa"), json.dumps(f["geometry"])),
    ),
    "works": (
        "works_sites",
        "INSERT INTO works_sites (id, street, purpose, owner, starts_at, ends_at, geom) "
        "VALUES (%s, %s, %s, %s, %s, %s, " + _GEOM.format(dim=3) + ") ON CONFLICT (id) DO NOTHING",
        lambda f: (_props(f)["identifiant"], _props(f).get("voie"), _props(f).get("objet"),
                   _props(f).get("maitre_ouvrage"), _props(f).get("date_debut"),
                   _props(f).get("date_fin"), json.dumps(f["geometry"])),
    ),
}

# Arrondissement of the point layers, by position (the files' own fields are not trusted).
_AFTER_LOAD = {
    "iris": "UPDATE iris i SET arrondissement = a.code FROM arrondissements a "
            "WHERE ST_Contains(a.geom, ST_PointOnSurface(i.geom))",
    "stations": "UPDATE stations s SET arrondissement = a.code FROM arrondissements a "
                "WHERE ST_Intersects(a.geom, s.geom)",
    "works": "UPDATE works_sites w SET arrondissement = a.code FROM arrondissements a "
             "WHERE ST_Contains(a.geom, ST_PointOnSurface(w.geom))",
}


def load_layer(conn: psycopg.Connection, layer: str, path: Path, expected_sha256: str | None = None) -> LayerLoad:
    """Replace one reference table by the file's content, unless that file is already loaded."""
    digest = sha256_file(path)
    previous = conn.execute("SELECT file_sha256 FROM reference_loads WHERE layer = %s", (layer,)).fetchone()
    warning = None
    if expected_sha256 and digest != expected_sha256:
        warning = f"{path.name} differs from the manifest checksum (a newer publication?)"
    if previous and previous[0] == digest:
        count = conn.execute("SELECT features FROM reference_loads WHERE layer = %s", (layer,)).fetchone()[0]
        return LayerLoad(layer, count, changed=False, warning=warning)
    table, insert, build = _LAYER_SQL[layer]
    try:
        features = json.loads(path.read_text(encoding="utf-8"))["features"]
        rows = [build(f) for f in features if f.get("geometry")]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReferenceDataError(f"{path} is not a usable {layer} layer: {exc!r}") from exc
    if not rows:
        raise ReferenceDataError(f"{path} has no features with a geometry: the {layer} layer was left as it was")
    with conn.transaction():
        conn.execute(f"DELETE FROM {table}")  # table names come from the constant map above
        with conn.cursor() as cur:
            cur.executemany(insert, rows)
        if layer in _AFTER_LOAD:
            conn.execute(_AFTER_LOAD[layer])
        conn.execute(
            "INSERT INTO reference_loads (layer, file_name, file_sha256, features) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (layer) DO UPDATE SET file_name = EXCLUDED.file_name, "
            "file_sha256 = EXCLUDED.file_sha256, features = EXCLUDED.features, loaded_at = now()",
            (layer, path.name, digest, len(rows)),
        )
    return LayerLoad(layer, len(rows), changed=True, warning=warning)


def build_study_area(conn: psycopg.Connection, settings: Settings | None = None) -> bool:
    """(Re)build the study-area polygon from the configured arrondissements; True if changed."""
    settings = settings or get_settings()
    codes = sorted(int(c) for c in settings.study_area)
    current = conn.execute("SELECT codes FROM study_area").fetchone()
    found = [r[0] for r in conn.execute("SELECT code FROM arrondissements WHERE code = ANY(%s)", (codes,))]
    unknown = sorted(set(codes) - set(found))
    if unknown:
        raise ReferenceDataError(f"study area names arrondissements that are not in the reference layer: {unknown}")
    if current and sorted(current[0]) == codes:
        return False
    with conn.transaction():
        conn.execute("DELETE FROM study_area")
        conn.execute(
            "INSERT INTO study_area (codes, geom) SELECT %s, ST_Multi(ST_Union(geom)) "
            "FROM arrondissements WHERE code = ANY(%s)",
            (codes, codes),
        )
    return True


def load_reference(conn: psycopg.Connection, settings: Settings | None = None,
                   progress: Callable[[str], None] | None = None) -> list[LayerLoad]:
    """Load every reference layer (idempotent: unchanged files are skipped)."""
    settings = settings or get_settings()
    paths = locate(LAYERS, settings)
    entries = manifest(settings)
    loads = []
    for layer in LAYERS:
        if progress:
            progress(layer)
        loads.append(load_layer(conn, layer, paths[layer], entries[layer].get("sha256")))
        if layer == "arrondissements" and loads[-1].changed:
            conn.execute("DELETE FROM study_area")
            conn.commit()
    if build_study_area(conn, settings):
        loads.append(LayerLoad("study_area", len(settings.study_area), changed=True))
    return loads


def require_loaded(conn: psycopg.Connection) -> None:
    """Raise a clear error when the reference layers needed by ingest are not loaded."""
    row = conn.execute("SELECT count(*) FROM study_area").fetchone()
    if not row or row[0] == 0:
        raise ReferenceDataError("reference layers are not loaded: run `geo-monitor reference load` first")
