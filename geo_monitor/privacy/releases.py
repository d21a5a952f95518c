"""The public release, read side: stored monthly releases and the 12-month view.

Everything here only reads what ``geo_monitor.privacy.release.create_release`` stored; the API's
public endpoints and the public map use nothing else. See docs/privacy.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import psycopg
import shapely
import shapely.geometry

from geo_monitor import hexagons
from geo_monitor.calendar import parse_month
from geo_monitor.errors import InvalidArgumentError, NotFoundError
from geo_monitor.privacy import ledger
from geo_monitor.settings import Settings, get_settings


def get_release(conn: psycopg.Connection, month: str | date, version: int | None = None,
                settings: Settings | None = None) -> Release:
    """Return a stored release (the latest version unless ``version`` is given); never creates one."""
    first = parse_month(month)
    latest = conn.execute("SELECT max(version) FROM releases WHERE month = %s", (first,)).fetchone()[0]
    if latest is None:
        raise NotFoundError(f"no release of {first:%Y-%m} exists yet: run `geo-monitor release --month {first:%Y-%m}`")
    return load_release(conn, first, version or latest, settings=settings, created=False)


def list_releases(conn: psycopg.Connection) -> list[dict]:
    """Return every released month with its latest version and the method's parameters (newest first)."""
    rows = conn.execute(
        "SELECT DISTINCT ON (month) month, version, resolution, k, tau, epsilon, contributions FROM releases "
        "ORDER BY month DESC, version DESC").fetchall()
    keys = ("month", "version", "resolution", "k", "tau", "epsilon", "contribution_bound")
    return [dict(zip(keys, (f"{r[0]:%Y-%m}", *r[1:]), strict=True)) for r in rows]


def rolling_view(conn: psycopg.Connection, month: str | date, settings: Settings | None = None) -> Release:
    """Return the 12-month view ending with ``month``, built only from the 12 stored monthly releases.

    A hexagon or total is shown only when it is shown in all 12 months (its value is then
    the sum of the 12 published values), so the view adds nothing that the monthly releases
    do not already publish: no subtraction of two views or of a view and a month can reveal
    a suppressed month.
    """
    last = parse_month(month)
    months = [last]
    while len(months) < 12:
        months.insert(0, (months[0] - timedelta(days=1)).replace(day=1))
    found = dict(conn.execute(
        "SELECT month, max(version) FROM releases WHERE month = ANY(%s) GROUP BY month", (months,)).fetchall())
    missing = [f"{m:%Y-%m}" for m in months if m not in found]
    if missing:
        raise NotFoundError(f"the 12-month view ending {last:%Y-%m} needs a release of every month; "
                            f"missing: {', '.join(missing)} (run `geo-monitor release --month` for each)")
    releases = [load_release(conn, m, found[m], settings=settings, created=False) for m in months]
    return _rolling(releases)


# --- the read side -----------------------------------------------------------------------------

METHOD_URL = "/method"  # served with the map: docs/public_method.fr.md and docs/public_method.en.md
PUBLIC_PROPERTIES = ("h3", "group", "value", "suppressed", "arrondissement")


