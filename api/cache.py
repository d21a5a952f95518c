"""Response cache with ETags: repeated queries on unchanged data cost one cheap look-up.

The key holds the data version (last ingest batch, release count), so a new ingest or a
new release changes every ETag and no stale answer is served.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import psycopg
from fastapi import Request, Response

MAX_ENTRIES = 512
MAX_BYTES = 128 * 1024 * 1024


def data_version(conn: psycopg.Connection) -> str:
    """Return a token that changes whenever stored data changes."""
    row = conn.execute(
        "SELECT (SELECT coalesce(max(id), 0) FROM ingest_batches), (SELECT last_batch_id FROM rollup_state), "
        "(SELECT coalesce(max(loaded_at)::text, '') FROM reference_loads), "
        "(SELECT count(*) FROM pg_tables WHERE tablename = 'releases')"
    ).fetchone()
    version = "/".join(map(str, row))
    if row[3]:
        version += "/" + str(conn.execute("SELECT count(*) FROM releases").fetchone()[0])
    return version


class ResponseCache:
    """A bounded LRU of (ETag -> body, media type)."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[bytes, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def etag(request: Request, scope: str, version: str) -> str:
        """Return the ETag of a request's answer for a caller scope and data version."""
        query = "&".join(sorted(f"{k}={v}" for k, v in request.query_params.multi_items()))
        digest = hashlib.sha256(f"{request.url.path}?{query}|{scope}|{version}".encode()).hexdigest()[:32]
        return f'"{digest}"'

    def get(self, etag: str) -> tuple[bytes, str] | None:
        """Return a cached answer."""
        with self._lock:
            item = self._items.get(etag)
            if item is not None:
                self._items.move_to_end(etag)
            return item

    def put(self, etag: str, content: bytes, media_type: str) -> None:
        """Keep an answer, evicting the least recently used beyond the bounds."""
        with self._lock:
            if etag in self._items:
                return
            self._items[etag] = (content, media_type)
            self._bytes += len(content)
            while self._items and (len(self._items) > MAX_ENTRIES or self._bytes > MAX_BYTES):
                _, (old, _) = self._items.popitem(last=False)
                self._bytes -= len(old)


def cached(request: Request, etag: str, build, media_type: str = "application/geo+json") -> Response:
    """Answer 304 when the client has it, else from the cache, else build and keep it."""
    headers = {"ETag": etag, "Cache-Control": "private, max-age=0, must-revalidate"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    cache: ResponseCache = request.app.state.cache
    item = cache.get(etag)
    if item is None:
        item = (build(), media_type)
        cache.put(etag, *item)
    return Response(content=item[0], media_type=item[1], headers=headers)
