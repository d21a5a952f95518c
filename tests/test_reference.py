"""Reference layers: found in a folder or downloaded into the cache, loaded idempotently.

Downloads are tested against a local HTTP server only; the tests never touch the internet.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

from geo_monitor import db
from geo_monitor.errors import ReferenceDataError
from geo_monitor.settings import REPO_ROOT, Settings
from geo_monitor.store import reference

EXPECTED_COUNTS = {
    "arrondissements": 20,
    "quartiers": 80,
    "iris": 263,
    "stations": 541,
    "lines": 516,
    "works": 214,
}
TABLES = {
    "arrondissements": "arrondissements",
    "quartiers": "quartiers",
    "iris": "iris",
    "stations": "stations",
    "lines": "rail_lines",
    "works": "works_sites",
}
STUDY_AREA = [75110, 75118, 75119, 75120]


def _official_manifest() -> dict:
    """Return the manifest shipped in data/ (all entries, including ``_about``)."""
    return json.loads((REPO_ROOT / "data" / "reference_manifest.json").read_text(encoding="utf-8"))


# --- loading from the shared folder -------------------------------------------------------


def test_load_gives_expected_counts(loaded_db: Settings, conn: psycopg.Connection) -> None:
    for layer, table in TABLES.items():
        count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        assert count == EXPECTED_COUNTS[layer], layer
    population = conn.execute("SELECT sum(population) FROM iris").fetchone()[0]
    assert population == 668_629
    loads = dict(conn.execute("SELECT layer, features FROM reference_loads").fetchall())
    assert loads == EXPECTED_COUNTS


def test_study_area_is_the_four_arrondissements(loaded_db: Settings, conn: psycopg.Connection) -> None:
    codes, area_km2, valid = conn.execute(
        "SELECT codes, ST_Area(geom::geography) / 1e6, ST_IsValid(geom) FROM study_area"
    ).fetchone()
    assert codes == STUDY_AREA
    assert area_km2 == pytest.approx(21.7, abs=0.1)
    assert valid
    # Every IRIS of the trimmed file lies in the study area, placed by position.
    arrondissements = {r[0] for r in conn.execute("SELECT DISTINCT arrondissement FROM iris")}
    assert arrondissements == set(STUDY_AREA)


def test_second_load_changes_nothing(loaded_db: Settings, conn: psycopg.Connection) -> None:
    before = conn.execute("SELECT layer, loaded_at FROM reference_loads ORDER BY layer").fetchall()

    loads = reference.load_reference(conn, loaded_db)
    conn.commit()

    assert [load.layer for load in loads] == list(reference.LAYERS)  # no study_area rebuild
    assert not any(load.changed for load in loads)
    assert {load.layer: load.features for load in loads} == EXPECTED_COUNTS
    assert [load.warning for load in loads] == [None] * len(loads)  # checksums match the manifest
    after = conn.execute("SELECT layer, loaded_at FROM reference_loads ORDER BY layer").fetchall()
    assert after == before


def test_missing_reference_dir_says_how_to_provide_the_files(tmp_path: Path) -> None:
    absent = tmp_path / "no-such-folder"
    settings = Settings(reference_dir=absent, cache_dir=tmp_path / "cache")

    with pytest.raises(ReferenceDataError) as info:
        reference.locate(settings=settings)

    message = str(info.value)
    assert "GEO_MONITOR_REFERENCE_DIR" in message
    assert str(absent) in message
    for layer in reference.LAYERS:
        assert layer in message


def test_unusable_file_is_refused(conn: psycopg.Connection, tmp_path: Path) -> None:
    broken = tmp_path / "paris_quartiers.geojson"
    point = {"type": "Point", "coordinates": [2.37, 48.88]}
    broken.write_text(json.dumps({"features": [{"geometry": point, "properties": {}}]}))

    with pytest.raises(ReferenceDataError, match="not a usable quartiers layer"):
        reference.load_layer(conn, "quartiers", broken)


def test_unknown_study_area_code_is_refused(loaded_db: Settings, conn: psycopg.Connection) -> None:
    elsewhere = loaded_db.model_copy(update={"study_area": ["75110", "75199"]})

    with pytest.raises(ReferenceDataError, match="75199"):
        reference.build_study_area(conn, elsewhere)


# --- downloading into the cache (local HTTP server) ---------------------------------------


@dataclass
class LocalServer:
    """A local HTTP server with copies of the reference files and a log of the paths asked."""

    base_url: str
    requests: list[str] = field(default_factory=list)


class _Handler(SimpleHTTPRequestHandler):
    """Serves the folder, plus broken answers under /html/, /notgeojson/, /truncated/, /stalled/."""

    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if self.path.startswith("/html/"):
            self._reply(200, "text/html", b"<html><body>Explore the dataset</body></html>")
        elif self.path.startswith("/notgeojson/"):
            self._reply(200, "application/json", b'{"error": "quota exceeded"}')
        elif self.path.startswith("/truncated/"):
            self.send_response(200)
            self.send_header("Content-Type", "application/geo+json")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b'{"type": "FeatureCollection", "features": [')
            self.close_connection = True
        elif self.path.startswith("/stalled/"):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b'{"type": "FeatureCollection", "features": [')
            self.wfile.flush()
            time.sleep(1.0)  # longer than the client's timeout
            self.close_connection = True
        else:
            super().do_GET()

    def _reply(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@pytest.fixture
def local_server(tmp_path: Path, reference_dir: Path) -> Iterator[LocalServer]:
    """Serve copies of the shared reference files on 127.0.0.1 (random port)."""
    root = tmp_path / "www"
    root.mkdir()
    for name, entry in _official_manifest().items():
        if not name.startswith("_"):
            shutil.copy(reference_dir / entry["file"], root / entry["file"])
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield LocalServer(f"http://{host}:{port}", server.requests)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def _data_dir_with_urls(tmp_path: Path, url_of: Callable[[str], str]) -> Path:
    """Return a data folder whose manifest points each layer at ``url_of(file name)``."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(REPO_ROOT / "data" / "categories.csv", data_dir / "categories.csv")
    manifest = _official_manifest()
    for name, entry in manifest.items():
        if not name.startswith("_"):
            entry["url"] = url_of(entry["file"])
            entry.pop("direct_download", None)  # the local server offers every file directly
    (data_dir / "reference_manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return data_dir


def _download_settings(tmp_path: Path, url_of: Callable[[str], str]) -> Settings:
    return Settings(
        reference_dir=None,  # explicit: wins over GEO_MONITOR_REFERENCE_DIR in the environment
        cache_dir=tmp_path / "cache",
        data_dir=_data_dir_with_urls(tmp_path, url_of),
    )


def _cached_files(settings: Settings) -> list[Path]:
    return sorted(p for p in settings.cache_dir.rglob("*") if p.is_file())


def test_download_fills_the_cache_once(local_server: LocalServer, tmp_path: Path) -> None:
    settings = _download_settings(tmp_path, lambda name: f"{local_server.base_url}/{name}")
    entries = reference.manifest(settings)

    paths = reference.locate(settings=settings)

    assert set(paths) == set(reference.LAYERS)
    for layer, path in paths.items():
        assert path == settings.cache_dir / "reference" / entries[layer]["file"]
        assert reference.sha256_file(path) == entries[layer]["sha256"], layer
    assert _cached_files(settings) == sorted(paths.values())  # no .part file left behind
    assert len(local_server.requests) == len(reference.LAYERS)

    assert reference.locate(settings=settings) == paths
    assert len(local_server.requests) == len(reference.LAYERS)  # served from the cache


def test_downloaded_files_load(
    local_server: LocalServer, tmp_path: Path, settings_factory: Callable[..., Settings]
) -> None:
    url_of = partial("{}/{}".format, local_server.base_url)
    settings = settings_factory(reference_dir=None, data_dir=_data_dir_with_urls(tmp_path, url_of))
    db.up(settings)

    with db.connect(settings) as conn:
        loads = reference.load_reference(conn, settings)

    assert {load.layer: load.features for load in loads if load.layer in EXPECTED_COUNTS} == EXPECTED_COUNTS
    assert loads[-1].layer == "study_area" and loads[-1].changed


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("missing", "404"),
        ("html", "did not return GeoJSON"),
        ("notgeojson", "did not return a GeoJSON FeatureCollection"),
        ("truncated", "interrupted"),
    ],
)
def test_bad_answer_leaves_nothing_in_the_cache(
    local_server: LocalServer, tmp_path: Path, prefix: str, reason: str
) -> None:
    settings = _download_settings(tmp_path, lambda name: f"{local_server.base_url}/{prefix}/{name}")

    with pytest.raises(ReferenceDataError) as info:
        reference.locate(("arrondissements", "quartiers"), settings)

    message = str(info.value)
    assert reason in message
    assert "arrondissements" in message and "quartiers" in message
    assert _cached_files(settings) == []


