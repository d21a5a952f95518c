"""Report benchmark: the yearly evaluation on N events (default 1,000,000), its time and size.

Run:  .venv/bin/python bench/report.py [--events N] [--year 2021] [--repeat K] [--keep-db] [--reuse-db NAME]

It creates its own database ``geo_monitor_benchr_<pid>`` on GEO_MONITOR_BENCH_SERVER (default
local postgres): migrations, reference layers, N synthetic events over 2019-2021, the plan
seed and the demo's plan data. Then, each timed (median of K):

  ours, report        ``report_html``: every indicator of the year and the previous one (monthly
                      totals from the rollups, coverage, metro, Gi*, emerging, works, quality),
                      the map, the HTML page. Its size in bytes.
  ours, totals        the monthly totals by kind and category, from the monthly rollups.
  baseline, totals    the same totals by a GROUP BY over the events (what a report reading the
                      events would do for each figure).

Targets from the issue: the yearly report on 1M events under 60 s and under 10 MB.
"""

from __future__ import annotations

import argparse
import os
from datetime import date
from pathlib import Path

from common import bench_settings, code_revision, fill, finish, say, timed

from geo_monitor import db
from geo_monitor.plan.figures import monthly_totals
from geo_monitor.plan.loader import load_plan
from geo_monitor.report.files import report_html
from geo_monitor.settings import Settings

REPO = Path(__file__).resolve().parents[1]
TARGET_S, TARGET_MB = 60.0, 10.0


def prepare(settings: Settings, n: int, reuse: bool) -> int:
    """Fill the bench database (bench/common.py) and load the plan seed and the demo's plan data."""
    stored, _ = fill(settings, n, reuse=reuse)
    with db.connect(settings) as conn:
        for name in ("plan_2019_2021.yaml", "demo_plan_2019_2021.yaml"):
            load_plan(conn, REPO / "data" / name)
    return stored


def baseline_totals(conn, first: date, end: date) -> list[tuple]:
    """Monthly totals by kind and category straight from the events."""
    return conn.execute(
        "SELECT kind_id, category_id, date_trunc('month', occurred_at AT TIME ZONE 'Europe/Paris'), count(*) "
        "FROM events WHERE occurred_at >= %s::date::timestamp AT TIME ZONE 'Europe/Paris' "
        "AND occurred_at < %s::date::timestamp AT TIME ZONE 'Europe/Paris' GROUP BY 1, 2, 3", (first, end)).fetchall()


def main() -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--year", type=int, default=2021)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--reuse-db", help="name of a bench database to reuse (kept)")
    args = parser.parse_args()
    dbname = args.reuse_db or f"geo_monitor_benchr_{os.getpid()}"
    settings = bench_settings(dbname)
    url = settings.database_url
    try:
        stored = prepare(settings, args.events, bool(args.reuse_db))
        first, end = date(args.year - 2, 1, 1), date(args.year + 1, 1, 1)
        with db.connect(settings) as conn:
            say("report")
            report_s, (html, _) = timed(args.repeat, report_html, conn, args.year, settings=settings)
            ours_s, _ = timed(args.repeat, monthly_totals, conn, first, end)
            base_s, _ = timed(args.repeat, baseline_totals, conn, first, end)
        size_mb = len(html.encode()) / 1e6
        print(f"code {code_revision()}; {stored:,} events stored; year {args.year}; median of {args.repeat}")
        print(f"{'what':<22}{'seconds':>10}{'MB':>8}")
        print(f"{'ours, report':<22}{report_s:>10.2f}{size_mb:>8.2f}   target < {TARGET_S:.0f} s, < {TARGET_MB:.0f} MB: "
              f"{'met' if report_s < TARGET_S and size_mb < TARGET_MB else 'MISSED'}")
        print(f"{'ours, totals':<22}{ours_s:>10.3f}")
        print(f"{'baseline, totals':<22}{base_s:>10.3f}   ratio baseline/ours {base_s / ours_s:.1f}x")
    finally:
        if not args.reuse_db:
            finish(settings, dbname, url, args.keep_db)


if __name__ == "__main__":
    main()