@dataclass
class Release:
    """A stored monthly release, or a 12-month view built from 12 of them (``months`` set).

    ``cells`` and ``totals`` hold ``reason`` (primary/secondary) for engineers; the public
    frames and the GeoJSON never include it.
    """

    month: date
    version: int | None
    resolution: int
    k: int
    tau: int
    display_delta: float
    epsilon: float
    contributions: int
    cells: pd.DataFrame  # group, cell, arrondissement, value (Int64, NA if suppressed), suppressed, reason
    totals: pd.DataFrame  # group, arrondissement (Int64, NA = study area), value, suppressed, reason, threshold
    works: pd.DataFrame  # site_id, purpose, starts_on, ends_on, geometry (WKB)
    id: int | None = None
    created_at: datetime | None = None
    scales: dict[str, float] | None = None
    epsilons: dict[str, float] | None = None
    months: tuple[date, ...] = ()
    budget: ledger.Budget | None = None
    created: bool = False

    @property
    def label(self) -> str:
        """``2021-03 v1`` or ``2020-04..2021-03 (12 months)``."""
        if self.months:
            return f"{self.months[0]:%Y-%m}..{self.months[-1]:%Y-%m} (12 months)"
        return f"{self.month:%Y-%m} v{self.version}"

    def cells_frame(self) -> gpd.GeoDataFrame:
        """Return the public hexagons: group, h3, arrondissement, value (NA when not shown), suppressed, geometry."""
        frame = self.cells.drop(columns=["reason"], errors="ignore").copy()
        frame.insert(1, "h3", [f"{c:x}" for c in frame.pop("cell").tolist()])
        return gpd.GeoDataFrame(frame[["group", "h3", "arrondissement", "value", "suppressed"]],
                                geometry=hexagons.cells_to_polygons(self.cells["cell"].to_numpy()), crs="EPSG:4326")

    def totals_frame(self) -> pd.DataFrame:
        """Return the public totals: group, arrondissement (NA = study area), value, suppressed, threshold."""
        return self.totals[["group", "arrondissement", "value", "suppressed", "threshold"]].copy()

    def works_frame(self) -> gpd.GeoDataFrame:
        """Return the works sites active during the month (public data, shown as published)."""
        frame = self.works.drop(columns=["geometry"])
        return gpd.GeoDataFrame(frame, geometry=shapely.from_wkb(self.works["geometry"].tolist()), crs="EPSG:4326")

    def metadata(self) -> dict:
        """Return what a reader needs to interpret the numbers (no data, only the method's parameters)."""
        return {
            "month": f"{self.month:%Y-%m}", "version": self.version,
            "months": [f"{m:%Y-%m}" for m in self.months] or None,
            "resolution": self.resolution, "k": self.k, "tau": self.tau, "display_delta": self.display_delta,
            "epsilon": self.epsilon, "contribution_bound": self.contributions,
            "privacy_unit": f"at most {self.contributions} event(s) of one person in one month"
                            + (" (with no person identifier the unit is one event)" if self.contributions == 1 else ""),
            "not_shown": f"a hexagon is shown from a protected count of {self.tau}; others are not shown (few events)",
            "method_url": METHOD_URL,
        }

    def to_geojson(self) -> dict:
        """Return a FeatureCollection of the hexagons with only the public properties.

        Two foreign members: ``metadata`` and ``totals`` (arrondissement and study-area totals
        per group, outreach included: ``group``, ``arrondissement`` or null, ``value`` or null,
        ``suppressed``).
        """
        frame = self.cells_frame()
        features = [
            {"type": "Feature", "geometry": shapely.geometry.mapping(geometry),
             "properties": {"h3": h, "group": g, "value": None if s else int(v), "suppressed": bool(s),
                            "arrondissement": int(a)}}
            for h, g, v, s, a, geometry in zip(frame["h3"], frame["group"], frame["value"], frame["suppressed"],
                                               frame["arrondissement"], frame.geometry, strict=True)
        ]
        totals = [{"group": g, "arrondissement": None if pd.isna(a) else int(a), "value": None if s else int(v),
                   "suppressed": bool(s)}
                  for g, a, v, s in self.totals[["group", "arrondissement", "value", "suppressed"]].itertuples(index=False)]
        return {"type": "FeatureCollection", "features": features, "metadata": self.metadata(), "totals": totals}

    def summary(self) -> list[str]:
        """Return the lines the CLI prints: what is shown per group, loss spent, budget left."""
        if self.months:
            state = "built from the 12 stored monthly releases (no new privacy loss)"
        else:
            state = "created" if self.created else "stored (a repeat request: same numbers, no privacy loss spent)"
        split = f" (incidents {self.epsilons['incidents']:g}, outreach {self.epsilons['outreach']:g})" \
            if self.epsilons else ""
        lines = [f"release {self.label}: {state}",
                 f"  resolution {self.resolution}, k = {self.k}; a hexagon is shown when its protected count reaches "
                 f"{self.tau} (a true 1..{self.k - 1} gets there with probability <= {self.display_delta:g})",
                 f"  privacy loss epsilon = {self.epsilon:g}{split} for at most {self.contributions} event(s) "
                 "per person and month" + (" (one event is the unit: no person key)" if self.contributions == 1 else "")]
        for group, totals in self.totals.groupby("group", sort=False):
            cells = self.cells[self.cells["group"] == group]
            arrs = totals[totals["arrondissement"].notna()]
            study = totals.loc[totals["arrondissement"].isna(), "value"].iloc[0]
            hexes = "" if cells.empty else (
                f"hexagons shown {int((~cells['suppressed']).sum())} of {len(cells)} "
                f"({int((cells['reason'] == 'secondary').sum())} hidden to protect others); ")
            lines.append(f"  {group:<13} {hexes}arrondissements shown {int((~arrs['suppressed']).sum())} of "
                         f"{len(arrs)}; study area {'not shown' if pd.isna(study) else int(study)}")
        if not self.months:
            lines.append(f"  works sites active: {len(self.works)}")
        if self.budget:
            b = self.budget
            lines.append(f"  privacy budget: {b.month:%Y-%m} spent {b.spent_month:g} of {b.budget_month:g} "
                         f"(left {b.left_month:g}); year {b.month.year} spent {b.spent_year:g} of {b.budget_year:g} "
                         f"(left {b.left_year:g})")
        return lines


