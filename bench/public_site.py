"""Public side benchmark: the same public map and release served by the API and as static files.

Run:  .venv/bin/python bench/public_site.py --reuse-db NAME [--month 2020-06] [--concurrency C] [--seconds S]

NAME is a database that already holds events (``bench/api.py --keep-db`` leaves one). The
month is released there if it is not yet (privacy budget spent once, as ``geo-monitor release``
would). Then ``geo-monitor publish`` writes the static site to a temporary folder, and two
real servers start on 127.0.0.1 with the same ``uvicorn --workers 1``:

  api      ``uvicorn --factory api.main:app_factory`` (rate limit raised past the load);
  static   a Starlette ``StaticFiles`` app over the published folder (what any web server does).

Measured with bench/api.py's load generator over C keep-alive connections for S seconds:
the public map (``/maps/public`` against ``/map.html``) and the month's release as GeoJSON
(``/public/releases/MONTH`` against ``/releases/MONTH-vN.geojson``). Same machine, same run;
the ratios are printed.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
from pathlib import Path

from common import bench_settings, code_revision, say

from geo_monitor import db
from geo_monitor.errors import NotFoundError
from geo_monitor.privacy.release import create_release
from geo_monitor.privacy.releases import get_release

HERE = Path(__file__).resolve().parent
SPEC = importlib.util.spec_from_file_location("bench_api", HERE / "api.py")  # "api" is the application's package
bench_api = importlib.util.module_from_spec(SPEC)
sys.modules["bench_api"] = bench_api  # its dataclasses look their module up
SPEC.loader.exec_module(bench_api)

STATIC_APP = '''
import os

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

app = Starlette(routes=[Mount("/", StaticFiles(directory=os.environ["BENCH_SITE"], html=True))])
'''


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse-db", metavar="NAME", required=True, help="a database that holds events (kept)")
    parser.add_argument("--month", default="2020-06", help="the month whose release is served (default 2020-06)")
    parser.add_argument("--concurrency", type=int, default=50, help="concurrent connections (default 50)")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per load run (default 10)")
    args = parser.parse_args()

    settings = bench_settings(args.reuse_db)
    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="geo_monitor_benchp_"))
    servers = []
    try:
        with db.connect(settings) as conn:
            try:
                version = get_release(conn, args.month).version
            except NotFoundError:
                say(f"releasing {args.month}")
                version = create_release(conn, args.month, settings=settings).version
                conn.commit()
            from maps.site import publish_site

            say("publishing the static site")
            publish_site(conn, work / "site", settings)
        (work / "static_app.py").write_text(STATIC_APP)
        env = {"GEO_MONITOR_DATABASE_URL": settings.database_url, "GEO_MONITOR_REFERENCE_DIR": str(settings.reference_dir),
               "GEO_MONITOR_PUBLIC_RATE_PER_MINUTE": "100000000", "PYTHONPATH": str(HERE.parent),
               "BENCH_SITE": str(work / "site")}
        api = bench_api.start_server("api", ["--factory", "api.main:app_factory"], 1, env, work, "/health")
        servers.append(api)
        static = bench_api.start_server("static", ["static_app:app"], 1, env, work, "/index.html")
        servers.append(static)
        name = f"{args.month}-v{version}"
        pairs = [("public map", api, "/maps/public", static, "/map.html"),
                 ("release GeoJSON", api, f"/public/releases/{args.month}", static, f"/releases/{name}.geojson")]
        rows = []
        for label, a, a_path, s, s_path in pairs:
            for who, srv, path in (("api", a, a_path), ("static", s, s_path)):
                bench_api.load(f"{label}, {who} (warm-up)", srv.port, lambda p=path: p, {}, concurrency=4, count=20)
            from_api = bench_api.load(f"{label}, api {a_path}", a.port, lambda p=a_path: p, {},
                                      concurrency=args.concurrency, seconds=args.seconds)
            from_static = bench_api.load(f"{label}, static {s_path}", s.port, lambda p=s_path: p, {},
                                         concurrency=args.concurrency, seconds=args.seconds)
            rows.append((label, from_api, from_static))
        print(f"# Public side benchmark ({code_revision()})")
        print(f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f}; {args.concurrency} "
              f"keep-alive connections, {args.seconds:g} s per run, uvicorn --workers 1 for both servers\n")
        print("| what | served by | req/s | p50 ms | p99 ms | errors | bytes/answer |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for label, from_api, from_static in rows:
            for who, r in (("API", from_api), ("static files", from_static)):
                size = r.bytes // max(1, r.requests)
                print(f"| {label} | {who} | {r.rate:,.0f} | {r.pct(50):.1f} | {r.pct(99):.1f} | {r.errors} | {size:,} |")
        print()
        for label, from_api, from_static in rows:
            print(f"- {label}: static files answer {from_static.rate / from_api.rate:.1f}x the API's req/s")
    finally:
        for srv in servers:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
