"""The steward's endpoints: tokens and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from api.deps import ConnDep, PrincipalDep, require
from api.schemas import ERRORS, NOT_FOUND
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.privacy.tokens import audit, create_token, list_tokens, revoke_token

router = APIRouter(tags=["admin"], dependencies=[Depends(require("admin"))])


class TokenCreate(BaseModel):
    """A token to create."""

    role: str = Field(pattern="^(admin|planner|police|outreach)$")
    team: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    days: int = Field(90, ge=1, le=730)
    description: str | None = Field(None, max_length=200)


class TokenCreated(BaseModel):
    """The new token: shown this once, stored only as a hash."""

    id: int
    token: str
    role: str
    team: str


class TokenInfo(BaseModel):
    """A token's metadata (never the token)."""

    id: int
    prefix: str
    role: str
    team: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    description: str | None


class AuditEntry(BaseModel):
    """One audited request."""

    id: int
    at: datetime
    token_id: int | None
    role: str
    team: str
    action: str
    params: dict
    status: int | None


@router.post("/tokens", response_model=TokenCreated, status_code=201, responses=ERRORS, summary="Create a token")
def post_token(body: TokenCreate, conn: ConnDep, principal: PrincipalDep) -> TokenCreated:
    """Create a token for a role and team; the answer is the only time it is shown."""
    token_id, token = create_token(conn, role=body.role, team=body.team, days=body.days, description=body.description)
    audit(conn, principal, "tokens.create", {"id": token_id, "role": body.role, "team": body.team}, 201)
    return TokenCreated(id=token_id, token=token, role=body.role, team=body.team)


@router.get("/tokens", response_model=list[TokenInfo], responses=ERRORS, summary="List tokens")
def get_tokens(conn: ConnDep, principal: PrincipalDep) -> list[TokenInfo]:
    """Every token's metadata."""
    found = [TokenInfo(**row) for row in list_tokens(conn)]
    audit(conn, principal, "tokens.list", {"tokens": len(found)}, 200)
    return found


@router.delete("/tokens/{token_id}", status_code=204, responses={**ERRORS, **NOT_FOUND}, summary="Revoke a token")
def delete_token(token_id: Annotated[int, Path(ge=1, le=2**31 - 1)], conn: ConnDep, principal: PrincipalDep) -> None:
    """Revoke a token at once."""
    revoke_token(conn, token_id)
    audit(conn, principal, "tokens.revoke", {"id": token_id}, 204)


@router.get("/audit", response_model=list[AuditEntry], responses=ERRORS, summary="Read the audit log")
def get_audit(request: Request, conn: ConnDep, principal: PrincipalDep, limit: Annotated[int, Query(ge=1)] = 100,
              before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None) -> list[AuditEntry]:
    """The newest entries first; page with ``before_id``."""
    maximum = 1000
    if limit > maximum:
        raise InvalidArgumentError(f"limit {limit} is over the maximum of {maximum}", "limit")
    cur = conn.execute(
        "SELECT id, at, token_id, role, team, action, params, status FROM audit_log "
        "WHERE (%(b)s::bigint IS NULL OR id < %(b)s) ORDER BY id DESC LIMIT %(n)s",
        {"b": before_id, "n": limit},
    )
    names = [d.name for d in cur.description]
    entries = [AuditEntry(**dict(zip(names, row, strict=True))) for row in cur.fetchall()]
    audit(conn, principal, "audit.read", {"limit": limit, "before_id": before_id}, 200)  # after the read
    return entries
