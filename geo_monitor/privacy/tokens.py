"""API tokens: created once, shown once, stored only as a hash; revocable, with expiry.

Tokens are 256-bit random secrets, so a single SHA-256 is as strong as a slow password
hash here (argon2 protects low-entropy passwords) and keeps every request fast.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from geo_monitor.errors import InvalidArgumentError, NotFoundError

ROLES = ("admin", "planner", "police", "outreach")
TOKEN_PREFIX = "gm_"


@dataclass(frozen=True)
class Principal:
    """Who is asking: a role, a team, and the token id (None for the public)."""

    role: str
    team: str
    token_id: int | None = None


PUBLIC = Principal(role="public", team="public")


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def create_token(conn: psycopg.Connection, *, role: str, team: str, days: int = 90,
                 description: str | None = None) -> tuple[int, str]:
    """Create a token; return (id, token). The token itself is never stored."""
    if role not in ROLES:
        raise InvalidArgumentError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")
    if not team or len(team) > 64 or not all(c.isalnum() or c in "-_." for c in team):
        raise InvalidArgumentError("team must be 1-64 letters, digits, '-', '_' or '.'")
    if not 1 <= days <= 730:
        raise InvalidArgumentError("a token lives 1 to 730 days")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(
        "INSERT INTO api_tokens (token_hash, prefix, role, team, expires_at, description) "
        "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
        (_hash(token), token[:8], role, team, datetime.now(UTC) + timedelta(days=days), description),
    ).fetchone()[0]
    conn.commit()
    return token_id, token


# The valid token of a hash: (id, role, team), or no row. The API joins it to its data
# version query, so a request checks its token in one statement.
TOKEN_QUERY = ("SELECT id, role, team FROM api_tokens "
               "WHERE token_hash = %(token_hash)s AND revoked_at IS NULL AND expires_at > now()")


def token_hash(token: str) -> bytes | None:
    """Return what ``TOKEN_QUERY`` looks up for a token, or None when it cannot be one."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 100:
        return None
    return _hash(token)


def principal_of(row: tuple | None) -> Principal | None:
    """Return the principal of a ``TOKEN_QUERY`` row (None for no row, or its NULLs in an outer join)."""
    return Principal(role=row[1], team=row[2], token_id=row[0]) if row and row[0] is not None else None


def authenticate(conn: psycopg.Connection, token: str) -> Principal | None:
    """Return the principal of a valid token, or None (unknown, expired or revoked)."""
    key = token_hash(token)
    return principal_of(conn.execute(TOKEN_QUERY, {"token_hash": key}).fetchone()) if key else None


def revoke_token(conn: psycopg.Connection, token_id: int) -> None:
    """Revoke a token at once."""
    row = conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL RETURNING id", (token_id,)
    ).fetchone()
    conn.commit()
    if row is None:
        raise NotFoundError(f"no active token with id {token_id}")


def list_tokens(conn: psycopg.Connection) -> list[dict]:
    """Return every token's metadata (never the token)."""
    cur = conn.execute(
        "SELECT id, prefix, role, team, created_at, expires_at, revoked_at, description FROM api_tokens ORDER BY id"
    )
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


_AUDIT = "INSERT INTO audit_log (token_id, role, team, action, params, status) VALUES (%s, %s, %s, %s, %s, %s)"


def audit(conn: psycopg.Connection, principal: Principal, action: str, params: dict, status: int) -> None:
    """Write one line to the audit log (who, what, when, with which parameters) and commit.

    The line and the commit travel as one message of two statements, the values bound by
    psycopg's client-side cursor (quoted by libpq for the connection): one round trip with
    half the client CPU of a pipeline, which is what the API's cached answers spend.
    """
    values = (principal.token_id, principal.role, principal.team, action, psycopg.types.json.Jsonb(params), status)
    if conn.autocommit:
        conn.execute(_AUDIT, values)
    else:
        psycopg.ClientCursor(conn).execute(_AUDIT + "; COMMIT", values)
