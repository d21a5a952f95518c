"""The rollups held in memory per resolution, so a count sums array slices instead of asking PostgreSQL.

A count is a sum over rollup rows (``store.rollups``). At 10M events a two-year window at
resolution 11 sums some 600,000 of them: hundreds of milliseconds in PostgreSQL, a few in numpy.
Each process keeps, per resolution, both rollups ordered by category and period, read with
one binary COPY of a (category, period)'s cells per row, for one state of the rollups (``rollup_state``:
every ingest, rebuild or replacement changes it). A count first reads that state (one small
query, which also rebuilds stale rollups as ``ensure_fresh`` does); a level read for another
state is read again. A level whose rows would pass the memory budget (``count_memory_mb``,
per process) is left to SQL, and so is a level another thread is reading meanwhile.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date

import numpy as np
import psycopg

from geo_monitor import db
from geo_monitor.grid import ensure_population
from geo_monitor.store import events, rollups

# The keys start with the category: naming them all makes a resolution's rows a range per category.
_EVERY_CATEGORY = "category_id = ANY(ARRAY(SELECT id FROM categories))"
_DAY_2000 = date(2000, 1, 1)  # PostgreSQL's dates count days from here
_BYTES_PER_ROW = 12  # period, cell code, n (int32 each)
_STATE = ("SELECT (SELECT oid FROM pg_database WHERE datname = current_database()), last_batch_id, events, "
          "refreshed_at, (SELECT max(loaded_at) FROM reference_loads), "
          "last_batch_id >= (SELECT coalesce(max(id), 0) FROM ingest_batches) FROM rollup_state")


@dataclass(frozen=True)
class _Table:
    """One rollup at one resolution: rows by category and period, each category's rows a contiguous run."""

    periods: np.ndarray  # int32 days since 2000-01-01
    codes: np.ndarray  # int32 index of the row's cell in the level's cells
    n: np.ndarray  # int32
    runs: dict[int, tuple[int, int]]  # category id -> (first row, end row)


@dataclass(frozen=True)
class _Level:
    """Both rollups at one resolution, for one rollup state."""

    state: tuple
    cells: np.ndarray  # int64, sorted
    residents: np.ndarray  # float64, each cell's residents (hex_population; 0 outside the study grid)
    tables: dict[str, _Table]

    @property
    def nbytes(self) -> int:
        return self.cells.nbytes + self.residents.nbytes + sum(t.periods.nbytes + t.codes.nbytes + t.n.nbytes for t in self.tables.values())


class _Store:
    """The levels held by this process, least recently used first, within a byte budget."""

    def __init__(self) -> None:
        self.levels: OrderedDict[tuple, _Level] = OrderedDict()
        self.loading: set[tuple] = set()
        self.too_big: dict[tuple, tuple] = {}  # level key -> the state it was too big in
        self.lock = threading.Lock()

    def clear(self) -> None:
        with self.lock:
            self.levels.clear()
            self.too_big.clear()


_store = _Store()


def clear() -> None:
    """Forget every level held (tests; a process that wants its memory back)."""
    _store.clear()


def held_bytes() -> int:
    """Return the bytes this process holds in levels."""
    with _store.lock:
        return sum(level.nbytes for level in _store.levels.values())


def state(conn: psycopg.Connection) -> tuple:
    """Return the rollups' state (database, last batch, events, rebuilt at, reference loaded at).

    Stale rollups are rebuilt first, as ``rollups.ensure_fresh`` does.
    """
    *current, fresh = conn.execute(_STATE).fetchone()
    if not fresh:
        rollups.refresh(conn)
        *current, _ = conn.execute(_STATE).fetchone()
    return tuple(current)


def _days(day: date) -> int:
    return (day - _DAY_2000).days


