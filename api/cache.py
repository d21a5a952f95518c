"""Response cache with ETags: repeated queries on unchanged data cost one cheap look-up.

The cache key (internal, never sent) holds the data version (last ingest batch, release
count), so a new ingest or a new release is never answered from a stale entry. The ETag
sent to clients is a hash of the body only: it changes when the answer changes and says
nothing about when data arrived.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

import psycopg
from fastapi import Request, Response

MAX_ENTRIES = 512
MAX_BYTES = 128 * 1024 * 1024


# Changes whenever stored data changes: the last ingest batch, the rollups' last batch, the
# last reference load and the number of releases (one row; ``version_of`` makes it a string).
VERSION_QUERY = (
    "SELECT (SELECT coalesce(max(id), 0) FROM ingest_batches), (SELECT last_batch_id FROM rollup_state), "
    "(SELECT coalesce(max(loaded_at)::text, '') FROM reference_loads), (SELECT count(*) FROM releases)"
)


def data_version(conn: psycopg.Connection) -> str:
    """Return a token that changes whenever stored data changes (one query)."""
    return version_of(conn.execute(VERSION_QUERY).fetchone())


def version_of(row: tuple) -> str:
    """Return the data version of a ``VERSION_QUERY`` row."""
    return "/".join(map(str, row))


def request_version(request: Request, conn: psycopg.Connection) -> str:
    """Return the data version of a request: read with its token check when there was one."""
    version = getattr(request.state, "data_version", None)
    return version if version is not None else data_version(conn)


class ResponseCache:
    """A bounded LRU of (ETag -> body, media type)."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[bytes, str, str]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @staticmethod
    def key(request: Request, scope: str, version: str, params: dict | None = None) -> str:
        """Return the cache key of a request's answer for a caller scope and data version.

        ``params`` are the parameters the answer depends on; by default the query string.
        A route that takes none passes ``{}``, so arbitrary query strings cannot fill the cache.
        """
        items = request.query_params.multi_items() if params is None else params.items()
        query = "&".join(sorted(f"{k}={v}" for k, v in items))
        return hashlib.sha256(f"{request.url.path}?{query}|{scope}|{version}".encode()).hexdigest()

    def __len__(self) -> int:
        """Return the number of answers kept."""
        return len(self._items)

    def get(self, key: str) -> tuple[bytes, str, str] | None:
        """Return a cached answer: (body, media type, ETag)."""
        with self._lock:
            item = self._items.get(key)
            if item is not None:
                self._items.move_to_end(key)
            return item

    def put(self, key: str, content: bytes, media_type: str) -> tuple[bytes, str, str]:
        """Keep an answer with the ETag of its body, evicting the least recently used beyond the bounds."""
        item = (content, media_type, body_etag(content))
        with self._lock:
            if key in self._items:
                return self._items[key]
            self._items[key] = item
            self._bytes += len(content)
            while self._items and (len(self._items) > MAX_ENTRIES or self._bytes > MAX_BYTES):
                _, (old, _, _) = self._items.popitem(last=False)
                self._bytes -= len(old)
        return item


def body_etag(content: bytes) -> str:
    """Return the ETag of a body: a hash of its bytes and nothing else."""
    return f'"{hashlib.sha256(content).hexdigest()[:32]}"'


def cached(request: Request, key: str, build, media_type: str = "application/geo+json", *,
           public: bool = False) -> Response:
    """Answer from the cache or build and keep the answer; 304 when the client has the same body.

    Public answers may be kept by shared caches but must be revalidated; any other answer
    gets ``no-store`` (``api.security.SecurityHeaders`` enforces it for credentials too).
    """
    cache: ResponseCache = request.app.state.cache
    item = cache.get(key) or cache.put(key, build(), media_type)
    content, media, etag = item
    headers = {"ETag": etag, "Cache-Control": "public, no-cache" if public else "no-store"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(content=content, media_type=media, headers=headers)
