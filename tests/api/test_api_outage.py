"""Database outage: 503 with Retry-After while it lasts, readiness fails, and the app recovers alone.

The app talks to PostgreSQL through a small TCP proxy started here; stopping the proxy cuts
every open connection and refuses new ones (as a database that went away), starting it again
on the same port brings the database back. The app is never restarted.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.deps import RecentCheck
from api.main import create_app
from geo_monitor.settings import Settings

SAMPLE = {"start": "2020-03-01", "end": "2020-04-01"}


class TcpProxy:
    """Forward 127.0.0.1:<port> to the database server; ``stop`` cuts everything, ``start`` resumes."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.accepted = 0

    def start(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True, name="proxy-accept").start()

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # closed by stop()
                return
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # stopped meanwhile
                    client.close()
                    server.close()
                    return
                self._sockets |= {client, server}
                self.accepted += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True, name="proxy-pump").start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@pytest.fixture
def proxy(api_settings) -> Iterator[TcpProxy]:
    url = urlsplit(api_settings.database_url)
    tcp = TcpProxy((url.hostname or "127.0.0.1", url.port or 5432))
    tcp.start()
    yield tcp
    tcp.stop()


@pytest.fixture
def proxied(api_settings: Settings, proxy: TcpProxy) -> Settings:
    """The session's settings with the database reached through the proxy."""
    url = urlsplit(api_settings.database_url)
    netloc = f"{url.username}@127.0.0.1:{proxy.port}" if url.username else f"127.0.0.1:{proxy.port}"
    return api_settings.model_copy(update={"database_url": url._replace(netloc=netloc).geturl()})


def _until(predicate, seconds: float) -> float:
    """Poll until ``predicate()`` holds; return the seconds it took (fail after ``seconds``)."""
    started = time.monotonic()
    while not predicate():
        assert time.monotonic() - started < seconds, f"not recovered after {seconds} s"
        time.sleep(0.2)
    return time.monotonic() - started


def test_outage_gives_503_and_the_app_recovers_by_itself(api_data, headers, proxy, proxied) -> None:
    settings, planner = proxied, headers["planner"]

    with TestClient(create_app(settings)) as client:
        _until(lambda: client.get("/ready").status_code == 200, 10)
        assert client.get("/hexagons", params=SAMPLE, headers=planner).status_code == 200
        assert proxy.accepted >= 1, "the app did not go through the proxy"

        proxy.stop()  # the database goes away: open connections cut, new ones refused
        started = time.monotonic()
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.headers["Retry-After"].isdigit()
        for path, params, headers in (("/hexagons", SAMPLE, planner), ("/reference/arrondissements", {}, {}),
                                      ("/public/releases", {}, {})):
            answer = client.get(path, params={**params, "resolution": 7} if params else {}, headers=headers)
            assert answer.status_code == 503, (path, answer.text)
            assert int(answer.headers["Retry-After"]) >= 1
            assert "unavailable" in answer.json()["error"]["message"]
        assert client.get("/health").status_code == 200
        assert time.monotonic() - started < 30, "503s must come within the connect timeout, not hang"

        proxy.start()  # same port: the database is back
        took = _until(lambda: client.get("/ready").status_code == 200, 15)
        assert client.get("/hexagons", params=SAMPLE, headers=planner).status_code == 200
        assert client.get("/reference/arrondissements").status_code == 200
        print(f"recovered {took:.1f} s after the database came back")


def test_app_starts_while_the_database_is_down_and_becomes_ready(api_data, headers, proxy, proxied) -> None:
    settings, planner = proxied, headers["planner"]
    proxy.stop()
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/ready").status_code == 503
        assert client.get("/hexagons", params=SAMPLE, headers=planner).status_code == 503
        proxy.start()
        _until(lambda: client.get("/ready").status_code == 200, 15)
        assert client.get("/hexagons", params=SAMPLE, headers=planner).status_code == 200


def test_the_pool_pings_a_connection_that_was_idle_and_trusts_one_in_use(api_settings: Settings) -> None:
    """The pool's check skips the ping (a round trip per request) only for a connection used just now."""
    check = RecentCheck(fresh=60)
    with psycopg.connect(api_settings.database_url, autocommit=True) as conn, \
            psycopg.connect(api_settings.database_url, autocommit=True) as admin:
        check(conn)  # never used: pinged, and it answers
        check.used(conn)
        admin.execute("SELECT pg_terminate_backend(%s)", (conn.info.backend_pid,))
        time.sleep(0.2)
        check(conn)  # used a moment ago: trusted without a round trip (the request that follows gets a 503)
        with pytest.raises(psycopg.OperationalError):
            RecentCheck(fresh=0)(conn)  # idle past `fresh`: pinged, and the cut connection is refused
        assert conn.broken
        with pytest.raises(psycopg.OperationalError):
            check(conn)  # a broken connection is always pinged, however recent
