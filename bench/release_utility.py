"""Utility cost of the public release: what the privacy protection costs on the sample.

Run:  .venv/bin/python bench/release_utility.py [--events N] [--epsilons 0.5 1.0] [--ks 5 11 20] [--keep-db]

It makes N synthetic events (geo_monitor.store.sample, seed 42; 1,000,000 by default), creates its
own database ``geo_monitor_benchr_<pid>`` (migrations + reference layers), ingests them, and
then, for every month of the sample, runs the release's own path in memory (the month's rows
from the store, the OpenDP measurement, thresholds, secondary suppression and LP audit, with
the previous month's mask preferred) without storing anything or touching the ledger. One
noise draw per (epsilon, month) serves every k, so the k columns differ by k alone.

Per configuration it prints, over all months and incident groups:
  - share of incident events that lie in shown hexagons (and in shown arrondissement totals);
  - mean absolute error of the shown hexagon counts (and shown arrondissement totals) against
    the true counts;
  - hexagons shown per month, hexagons hidden only to protect others, mask changes per month.
The named baseline is the classic frequency rule on TRUE counts (hexagons with >= k events
shown exactly, zero error, no differential privacy): what a non-private release would show.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import psycopg
from common import finish, say  # noqa: E402 (bench/ is the script's folder)

from geo_monitor import db
from geo_monitor.privacy import noise
from geo_monitor.privacy.release import Layout, layout, month_rows, protect_month
from geo_monitor.settings import Settings
from geo_monitor.store import reference
from geo_monitor.store.ingest import ingest_file
from geo_monitor.store.sample import generate_sample

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"






def reference_dir() -> Path:
    return Path(os.environ.get("GEO_MONITOR_REFERENCE_DIR") or REPO.parent / "shared" / "data")


def months_of(conn: psycopg.Connection) -> list[date]:
    rows = conn.execute("SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'Europe/Paris')::date "
                        "FROM events WHERE kind_id IN (1, 2) ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def true_vectors(rows: list[str], frame: Layout) -> tuple[np.ndarray, np.ndarray]:
    """True counts in the measurement's own category order, from the same rows it reads."""
    index = {c: i for i, c in enumerate(frame.incident_categories())}
    outreach = {c: i for i, c in enumerate(frame.outreach_categories())}
    inc, out = np.zeros(len(index), dtype=np.int64), np.zeros(len(outreach), dtype=np.int64)
    for row in rows:
        if row in index:
            inc[index[row]] += 1
        elif row in outreach:
            out[outreach[row]] += 1
    return inc, out


class Tally:
    """Accumulates the utility figures of one configuration over months."""

    def __init__(self) -> None:
        self.events = self.in_shown = self.arr_events = self.arr_in_shown = 0
        self.abs_err: list[int] = []
        self.arr_abs_err: list[int] = []
        self.shown: list[int] = []
        self.secondary: list[int] = []
        self.changes: list[int] = []
        self.seconds: list[float] = []

    def add(self, true: np.ndarray, value: np.ndarray, shown: np.ndarray, secondary: int,
            true_arr: np.ndarray, value_arr: np.ndarray, shown_arr: np.ndarray) -> None:
        self.events += int(true.sum())
        self.in_shown += int(true[shown].sum())
        self.abs_err += np.abs(value[shown] - true[shown]).tolist()
        self.shown.append(int(shown.sum()))
        self.secondary.append(secondary)
        self.arr_events += int(true_arr.sum())
        self.arr_in_shown += int(true_arr[shown_arr].sum())
        self.arr_abs_err += np.abs(value_arr[shown_arr] - true_arr[shown_arr]).tolist()

    def row(self) -> tuple:
        mae = statistics.fmean(self.abs_err) if self.abs_err else float("nan")
        arr_mae = statistics.fmean(self.arr_abs_err) if self.arr_abs_err else float("nan")
        return (self.in_shown / self.events, mae, self.arr_in_shown / self.arr_events, arr_mae,
                statistics.fmean(self.shown), statistics.fmean(self.secondary),
                statistics.fmean(self.changes) if self.changes else 0.0)


