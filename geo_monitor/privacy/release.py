"""The public release: an immutable, versioned snapshot of one calendar month.

``create_release`` counts the month's events on a fixed, data-independent list of hexagons
(incidents, by public group) and arrondissements (outreach), adds OpenDP discrete Laplace
noise to every count (:mod:`geo_monitor.privacy.noise`), shows a count only when its noisy value
reaches its display threshold, adds secondary suppression and audits it by LP
(:mod:`geo_monitor.privacy.disclosure`), records the privacy loss in the ledger and stores the
result. A repeat request returns the stored numbers and spends nothing. The read side
(``get_release``, ``rolling_view``, ``Release``) lives in :mod:`geo_monitor.privacy.releases`.
See docs/privacy.md.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, timedelta
from importlib.metadata import version as package_version

import numpy as np
import psycopg
import shapely
import shapely.geometry

from geo_monitor import hexagons
from geo_monitor.calendar import Window, next_month, parse_month
from geo_monitor.errors import InvalidArgumentError, NotFoundError
from geo_monitor.grid import study_grid
from geo_monitor.privacy import ledger, noise
from geo_monitor.privacy.disclosure import ProtectedTable, protect_noisy
from geo_monitor.privacy.releases import (
    Release,
    load_release,
)
from geo_monitor.settings import Settings, get_settings
from geo_monitor.store.reference import require_loaded
from geo_monitor.store.vocabulary import category_ids, public_groups

RELEASE_LOCK = (7171, 3)
OUTREACH_LABEL = noise.OUTREACH  # the outreach group, shown by arrondissement only
MECHANISM = "OpenDP {version}: count_by_categories >> laplace (discrete Laplace), composition of 2 queries"


@dataclass(frozen=True)
class Layout:
    """The public, data-independent frame of a release: hexagons, their arrondissement, groups."""

    resolution: int
    cells: np.ndarray  # int64, sorted: the study grid
    arrondissement: np.ndarray  # INSEE code of each cell
    codes: np.ndarray  # the study arrondissements, sorted
    groups: tuple[str, ...]  # public incident groups

    @property
    def parent(self) -> np.ndarray:
        """Index in ``codes`` of each cell's arrondissement."""
        return np.searchsorted(self.codes, self.arrondissement)

    def incident_categories(self) -> list[str]:
        """Return the incident query's categories, ``group|h3``, group-major."""
        return [f"{group}|{cell:x}" for group in self.groups for cell in self.cells.tolist()]

    def outreach_categories(self) -> list[str]:
        """Return the outreach query's categories, ``outreach|INSEE code``."""
        return [f"outreach|{code}" for code in self.codes.tolist()]


def layout(conn: psycopg.Connection, settings: Settings | None = None, *, resolution: int | None = None) -> Layout:
    """Return the release layout: the study grid at the release resolution, each cell in one arrondissement.

    ``resolution`` gives the same fixed partition at another resolution (the police outreach tables).

    A cell belongs to the study arrondissement holding its centre; a cell whose centre lies
    outside all of them goes to the one it overlaps most (then to the nearest).
    """
    settings = settings or get_settings()
    resolution = resolution or settings.release_resolution
    if not 7 <= resolution <= 11:
        raise InvalidArgumentError(f"release_resolution must lie between 7 and 11, got {resolution}")
    require_loaded(conn)
    rows = conn.execute(
        "SELECT a.code, ST_AsBinary(a.geom) FROM arrondissements a, study_area s WHERE a.code = ANY(s.codes) "
        "ORDER BY a.code"
    ).fetchall()
    codes = np.array([r[0] for r in rows], dtype=np.int64)
    shapes = shapely.from_wkb([r[1] for r in rows])
    cells = study_grid(conn, resolution)
    lat, lng = hexagons.cells_to_latlng(cells)
    owner = np.full(len(cells), -1)
    for i, shape in enumerate(shapes):
        owner[(owner < 0) & shapely.contains_xy(shape, lng, lat)] = i
    for j in np.flatnonzero(owner < 0):
        polygon = hexagons.cells_to_polygons(cells[j:j + 1])[0]
        overlap = shapely.area(shapely.intersection(shapes, polygon))
        owner[j] = int(np.argmax(overlap)) if overlap.max() > 0 else int(np.argmin(shapely.distance(shapes, polygon)))
    used = np.unique(owner)
    groups = dict.fromkeys(g for (kind, _), g in public_groups(settings).items() if kind == "incident")
    return Layout(resolution, cells, codes[owner], codes[used], tuple(groups))


