"""API benchmark: GET /hexagons over real HTTP on loopback, against the same bytes served statically.

Run:  .venv/bin/python bench/api.py [--events N] [--reuse-db NAME] [--keep-db] [--workers 1 2]
                                    [--concurrency C] [--seconds S] [--sequential Q] [--baseline REV]

It creates its own database ``geo_monitor_bencha_<pid>`` on GEO_MONITOR_BENCH_SERVER (default
local postgres): migrations, reference layers, N synthetic events (geo_monitor.store.sample, default
1,000,000 over 2019-2021) ingested with geo_monitor.store.ingest, VACUUM ANALYZE, and a planner token.
``--reuse-db NAME`` uses (and keeps) a database that already holds events, e.g. the one
``bench/query.py --keep-db`` leaves; the token and the audit rows of the run are written to it.

For each worker count it starts two real servers on 127.0.0.1, each ``uvicorn --workers W``:

  api       ``uvicorn --factory api.main:app_factory`` (the application, unchanged: token check,
            data version, ETag cache, audit row per request);
  ceiling   a 10-line Starlette app (written to a temporary folder) with the same uvicorn, the
            same workers and host, that answers the saved bytes of the api's answer with the same
            headers, from memory (``/memory``) or as a static file (``/file``, StaticFiles).

and measures, with the load generator below, for C concurrent keep-alive connections and S seconds:

  (a) cached    the same ``/hexagons?start=2020-03-01&end=2020-04-01&resolution=9`` again and
                again (answered from the ETag cache after the first one);
  (b) ceiling   the same bytes from the ceiling server, memory and file;
  (c) uncached  one month at resolution 9 with a query the cache has never seen: a whole month
                of 2019-2021 and a random non-empty set of categories, every request different;
                and the same with windows shifted off the month start (edge days read from the
                events, not the monthly rollup). At C connections and one at a time (Q requests).

``--baseline REV`` (a git revision, e.g. the commit before a speed change) also starts that
revision's api (``git archive`` into a temporary folder, same virtualenv, same database, same
uvicorn) and runs (a) and (c) against it in the same run, the same queries in the same order;
the report prints ours / baseline for each.

The load generator is a minimal asyncio HTTP/1.1 client (keep-alive, Content-Length or chunked)
in this process: much lighter than httpx per request, so the servers, not the client, are
measured; its CPU use is printed so a saturated client would show. Progress goes to stderr,
the report to stdout. Targets (the API issue): (a) at least 50 % of the ceiling's req/s, the
ceiling being "the same response bytes as a static file from the same server" (the memory route
is printed too, as a stricter ceiling); (c) p99 under 100 ms at 1M events.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urlencode

import httpx
import numpy as np
from common import bench_settings, fill, say  # noqa: E402 (bench/ is the script's folder)

from geo_monitor import db
from geo_monitor.privacy.tokens import create_token
from geo_monitor.settings import Settings

REPO = Path(__file__).resolve().parents[1]
QUERY = {"start": "2020-03-01", "end": "2020-04-01", "resolution": 9}
TARGET_RATIO = 0.5
TARGET_P99_MS = 100.0
TARGET_SPEEDUP = 3.0  # uncached req/s at C clients against the baseline revision (the API issue)
TARGET_P99_LOADED_MS = 1000.0

STATIC_APP = '''
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

FILE = Path(os.environ["BENCH_STATIC_FILE"])
BODY = FILE.read_bytes()
HEADERS = {"ETag": os.environ["BENCH_STATIC_ETAG"], "Cache-Control": "private, max-age=0, must-revalidate"}


async def memory(request):
    return Response(BODY, media_type="application/geo+json", headers=HEADERS)


app = Starlette(routes=[Route("/memory", memory), Mount("/file", StaticFiles(directory=FILE.parent))])
'''




# --- the database ------------------------------------------------------------------------------


def category_names(settings: Settings) -> list[str]:
    with db.connect(settings) as conn:
        return [r[0] for r in conn.execute("SELECT DISTINCT name FROM categories ORDER BY name").fetchall()]


# --- the servers -------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    """A uvicorn process on 127.0.0.1."""

    name: str
    process: subprocess.Popen
    port: int

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(name: str, target: list[str], workers: int, env: dict[str, str], cwd: Path, probe: str) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", *target, "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    server = Server(name, process, port)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(server.base + probe, timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{name} server did not start: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.2)


# --- the load generator ------------------------------------------------------------------------

@dataclass
class Result:
    """What one load run measured."""

    label: str
    requests: int
    seconds: float
    latencies: list[float]
    errors: int
    bytes: int
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000 if self.latencies else float("nan")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, int]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length, chunked = None, False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        size = 0
        while True:
            n = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(n + 2)
            size += n
            if n == 0:
                return status, size
    body = await reader.readexactly(length) if length else b""
    return status, len(body)


async def _load(port: int, paths: Callable[[], str], headers: dict[str, str], concurrency: int,
                seconds: float | None, count: int | None) -> tuple[int, float, list[float], int, int]:
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    latencies: list[float] = []
    errors = 0
    size = 0
    issued = itertools.count()
    started = time.perf_counter()
    deadline = started + seconds if seconds else None

    async def client() -> None:
        nonlocal errors, size
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while True:
                if deadline is not None and time.perf_counter() >= deadline:
                    return
                if count is not None and next(issued) >= count:
                    return
                request = f"GET {paths()} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{extra}\r\n".encode()
                t0 = time.perf_counter()
                writer.write(request)
                status, n = await _read_response(reader)
                latencies.append(time.perf_counter() - t0)
                size += n
                errors += status != 200
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(latencies), time.perf_counter() - started, latencies, errors, size


def load(label: str, port: int, paths: Callable[[], str], headers: dict[str, str], *, concurrency: int,
         seconds: float | None = None, count: int | None = None) -> Result:
    """Run the load and return its figures (client CPU in % of one core)."""
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    n, took, latencies, errors, size = asyncio.run(_load(port, paths, headers, concurrency, seconds, count))
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime) / took * 100
    result = Result(label, n, took, latencies, errors, size, cpu)
    say(f"  {label}: {result.rate:,.0f} req/s, p50 {result.pct(50):.1f} ms, p99 {result.pct(99):.1f} ms, "
        f"errors {errors}, client CPU {cpu:.0f} %")
    return result


def uncached_paths(categories: list[str], shifted: bool, seed: int) -> Iterator[str]:
    """Endless distinct one-month resolution-9 queries (never the same query string twice)."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    months = [date(y, m, 1) for y in (2019, 2020, 2021) for m in range(1, 13)]
    while True:
        first = months[int(rng.integers(len(months)))]
        if shifted:
            first = first.replace(day=int(rng.integers(2, 28)))
        end = first.replace(year=first.year + first.month // 12, month=first.month % 12 + 1)
        chosen = sorted(rng.choice(categories, size=int(rng.integers(1, len(categories) + 1)), replace=False))
        path = "/hexagons?" + urlencode({"start": first.isoformat(), "end": end.isoformat(), "resolution": 9,
                                         "category": chosen}, doseq=True)
        if path not in seen:
            seen.add(path)
            yield path


# --- the run -----------------------------------------------------------------------------------

def run_workers(workers: int, settings: Settings, token: str, categories: list[str], args: argparse.Namespace,
                work: Path) -> dict[str, Result]:
    auth = {"Authorization": f"Bearer {token}"}
    env = {"GEO_MONITOR_DATABASE_URL": settings.database_url, "GEO_MONITOR_REFERENCE_DIR": str(settings.reference_dir),
           "GEO_MONITOR_ENVIRONMENT": "development", "PYTHONPATH": str(REPO)}
    say(f"workers={workers}: starting the api server")
    api = start_server("api", ["--factory", "api.main:app_factory"], workers, env, work, "/ready")
    static = None
    try:
        path = "/hexagons?" + urlencode(QUERY)
        first = httpx.get(api.base + path, headers=auth, timeout=60)
        first.raise_for_status()
        body_file = work / "hexagons.json"
        body_file.write_bytes(first.content)
        say(f"  answer: {len(first.content):,} bytes, {first.json()['metadata']['features']} hexagons, "
            f"{first.json()['metadata']['total']:,} events")
        static = start_server("ceiling", ["static_app:app"], workers,
                              {"BENCH_STATIC_FILE": str(body_file), "BENCH_STATIC_ETAG": first.headers["ETag"],
                               "PYTHONPATH": str(work)}, work, "/memory")
        same = httpx.get(static.base + "/memory").content == first.content == httpx.get(static.base + "/file/hexagons.json").content
        assert same, "the ceiling server does not answer the same bytes"
        c = args.concurrency
        results = {}
        load("warm-up", api.port, lambda: path, auth, concurrency=c, seconds=2)
        results["cached"] = load("(a) api, cached", api.port, lambda: path, auth, concurrency=c, seconds=args.seconds)
        results["memory"] = load("(b) ceiling, from memory", static.port, lambda: "/memory", {}, concurrency=c,
                                 seconds=args.seconds)
        results["file"] = load("(b) ceiling, static file", static.port, lambda: "/file/hexagons.json", {},
                               concurrency=c, seconds=args.seconds)
        uncached_runs(results, "api", api, workers, categories, auth, args)
        if args.baseline:
            static.stop()
            static = None
            api.stop()
            say(f"workers={workers}: starting the baseline api ({args.baseline})")
            base_env = {**env, "PYTHONPATH": str(work / "baseline")}
            api = start_server("baseline", ["--factory", "api.main:app_factory"], workers, base_env,
                               work / "baseline", "/ready")
            httpx.get(api.base + path, headers=auth, timeout=60).raise_for_status()
            load("warm-up", api.port, lambda: path, auth, concurrency=c, seconds=2)
            results["base-cached"] = load("(a) baseline, cached", api.port, lambda: path, auth, concurrency=c,
                                          seconds=args.seconds)
            uncached_runs(results, "baseline", api, workers, categories, auth, args, prefix="base-")
        return results
    finally:
        for server in (static, api):
            if server is not None:
                server.stop()


def uncached_runs(results: dict[str, Result], name: str, api: Server, workers: int, categories: list[str],
                  auth: dict[str, str], args: argparse.Namespace, prefix: str = "") -> None:
    """Run (c) against a server: the same seeded queries whichever server it is."""
    c = args.concurrency
    for shifted in (False, True):
        kind = "shifted month" if shifted else "whole month"
        paths = uncached_paths(categories, shifted, seed=workers * 10 + shifted)
        results[f"{prefix}uncached-{kind}"] = load(f"(c) {name}, uncached, {kind}, {c} clients", api.port,
                                                   lambda paths=paths: next(paths), auth, concurrency=c,
                                                   seconds=args.seconds)
        results[f"{prefix}sequential-{kind}"] = load(f"(c) {name}, uncached, {kind}, 1 client", api.port,
                                                     lambda paths=paths: next(paths), auth, concurrency=1,
                                                     count=args.sequential)


def code_revision() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
        return rev + (" (+ uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(all_results: dict[int, dict[str, Result]], events: int, args: argparse.Namespace, load_before: tuple,
           load_after: tuple, pg: str) -> None:
    print(f"# API benchmark, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(f"machine: {os.cpu_count()} cores ({platform.machine()}), Python {platform.python_version()}, "
          f"PostgreSQL {pg}; code {code_revision()}")
    print(f"load average before {load_before[0]:.1f}, after {load_after[0]:.1f} (other work on the machine "
          "counts against every figure alike)")
    print(f"database: {events:,} events; {args.concurrency} keep-alive connections, {args.seconds:.0f} s per run; "
          f"uncached 1-client runs: {args.sequential} requests")
    print("load generator: asyncio HTTP/1.1 client in one process on the same machine (client CPU = % of one core)")
    print()
    print("| workers | run | req/s | p50 ms | p99 ms | errors | client CPU |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for workers, results in all_results.items():
        for r in results.values():
            print(f"| {workers} | {r.label} | {r.rate:,.0f} | {r.pct(50):.1f} | {r.pct(99):.1f} | {r.errors} "
                  f"| {r.client_cpu:.0f} % |")
    print()
    print("| workers | target | measured | |")
    print("|---:|---|---|---|")
    for workers, results in all_results.items():
        ratio = results["cached"].rate / results["memory"].rate
        ratio_file = results["cached"].rate / results["file"].rate
        print(f"| {workers} | cached >= {TARGET_RATIO:.0%} of the ceiling (the same bytes as a static file, same "
              f"server) | {ratio_file:.0%} ({results['cached'].rate:,.0f} / {results['file'].rate:,.0f} req/s; "
              f"stricter: {ratio:.0%} of the same bytes from memory) | {verdict(ratio_file >= TARGET_RATIO)} |")
        for kind in ("whole month", "shifted month"):
            for key, clients in ((f"uncached-{kind}", args.concurrency), (f"sequential-{kind}", 1)):
                p99 = results[key].pct(99)
                print(f"| {workers} | uncached p99 < {TARGET_P99_MS:.0f} ms, {kind}, {clients} client(s) "
                      f"| {p99:.1f} ms | {verdict(p99 < TARGET_P99_MS)} |")
        if "base-cached" in results:
            for key, what in (("cached", "cached"), ("uncached-whole month", "uncached, whole month"),
                              ("uncached-shifted month", "uncached, shifted month"),
                              ("sequential-whole month", "uncached, whole month, 1 client"),
                              ("sequential-shifted month", "uncached, shifted month, 1 client")):
                ours, base = results[key], results[f"base-{key}"]
                speedup = ours.rate / base.rate
                goal = ""
                if key.startswith("uncached"):
                    ok = speedup >= TARGET_SPEEDUP and ours.pct(99) < TARGET_P99_LOADED_MS
                    goal = (f" (target >= {TARGET_SPEEDUP:.0f}x with p99 < {TARGET_P99_LOADED_MS:.0f} ms: "
                            f"p99 {ours.pct(99):.0f} ms) | {verdict(ok)}")
                print(f"| {workers} | {what}: ours / baseline {args.baseline} | {speedup:.2f}x "
                      f"({ours.rate:,.0f} / {base.rate:,.0f} req/s){goal or ' |'} |")
    errors = sum(r.errors for results in all_results.values() for r in results.values())
    if errors:
        print(f"\nWARNING: {errors} answers were not 200")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="N synthetic events (default 1,000,000)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="uvicorn worker counts (default 1 2)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent connections (default 50)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per load run (default 10)")
    parser.add_argument("--sequential", type=int, default=200, help="uncached requests one at a time (default 200)")
    parser.add_argument("--baseline", metavar="REV", help="also measure this git revision's api, same run")
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database (and say its name)")
    parser.add_argument("--reuse-db", metavar="NAME", help="use this database (kept); fill it only if it has no events")
    args = parser.parse_args()

    dbname = args.reuse_db or f"geo_monitor_bencha_{os.getpid()}"
    settings = bench_settings(dbname)
    keep = args.keep_db or bool(args.reuse_db)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="geo_monitor_bencha_"))
    (work / "static_app.py").write_text(STATIC_APP)
    if args.baseline:
        (work / "baseline").mkdir()
        tree = subprocess.run(["git", "archive", args.baseline], cwd=REPO, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(work / "baseline")], input=tree, check=True)
    try:
        events, _ = fill(settings, args.events, reuse=bool(args.reuse_db))
        with db.connect(settings) as conn:
            token = create_token(conn, role="planner", team="bench-api", days=1, description="bench/api.py")[1]
        categories = category_names(settings)
        with db.connect(settings) as conn:
            pg = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        all_results = {w: run_workers(w, settings, token, categories, args, work) for w in args.workers}
        report(all_results, events, args, load_before, os.getloadavg(), pg)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if keep:
            say(f"keeping database {dbname}")
        else:
            say(f"dropping database {dbname}")
            db.drop_database(settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
