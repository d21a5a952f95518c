"""The audit of refused attempts: 401, 403, and 404 on a protected object, with actor and parameters."""

from __future__ import annotations

import logging

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from geo_monitor.privacy.tokens import PUBLIC, Principal, audit

log = logging.getLogger("geo_monitor.api")
AUDITED = (401, 403, 404)


def _write(request: Request, principal: Principal, params: dict, status: int) -> None:
    with request.app.state.pool.connection() as conn:
        audit(conn, principal, "refused", params, status)


async def audit_refusal(request: Request, status: int, message: str) -> None:
    """Write a refused attempt to the audit log (never fails the answer itself).

    401 and 403 are always written; 404 only for a caller with a token (a protected object
    such as a zone or a token that does not exist, or not for them), not for unknown paths.
    """
    principal: Principal = getattr(request.state, "principal", PUBLIC)
    if status not in AUDITED or (status == 404 and principal.token_id is None):
        return
    header = request.headers.get("authorization", "")
    params = {"method": request.method, "path": request.url.path[:200],
              "query": {k: v[:200] for k, v in list(request.query_params.items())[:20]},
              "reason": message[:300]}
    if principal.token_id is None and header:
        params["token_prefix"] = header.partition(" ")[2].strip()[:8]  # the stored, non-secret prefix
    try:
        await run_in_threadpool(_write, request, principal, params, status)
    except Exception as exc:  # the refusal stands even when the log cannot be written
        log.warning("could not audit a refused %s on %s: %s", status, request.url.path, exc)