def load_release(conn: psycopg.Connection, first: date, version: int, *, settings: Settings | None = None,
                 created: bool = False) -> Release:
    """Read a stored release."""
    settings = settings or get_settings()
    row = conn.execute(
        "SELECT id, resolution, k, tau, display_delta, epsilon, contributions, created_at, scale_incidents, "
        "scale_outreach, epsilon_incidents, epsilon_outreach FROM releases WHERE month = %s AND version = %s",
        (first, version),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"release {first:%Y-%m} v{version} does not exist")
    rid = row[0]
    cells = pd.DataFrame(conn.execute(
        "SELECT grp, cell, arrondissement, value, suppressed, reason FROM release_cells WHERE release_id = %s "
        "ORDER BY grp, cell", (rid,)).fetchall(),
        columns=["group", "cell", "arrondissement", "value", "suppressed", "reason"])
    totals = pd.DataFrame(conn.execute(
        "SELECT grp, arrondissement, value, suppressed, reason, threshold FROM release_totals WHERE release_id = %s "
        "ORDER BY grp, arrondissement NULLS LAST", (rid,)).fetchall(),
        columns=["group", "arrondissement", "value", "suppressed", "reason", "threshold"])
    works = pd.DataFrame(conn.execute(
        "SELECT site_id, purpose, starts_on, ends_on, ST_AsBinary(geom) FROM release_works WHERE release_id = %s "
        "ORDER BY site_id", (rid,)).fetchall(), columns=["site_id", "purpose", "starts_on", "ends_on", "geometry"])
    for frame in (cells, totals):
        frame["value"] = frame["value"].astype("Int64")
        frame["arrondissement"] = frame["arrondissement"].astype("Int64")
    cells["cell"] = cells["cell"].astype(np.int64)
    return Release(month=first, version=version, resolution=row[1], k=row[2], tau=row[3], display_delta=row[4],
                   epsilon=row[5], contributions=row[6], cells=cells, totals=totals, works=works, id=rid,
                   created_at=row[7], scales={"incidents": row[8], "outreach": row[9]},
                   epsilons={"incidents": row[10], "outreach": row[11]},
                   budget=ledger.budget(conn, first, settings), created=created)


def _rolling(releases: list[Release]) -> Release:
    """Combine 12 monthly releases: shown only where shown every month, as the sum of the 12 values."""
    if len({r.resolution for r in releases}) > 1:
        raise InvalidArgumentError("the 12 monthly releases use different resolutions: no 12-month view")

    def combine(frames: list[pd.DataFrame], keys: list[str], **extra: tuple[str, str]) -> pd.DataFrame:
        grouped = pd.concat(frames, ignore_index=True).groupby(keys, dropna=False, sort=False)
        out = grouped.agg(shown=("suppressed", lambda s: int((~s).sum())), total=("value", "sum"), **extra)
        out = out.reset_index()
        out["suppressed"] = out.pop("shown") < len(frames)
        out["value"] = out.pop("total").astype("Int64").mask(out["suppressed"])
        out["reason"] = None
        return out

    cells = combine([r.cells for r in releases], ["group", "cell"], arrondissement=("arrondissement", "last"))
    totals = combine([r.totals for r in releases], ["group", "arrondissement"], threshold=("threshold", "sum"))
    last = releases[-1]
    return Release(month=last.month, version=None, resolution=last.resolution, k=max(r.k for r in releases),
                   tau=max(r.tau for r in releases), display_delta=max(r.display_delta for r in releases),
                   epsilon=sum(r.epsilon for r in releases), contributions=min(r.contributions for r in releases),
                   cells=cells[["group", "cell", "arrondissement", "value", "suppressed", "reason"]],
                   totals=totals[["group", "arrondissement", "value", "suppressed", "reason", "threshold"]],
                   works=last.works.iloc[0:0], months=tuple(r.month for r in releases))
