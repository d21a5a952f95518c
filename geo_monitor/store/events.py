"""Writing prepared events: PostgreSQL binary COPY built with numpy, and store look-ups.

The COPY buffer is built column-wise from fixed-width numpy records, so preparing a
million rows costs milliseconds and the server parses no text.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import psycopg

from geo_monitor.errors import AccessDeniedError
from geo_monitor.store.validate import Prepared

COPY_COLUMNS = (
    "kind_id", "category_id", "occurred_at", "ends_at", "geom",
    "h3_r7", "h3_r8", "h3_r9", "h3_r10", "h3_r11",
    "arrondissement", "quartier", "source_id", "external_hash", "batch_id",
)
COPY_SQL = f"COPY events ({', '.join(COPY_COLUMNS)}) FROM STDIN (FORMAT BINARY)"
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" * 2
TRAILER = b"\xff\xff"
EWKB_POINT_SRID = 0x20000001  # little-endian EWKB point with an SRID
_COPY_BLOCK = 1 << 25  # bytes of COPY data parsed at a time


def copy_out(conn: psycopg.Connection, statement: str, row: np.dtype,
             keep: Callable[[np.ndarray], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Run a binary ``COPY ... TO STDOUT`` of fixed-width rows and return ``keep``'s columns, concatenated.

    ``row`` is the tuple layout (no NULLs); ``keep`` turns a block of rows into the columns
    wanted, so the client holds those columns, never the whole COPY stream.
    """
    parts, buffer, skip = [], bytearray(), len(SIGNATURE)  # the header is SIGNATURE
    with conn.cursor() as cur, cur.copy(statement) as copy:
        for block in copy:
            buffer += block
            if len(buffer) - skip >= _COPY_BLOCK:
                rows = (len(buffer) - skip) // row.itemsize
                parts.append(keep(np.frombuffer(bytes(buffer[skip:skip + rows * row.itemsize]), row)))
                del buffer[:skip + rows * row.itemsize]
                skip = 0
    rows = (len(buffer) - skip - len(TRAILER)) // row.itemsize
    parts.append(keep(np.frombuffer(bytes(buffer[skip:skip + rows * row.itemsize]), row)))
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def _row_dtype(with_end: bool) -> np.dtype:
    """Return the fixed-width binary COPY tuple layout (length-prefixed, big-endian fields)."""
    fields = [("nfields", ">i2"), ("l_kind", ">i4"), ("kind", ">i2"), ("l_cat", ">i4"), ("cat", ">i2"),
              ("l_at", ">i4"), ("at", ">i8"), ("l_end", ">i4")]
    if with_end:
        fields.append(("end", ">i8"))
    fields += [("l_geom", ">i4"), ("byte_order", "u1"), ("geom_type", "<u4"), ("srid", "<u4"),
               ("x", "<f8"), ("y", "<f8")]
    for r in (7, 8, 9, 10, 11):
        fields += [(f"l_h{r}", ">i4"), (f"h{r}", ">i8")]
    fields += [("l_arr", ">i4"), ("arr", ">i4"), ("l_q", ">i4"), ("q", ">i4"), ("l_src", ">i4"), ("src", ">i4"),
               ("l_hash", ">i4"), ("hash", ">u8", (2,)), ("l_batch", ">i4"), ("batch", ">i8")]
    return np.dtype(fields)


def _fill(rows: np.ndarray, p: Prepared, source_ids: np.ndarray, batch_id: int, with_end: bool) -> None:
    rows["nfields"] = len(COPY_COLUMNS)
    sizes = {"l_kind": 2, "l_cat": 2, "l_at": 8, "l_geom": 25, "l_arr": 4, "l_q": 4, "l_src": 4,
             "l_hash": 16, "l_batch": 8, **{f"l_h{r}": 8 for r in (7, 8, 9, 10, 11)}}
    for name, size in sizes.items():
        rows[name] = size
    rows["kind"], rows["cat"], rows["at"] = p.kind_id, p.category_id, p.occurred_us
    rows["l_end"] = 8 if with_end else -1
    if with_end:
        rows["end"] = p.ends_us
    rows["byte_order"], rows["geom_type"], rows["srid"] = 1, EWKB_POINT_SRID, 4326
    rows["x"], rows["y"] = p.lon, p.lat
    for i, r in enumerate((7, 8, 9, 10, 11)):
        rows[f"h{r}"] = p.cells[:, i]
    rows["arr"], rows["q"], rows["src"] = p.arrondissement, p.quartier, source_ids
    rows["hash"] = p.external_hash
    rows["batch"] = batch_id