def month_rows(conn: psycopg.Connection, first: date, frame: Layout,
               settings: Settings | None = None) -> tuple[list[str], int]:
    """Return the month's rows for the release measurement (one per event) and the number of events.

    Incidents become ``group|h3`` at the release resolution (``h3_parent`` of the stored fine
    cell), outreach events ``outreach|INSEE code`` of their cell's arrondissement.
    """
    settings = settings or get_settings()
    groups = public_groups(settings)
    ids = category_ids(conn)
    label = {cid: (groups[key] if key[0] == "incident" else OUTREACH_LABEL)
             for key, cid in ids.items() if key[0] in ("incident", "outreach") and key in groups}
    window = Window(first, next_month(first))
    found = conn.execute(
        "SELECT category_id, h3_parent(h3_r11, %s) FROM events WHERE category_id = ANY(%s) "
        "AND occurred_at >= %s AND occurred_at < %s",
        (frame.resolution, sorted(label), window.instant(window.start), window.instant(window.end)),
    ).fetchall()
    if not found:
        return [], 0
    category, cell = (np.array(c, dtype=np.int64) for c in zip(*found, strict=True))
    position = np.clip(np.searchsorted(frame.cells, cell), 0, len(frame.cells) - 1)
    inside = frame.cells[position] == cell
    arrondissement = frame.arrondissement[position]
    rows = [f"{OUTREACH_LABEL}|{a}" if label[c] == OUTREACH_LABEL else f"{label[c]}|{h:x}"
            for c, h, a in zip(category[inside].tolist(), cell[inside].tolist(),
                               arrondissement[inside].tolist(), strict=True)]
    return rows, len(found)


def protect_month(noisy_incidents: np.ndarray, noisy_outreach: np.ndarray, frame: Layout, plan: noise.NoisePlan,
                  *, k: int, delta: float,
                  previous: tuple[set, set] = (set(), set())) -> dict[str, ProtectedTable]:
    """Return the protected tables of a month: one per incident group, and outreach.

    ``previous`` holds the suppressed ``(group, cell)`` and ``(group, arrondissement or None)``
    of the previous month's release: secondary suppression picks them first, so the mask
    stays stable from month to month where it can.
    """
    old_cells, old_totals = previous
    n, parent = len(frame.cells), frame.parent
    codes = frame.codes.tolist()
    tables = {}
    for g, group in enumerate(frame.groups):
        prefer = np.array([(group, c) in old_cells for c in frame.cells.tolist()]
                          + [(group, a) in old_totals for a in [*codes, None]])
        tables[group] = protect_noisy(noisy_incidents[g * n:(g + 1) * n], parent, len(codes),
                                      scale=plan.scale_incidents, k=k, delta=delta, prefer=prefer)
    prefer = np.array([(OUTREACH_LABEL, a) in old_totals for a in [*codes, None]])
    tables[OUTREACH_LABEL] = protect_noisy(noisy_outreach, scale=plan.scale_outreach, k=k, delta=delta,
                                           prefer=prefer)
    return tables


def create_release(conn: psycopg.Connection, month: str | date, *, new_version: bool = False,
                   settings: Settings | None = None) -> Release:
    """Create (or return the stored) public release of a whole past calendar month.

    A repeat request returns the stored release (same numbers, no privacy loss), whatever
    the current settings; ``new_version=True`` makes version n+1 with the current settings
    and spends the budget again.

    Raises
    ------
    InvalidArgumentError
        The month is malformed, current or in the future.
    PrivacyBudgetError
        The release would exceed the month's or the year's privacy budget.
    NotFoundError
        No incident or outreach event is stored for the month.
    DisclosureError
        Secondary suppression could not pass its audit (nothing is stored).
    """
    settings = settings or get_settings()
    first = parse_month(month)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", RELEASE_LOCK)
        latest = conn.execute("SELECT max(version) FROM releases WHERE month = %s", (first,)).fetchone()[0]
        if latest and not new_version:
            return load_release(conn, first, latest, settings=settings, created=False)
        ledger.check_budget(conn, first, settings.release_epsilon, settings)
        frame = layout(conn, settings)
        rows, n_events = month_rows(conn, first, frame, settings)
        if not n_events:
            raise NotFoundError(f"no incident or outreach event is stored for {first:%Y-%m}: ingest the month's data "
                                "first (a release is immutable and spends privacy budget)")
        incident_categories, outreach_categories = frame.incident_categories(), frame.outreach_categories()
        plan = noise.plan_noise(incident_categories, outreach_categories, contributions=settings.release_contributions,
                                epsilon=settings.release_epsilon, outreach_share=settings.release_outreach_share)
        measurement = noise.release_measurement(incident_categories, outreach_categories,
                                                plan.scale_incidents, plan.scale_outreach)
        noisy_incidents, noisy_outreach = noise.draw(measurement, rows)
        del rows
        tables = protect_month(noisy_incidents, noisy_outreach, frame, plan, k=settings.release_k,
                               delta=settings.release_display_delta, previous=_previous_mask(conn, first))
        release_id = _store(conn, first, (latest or 0) + 1, frame, plan, tables, settings)
        ledger.record(conn, release_id, first, plan)
    return load_release(conn, first, (latest or 0) + 1, settings=settings, created=True)