def test_stalled_download_leaves_no_partial_file(local_server: LocalServer, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "reference" / "paris_quartiers.geojson"

    with pytest.raises(TimeoutError):
        reference.download(f"{local_server.base_url}/stalled/x.geojson", dest, timeout=0.2)

    assert list(dest.parent.iterdir()) == []


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_no_network_gives_one_clear_error_listing_the_layers(tmp_path: Path) -> None:
    port = _closed_port()
    settings = _download_settings(tmp_path, lambda name: f"http://127.0.0.1:{port}/{name}")

    with pytest.raises(ReferenceDataError) as info:
        reference.locate(settings=settings)

    message = str(info.value)
    assert message.startswith(f"reference data not found ({', '.join(reference.LAYERS)})")
    assert "GEO_MONITOR_REFERENCE_DIR" in message
    assert str(settings.cache_dir / "reference") in message
    assert _cached_files(settings) == []


def test_layer_without_direct_download_says_where_to_get_it(tmp_path: Path) -> None:
    settings = Settings(reference_dir=None, cache_dir=tmp_path / "cache")

    with pytest.raises(ReferenceDataError) as excinfo:
        reference.locate(("iris",), settings, downloader=lambda url, dest: pytest.fail("must not download"))

    message = str(excinfo.value)
    assert "no direct download" in message
    assert "opendata.apur.org" in message
    assert "GEO_MONITOR_REFERENCE_DIR" in message
