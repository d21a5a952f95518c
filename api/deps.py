"""Request dependencies: settings, a pooled connection, who is asking, rate limits."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool, PoolTimeout
from starlette.concurrency import run_in_threadpool

from api.cache import VERSION_QUERY, version_of
from api.errors import RETRY_AFTER_SECONDS, TooManyRequests, Unauthenticated
from api.security import client_address
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.privacy import access
from geo_monitor.privacy.tokens import PUBLIC, TOKEN_QUERY, Principal, principal_of, token_hash
from geo_monitor.settings import Settings


async def get_settings(request: Request) -> Settings:
    """Return the application's settings (async: no worker thread for a look-up)."""
    return request.app.state.settings


class RecentCheck:
    """The pool's check: ping a connection before lending it, unless it answered within ``fresh`` seconds.

    Under load every connection is back in use within milliseconds, so the ping (a round trip
    on every request) is skipped; an idle one, which an outage or a restarted server may have
    cut, is pinged first. A connection that fails anyway is answered with 503 and discarded.
    """

    def __init__(self, fresh: float = 1.0) -> None:
        self.fresh = fresh
        self._used: dict[int, float] = {}

    def __call__(self, conn: psycopg.Connection) -> None:
        """Raise when the connection is unusable (psycopg_pool then replaces it)."""
        if conn.broken or time.monotonic() - self._used.get(id(conn), float("-inf")) > self.fresh:
            ConnectionPool.check_connection(conn)

    def used(self, conn: psycopg.Connection) -> None:
        """Note that a connection has just answered a whole request."""
        self._used[id(conn)] = time.monotonic()


@asynccontextmanager
async def pooled(request: Request) -> AsyncIterator[psycopg.Connection]:
    """Lend a pooled connection; commit on success, roll back on error (503 when none comes).

    Requests queue for a connection on the event loop (a semaphore as large as the pool),
    never in a worker thread: a thread that waits for a connection while the requests holding
    them wait for a thread to run their endpoint is a deadlock, broken only by the pool
    timeout (every request then fails with 503). Giving a connection back takes no thread.
    """
    app = request.app
    timeout = app.state.settings_connect_timeout
    slots = getattr(app.state, "db_slots", None)
    if slots is None:  # made on the server's event loop, on first use
        slots = app.state.db_slots = asyncio.Semaphore(app.state.settings.api_pool_size)
    try:
        await asyncio.wait_for(slots.acquire(), timeout)
    except TimeoutError:
        raise PoolTimeout(f"no database connection free after {timeout:.0f} s") from None
    try:
        pool: ConnectionPool = app.state.pool
        conn = await run_in_threadpool(pool.getconn, timeout)
        try:
            with conn:
                yield conn
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    await run_in_threadpool(conn.commit)  # a route left it open: commit off the event loop
            app.state.pool_check.used(conn)
        finally:
            pool.putconn(conn)  # a broken connection is discarded and replaced by the pool
    finally:
        slots.release()


async def get_connection(request: Request) -> AsyncIterator[psycopg.Connection]:
    """Lend a pooled connection for the request (see ``pooled``)."""
    async with pooled(request) as conn:
        yield conn


SettingsDep = Annotated[Settings, Depends(get_settings)]
ConnDep = Annotated[psycopg.Connection, Depends(get_connection)]


# The data version and the token's row (NULLs for no valid token) in one statement.
_AUTHENTICATE = f"SELECT v.*, t.* FROM ({VERSION_QUERY}) AS v LEFT JOIN ({TOKEN_QUERY}) AS t ON true"


def _authenticate(conn: psycopg.Connection, token: str) -> tuple[Principal | None, str | None]:
    """Check the token and read the data version in the transaction the request goes on with.

    One statement (a pipeline of two cost the worker twice the CPU); the route's audit line
    commits the transaction, so an authenticated request costs one BEGIN/COMMIT, not two.
    """
    key = token_hash(token)
    row = conn.execute(_AUTHENTICATE, {"token_hash": key}).fetchone() if key else None
    principal = principal_of(row[-3:]) if row else None  # TOKEN_QUERY's id, role, team come last
    if principal is None:
        conn.rollback()  # here, in the worker thread, not on the event loop
        return None, None
    return principal, version_of(row[:-3])


async def get_principal(request: Request, conn: ConnDep) -> Principal:
    """Return who is asking: the token's role and team, or the public without a token.

    The token is checked on the request's own connection (FastAPI caches the dependency),
    so an authenticated request borrows one connection, not two.
    """
    header = request.headers.get("authorization")
    if not header:
        return PUBLIC
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    principal, request.state.data_version = await run_in_threadpool(_authenticate, conn, token.strip())
    if principal is None:
        raise Unauthenticated("unknown, expired or revoked token")
    request.state.principal = principal  # for the audit of a refusal further on
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(surface: str) -> Callable[[Principal], Principal]:
    """Return a dependency that asks the access policy about a surface (no token: 401, refused: 403)."""
    access.allows(PUBLIC, surface)  # an unknown surface fails when the app is built, not on a request

    async def check(principal: PrincipalDep) -> Principal:  # async: a pure check needs no worker thread
        if principal.token_id is None:
            raise Unauthenticated("this endpoint needs a token")
        access.check(principal, surface)
        return principal

    return check


class RateLimiter:
    """A token bucket per client address: ``rate`` requests per minute, bursts of ``rate/4``."""

    def __init__(self, rate_per_minute: int) -> None:
        self.rate = rate_per_minute / 60.0
        self.capacity = max(1.0, rate_per_minute / 4)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> float:
        """Take one request; return 0 when allowed, else the seconds to wait."""
        now = time.monotonic()
        with self._lock:
            tokens, stamp = self._buckets.get(client, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - stamp) * self.rate)
            if tokens >= 1:
                self._buckets[client] = (tokens - 1, now)
                if len(self._buckets) > 100_000:  # forget idle clients
                    self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 600}
                return 0.0
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


def no_parameters(what: str, why: str = "") -> Callable[[Request], None]:
    """Return a dependency that refuses any query parameter: ``what`` is a fixed answer, never a custom one."""

    def check(request: Request) -> None:
        if request.query_params:
            names = sorted(set(request.query_params.keys()))
            raise InvalidArgumentError(f"{what} takes no parameters ({', '.join(names)[:100]}){why}", names[0])

    return check


def rate_limited(request: Request) -> None:
    """Refuse a public client over its rate with 429 and Retry-After."""
    wait = request.app.state.limiter.take(client_address(request))
    if wait:
        raise TooManyRequests("too many requests; slow down", wait)


__all__ = ["RETRY_AFTER_SECONDS", "ConnDep", "PrincipalDep", "SettingsDep", "no_parameters", "rate_limited", "require"]