def _previous_mask(conn: psycopg.Connection, first: date) -> tuple[set, set]:
    """Return the suppressed cells and totals of the latest release of the month before."""
    before = (first - timedelta(days=1)).replace(day=1)
    row = conn.execute("SELECT id FROM releases WHERE month = %s ORDER BY version DESC LIMIT 1", (before,)).fetchone()
    if row is None:
        return set(), set()
    cells = conn.execute("SELECT grp, cell FROM release_cells WHERE release_id = %s AND suppressed", row).fetchall()
    totals = conn.execute("SELECT grp, arrondissement FROM release_totals WHERE release_id = %s AND suppressed",
                          row).fetchall()
    return set(cells), set(totals)


def _reason(protected: ProtectedTable) -> list[str | None]:
    p = protected.protection
    return [("primary" if prim else "secondary") if sup else None
            for sup, prim in zip(p.suppressed.tolist(), p.primary.tolist(), strict=True)]


def _store(conn: psycopg.Connection, first: date, version: int, frame: Layout, plan: noise.NoisePlan,
           tables: dict[str, ProtectedTable], settings: Settings) -> int:
    """Insert the release and its rows; return its id."""
    tau = noise.display_threshold(settings.release_k, plan.scale_incidents, 1, settings.release_display_delta)
    release_id = conn.execute(
        "INSERT INTO releases (month, version, resolution, k, tau, display_delta, epsilon, epsilon_incidents, "
        "epsilon_outreach, contributions, scale_incidents, scale_outreach, mechanism) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (first, version, frame.resolution, settings.release_k, tau, settings.release_display_delta, plan.epsilon,
         plan.epsilon_incidents, plan.epsilon_outreach, plan.contributions, plan.scale_incidents,
         plan.scale_outreach, MECHANISM.format(version=package_version('opendp'))),
    ).fetchone()[0]
    cells, totals = io.StringIO(), []
    for group, protected in tables.items():
        values, reasons = protected.table.values.tolist(), _reason(protected)
        leaves = 0 if group == OUTREACH_LABEL else len(frame.cells)  # outreach: arrondissements only
        for i in range(leaves):
            row = (release_id, group, frame.cells[i], frame.arrondissement[i], r"\N" if reasons[i] else values[i],
                   bool(reasons[i]), reasons[i] or r"\N")
            cells.write("\t".join(map(str, row)) + "\n")
        totals += [(release_id, group, key, None if reasons[j] else values[j], bool(reasons[j]), reasons[j],
                    int(protected.thresholds[j]))
                   for j, key in enumerate([*frame.codes.tolist(), None], start=leaves)]
    with conn.cursor() as cur:
        with cur.copy("COPY release_cells (release_id, grp, cell, arrondissement, value, suppressed, reason) "
                      "FROM STDIN") as copy:
            copy.write(cells.getvalue())
        cur.executemany("INSERT INTO release_totals (release_id, grp, arrondissement, value, suppressed, reason, "
                        "threshold) VALUES (%s, %s, %s, %s, %s, %s, %s)", totals)
    window = Window(first, next_month(first))
    conn.execute(
        "INSERT INTO release_works (release_id, site_id, purpose, starts_on, ends_on, geom) "
        "SELECT %s, w.id, w.purpose, (w.starts_at AT TIME ZONE 'Europe/Paris')::date, "
        "(w.ends_at AT TIME ZONE 'Europe/Paris')::date, w.geom FROM works_sites w, study_area s "
        "WHERE w.starts_at < %s AND (w.ends_at IS NULL OR w.ends_at >= %s) AND ST_Intersects(w.geom, s.geom)",
        (release_id, window.instant(window.end), window.instant(window.start)),
    )
    return release_id