def _read_table(conn: psycopg.Connection, table: str, resolution: int) -> tuple[np.ndarray, ...]:
    """Return (categories, periods, cells, n) of one rollup at one resolution, by category and period.

    A (category, period)'s cells come in one row (``events.copy_groups``), in no set order.
    The key's order gives the groups' order; a bitmap scan would need a sort.
    """
    period = rollups.TABLES[table]
    with conn.transaction(), db.local_settings(conn, {"enable_bitmapscan": "off"}):
        return events.copy_groups(
            conn, f"SELECT category_id, {period}, string_agg(int8send(cell), ''), string_agg(int4send(n), '') "
            f"FROM {table} WHERE {_EVERY_CATEGORY} AND resolution = {int(resolution)} "
            f"GROUP BY category_id, {period} ORDER BY category_id, {period}",
            keys=(">i2", ">i4"), packed=(">i8", ">i4"))


def _level_rows(conn: psycopg.Connection, resolution: int) -> int:
    return sum(conn.execute(f"SELECT count(*) FROM {table} WHERE {_EVERY_CATEGORY} AND resolution = %s",
                            (resolution,)).fetchone()[0]
               for table in rollups.TABLES)


def _load(conn: psycopg.Connection, resolution: int, current: tuple) -> _Level:
    raw = {table: _read_table(conn, table, resolution) for table in rollups.TABLES}
    cells = np.unique(np.concatenate([columns[2] for columns in raw.values()]))
    tables = {}
    for table, (cats, periods, row_cells, n) in raw.items():
        ids, firsts = np.unique(cats, return_index=True)  # sorted by category: each a contiguous run
        ends = np.append(firsts[1:], len(cats))
        runs = {int(c): (int(a), int(b)) for c, a, b in zip(ids, firsts, ends, strict=True)}
        tables[table] = _Table(periods, np.searchsorted(cells, row_cells).astype(np.int32), n, runs)
    residents = ensure_population(conn, resolution).reindex(cells, fill_value=0.0).to_numpy(np.float64)
    return _Level(current, cells, residents, tables)


def _level(conn: psycopg.Connection, resolution: int, budget_bytes: int) -> _Level | None:
    """Return the level of the rollups' current state, reading it if needed; None to ask SQL."""
    current = state(conn)
    key = (conn.info.host, conn.info.port, current[0], resolution)
    with _store.lock:
        level = _store.levels.get(key)
        if level is not None and level.state == current:
            _store.levels.move_to_end(key)
            return level
        if _store.too_big.get(key) == current or key in _store.loading:
            return None
        _store.loading.add(key)
    try:
        if _level_rows(conn, resolution) * _BYTES_PER_ROW > budget_bytes:
            with _store.lock:
                _store.too_big[key] = current
            return None
        level = _load(conn, resolution, current)
        if state(conn) != current:  # an ingest landed while reading: use these rows once, keep nothing
            return None
        with _store.lock:
            _store.levels[key] = level
            _store.levels.move_to_end(key)
            while sum(lv.nbytes for lv in _store.levels.values()) > budget_bytes and len(_store.levels) > 1:
                _store.levels.popitem(last=False)
        return level
    finally:
        with _store.lock:
            _store.loading.discard(key)


def counts(conn: psycopg.Connection, category: list[int], ranges: list[tuple[str, date, date]], resolution: int,
           budget_mb: float) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Return (cells sorted, counts, residents) of the non-empty cells over rollup ranges, or None to ask SQL.

    ``ranges`` are ``analysis.counts.rollup_ranges`` of a window: (table, first, end) with
    ``end`` exclusive. The sums are those of the SQL query, row for row.
    """
    if budget_mb <= 0:
        return None
    level = _level(conn, resolution, int(budget_mb * 1024 * 1024))
    if level is None:
        return None
    codes, weights = [], []
    for table, first, end in ranges:
        rows = level.tables[table]
        for cat in category:
            a, b = rows.runs.get(cat, (0, 0))
            lo, hi = a + np.searchsorted(rows.periods[a:b], [_days(first), _days(end)])
            codes.append(rows.codes[lo:hi])
            weights.append(rows.n[lo:hi])
    if not codes:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    sums = np.bincount(np.concatenate(codes), weights=np.concatenate(weights), minlength=len(level.cells))
    nonzero = np.flatnonzero(sums)  # every row has n >= 1, so a cell with rows has a sum above 0
    # float64 holds integers exactly up to 2**53
    return level.cells[nonzero], sums[nonzero].astype(np.int64), level.residents[nonzero]