def run(conn: psycopg.Connection, settings: Settings, epsilons: list[float], ks: list[int]) -> dict:
    frame = layout(conn, settings)
    months = months_of(conn)
    n, n_groups, n_arr = len(frame.cells), len(frame.groups), len(frame.codes)
    say(f"layout: {n} hexagons at resolution {frame.resolution}, {n_arr} arrondissements, "
        f"groups {', '.join(frame.groups)}; {len(months)} months")
    plans = {eps: noise.plan_noise(frame.incident_categories(), frame.outreach_categories(),
                                   contributions=settings.release_contributions, epsilon=eps,
                                   outreach_share=settings.release_outreach_share) for eps in epsilons}
    tallies: dict[tuple, Tally] = defaultdict(Tally)
    previous: dict[tuple, tuple[set, set]] = {}
    for first in months:
        rows, _ = month_rows(conn, first, frame, settings)
        true_inc, _ = true_vectors(rows, frame)
        true_arr = np.concatenate([np.bincount(frame.parent, weights=true_inc[g * n:(g + 1) * n],
                                               minlength=n_arr) for g in range(n_groups)]).astype(np.int64)
        for k in ks:  # the baseline: frequency rule on true counts
            shown = true_inc >= k
            tallies[("baseline", k)].add(true_inc, true_inc, shown, 0, true_arr, true_arr, true_arr >= k)
        for eps in epsilons:
            plan = plans[eps]
            measurement = noise.release_measurement(frame.incident_categories(), frame.outreach_categories(),
                                                    plan.scale_incidents, plan.scale_outreach)
            noisy_inc, noisy_out = noise.draw(measurement, rows)
            for k in ks:
                started = time.perf_counter()
                tables = protect_month(noisy_inc, noisy_out, frame, plan, k=k, delta=settings.release_display_delta,
                                       previous=previous.get((eps, k), (set(), set())))
                tally = tallies[(eps, k)]
                tally.seconds.append(time.perf_counter() - started)
                value = np.concatenate([tables[g].table.values[:n] for g in frame.groups])
                suppressed = np.concatenate([tables[g].protection.suppressed[:n] for g in frame.groups])
                value_arr = np.concatenate([tables[g].table.values[n:n + n_arr] for g in frame.groups])
                suppressed_arr = np.concatenate([tables[g].protection.suppressed[n:n + n_arr] for g in frame.groups])
                secondary = sum(int(tables[g].protection.secondary[:n].sum()) for g in frame.groups)
                tally.add(true_inc, value, ~suppressed, secondary, true_arr, value_arr, ~suppressed_arr)
                cells = {(g, c) for gi, g in enumerate(frame.groups)
                         for c in frame.cells[suppressed[gi * n:(gi + 1) * n]].tolist()}
                codes = [*frame.codes.tolist(), None]
                totals = {(g, codes[j]) for g in frame.groups
                          for j in np.flatnonzero(tables[g].protection.suppressed[n:]).tolist()}
                if (eps, k) in previous:
                    tally.changes.append(len(cells ^ previous[(eps, k)][0]))
                previous[(eps, k)] = (cells, totals)
        say(f"  {first:%Y-%m}: {len(rows):,} rows")
    return {"tallies": tallies, "plans": plans, "frame": frame, "months": months}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="N synthetic events (default 1,000,000)")
    parser.add_argument("--epsilons", type=float, nargs="+", default=[0.5, 1.0])
    parser.add_argument("--ks", type=int, nargs="+", default=[5, 11, 20])
    parser.add_argument("--keep-db", action="store_true", help="keep the bench database (and say its name)")
    args = parser.parse_args()
    server = os.environ.get("GEO_MONITOR_BENCH_SERVER") or DEFAULT_SERVER
    dbname = f"geo_monitor_benchr_{os.getpid()}"
    url = db.database_url(server, dbname)
    settings = Settings(database_url=url, reference_dir=reference_dir())
    workdir = Path(tempfile.mkdtemp(prefix="geo_monitor_benchr_"))
    csv_path = workdir / f"sample-{args.events}.csv"
    say(f"bench database {dbname}, work dir {workdir}")
    try:
        db.up(settings)
        with db.connect(settings) as conn:
            reference.load_reference(conn, settings)
            conn.commit()
            say(f"generating {args.events:,} synthetic events")
            generate_sample(csv_path, args.events, seed=42, settings=settings)
            say("ingesting")
            report = ingest_file(conn, csv_path, source="sample", settings=settings)
            conn.commit()
            say(f"  accepted {report.accepted:,} of {report.received:,}")
            result = run(conn, settings, args.epsilons, args.ks)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        finish(settings, dbname, url, args.keep_db)

    frame, months, plans, tallies = result["frame"], result["months"], result["plans"], result["tallies"]
    c, delta = settings.release_contributions, settings.release_display_delta
    print(f"geo_monitor release utility bench — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}")
    print(f"input: {report.accepted:,} events stored of {args.events:,} synthetic (geo_monitor.store.sample, seed 42); "
          f"{len(months)} months {months[0]:%Y-%m}..{months[-1]:%Y-%m}; resolution {frame.resolution}, "
          f"{len(frame.cells)} hexagons x {len(frame.groups)} incident groups; outreach by arrondissement")
    print(f"privacy unit: at most {c} event(s) per person and month; display delta {delta:g}; "
          f"outreach share of epsilon {settings.release_outreach_share:g}")
    for eps, plan in plans.items():
        taus = ", ".join(f"k={k}: tau={noise.display_threshold(k, plan.scale_incidents, 1, delta)}" for k in args.ks)
        print(f"  epsilon {eps:g}: incident scale b = {plan.scale_incidents:.4g} (eps {plan.epsilon_incidents:.3g}), "
              f"outreach b = {plan.scale_outreach:.4g}; hexagon thresholds {taus}")
    print()
    header = (f"{'configuration':<34} {'events in shown hex':>19} {'MAE shown hex':>13} {'events in shown arr':>19} "
              f"{'MAE shown arr':>13} {'hex shown/mo':>12} {'2ndary/mo':>9} {'mask chg/mo':>11} {'s/release':>9}")
    print(header)
    print("-" * len(header))
    for k in args.ks:
        share, mae, arr_share, arr_mae, shown, secondary, changes = tallies[("baseline", k)].row()
        print(f"{f'baseline: true counts >= {k} (not DP)':<34} {share:>19.1%} {mae:>13.2f} {arr_share:>19.1%} "
              f"{arr_mae:>13.2f} {shown:>12.1f} {'-':>9} {'-':>11} {'-':>9}")
    for eps in args.epsilons:
        for k in args.ks:
            tally = tallies[(eps, k)]
            share, mae, arr_share, arr_mae, shown, secondary, changes = tally.row()
            base = tallies[("baseline", k)].row()[0]
            print(f"{f'DP release: epsilon {eps:g}, k {k}':<34} {share:>19.1%} {mae:>13.2f} {arr_share:>19.1%} "
                  f"{arr_mae:>13.2f} {shown:>12.1f} {secondary:>9.1f} {changes:>11.1f} "
                  f"{statistics.median(tally.seconds):>9.3f}")
            print(f"{'':<34} {f'({share / base:.0%} of baseline)':>19}")
    print()
    print("events in shown hex: incident events lying in hexagons whose count is shown, over all months and groups;")
    print("MAE: mean |shown count - true count| over shown hexagons (arr: shown arrondissement totals); the noise")
    print("  has sd sqrt(2t)/(1-t) per hexagon and totals sum the noise of all their hexagons;")
    print("2ndary: hexagons hidden only to protect others; mask chg: hexagons changing shown/hidden from the month")
    print("  before; s/release: thresholds + secondary suppression + LP audit of one month (noise draw excluded).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