def copy_buffer(p: Prepared, source_ids: np.ndarray, batch_id: int) -> bytes:
    """Return a complete binary COPY stream (signature, tuples, trailer) for the rows.

    Rows go in (category, time) order, so the (category_id, occurred_at) index grows at
    few places instead of at random ones.
    """
    order = np.lexsort((p.occurred_us, p.category_id))
    p, source_ids = p.take(order), source_ids[order]
    parts = [SIGNATURE]
    has_end = p.ends_us >= 0
    for with_end, mask in ((False, ~has_end), (True, has_end)):
        if mask.any():
            subset = p.take(mask)
            rows = np.zeros(len(subset), dtype=_row_dtype(with_end))
            _fill(rows, subset, source_ids[mask], batch_id, with_end)
            parts.append(rows.tobytes())
    parts.append(TRAILER)
    return b"".join(parts)


def write_events(conn: psycopg.Connection, buffer: bytes) -> None:
    """COPY a prepared binary buffer into events."""
    with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
        for start in range(0, len(buffer), 1 << 24):
            copy.write(buffer[start:start + (1 << 24)])


def source_ids(conn: psycopg.Connection, names: list[str], team: str | None = None) -> dict[str, int]:
    """Return the id of each source name, creating the missing ones (owned by ``team``).

    A source that already belongs to another team is refused: a team never writes
    into another team's records.
    """
    conn.execute(
        "INSERT INTO sources (name, team) SELECT unnest(%s::text[]), %s ON CONFLICT (name) DO NOTHING",
        (names, team),
    )
    rows = conn.execute("SELECT name, id, team FROM sources WHERE name = ANY(%s)", (names,)).fetchall()
    if team is not None:
        foreign = sorted(name for name, _, owner in rows if owner != team)
        if foreign:
            raise AccessDeniedError(f"source(s) {', '.join(foreign)} belong to another team")
    return {name: sid for name, sid, _ in rows}


def stored_hashes(conn: psycopg.Connection, source_id: int, hashes: np.ndarray, batch_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Return masks of the hashes already stored by earlier batches, and by this batch.

    One probe of the unique index per hash (a LATERAL look-up with LIMIT 1 cannot become a
    hash join over all stored events), with sequential and bitmap scans off: right after a
    TRUNCATE the planner believes the table empty and would otherwise scan it per hash. The
    probes go in the index's order, so they walk its pages once instead of at random: at 10M
    events, 500,000 probes took 1.4 s instead of 3.3-4.3 s.
    """
    order = np.lexsort((hashes[:, 1], hashes[:, 0]))  # bytea compares as big-endian bytes
    blob = np.ascontiguousarray(hashes[order].astype(">u8")).tobytes()
    conn.execute("SELECT set_config('enable_seqscan', 'off', true), set_config('enable_bitmapscan', 'off', true)")
    rows = conn.execute(
        """SELECT h.i, m.same
           FROM (SELECT i, substring(%(blob)s::bytea FROM i * 16 + 1 FOR 16) AS hash
                 FROM generate_series(0, %(n)s - 1) AS i) AS h
           CROSS JOIN LATERAL (SELECT e.batch_id = %(batch)s AS same FROM events e
                               WHERE e.source_id = %(source)s AND e.external_hash = h.hash LIMIT 1) AS m""",
        {"blob": blob, "n": len(hashes), "source": source_id, "batch": batch_id},
    ).fetchall()
    conn.execute("SELECT set_config('enable_seqscan', 'on', true), set_config('enable_bitmapscan', 'on', true)")
    earlier = np.zeros(len(hashes), dtype=bool)
    this_batch = np.zeros(len(hashes), dtype=bool)
    for i, same in rows:
        (this_batch if same else earlier)[order[i]] = True
    return earlier, this_batch
