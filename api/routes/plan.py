"""The plan over HTTP: read actions, updates and places (internal roles); load a file, append an update."""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ConnDep, PrincipalDep, require
from api.errors import UnsupportedMediaType
from api.schemas import ERRORS, error
from geo_monitor.plan.actions import list_actions
from geo_monitor.plan.loader import check_records, load_plan
from geo_monitor.plan.objectives import partners
from geo_monitor.plan.places import list_places
from geo_monitor.plan.updates import add_update, list_updates
from geo_monitor.privacy.tokens import audit

router = APIRouter(prefix="/plan", tags=["plan"])
READ, WRITE = [Depends(require("plan"))], [Depends(require("plan.write"))]
FORMATS = {"text/csv": ".csv", "application/yaml": ".yaml", "application/x-yaml": ".yaml", "text/yaml": ".yaml"}


class UpdateIn(BaseModel):
    """An update to append to an action (the history is never edited)."""

    action: str = Field(pattern=r"^[A-Za-z0-9._-]{1,20}$")
    date: date
    status: str = Field(description="planned, started, done or dropped")
    committed: float | None = Field(default=None, ge=0)
    spent: float | None = Field(default=None, ge=0)
    payer: str | None = Field(default=None, pattern=r"^[a-z0-9_]{2,40}$")
    values: dict[str, float] = Field(default_factory=dict, description="indicator code -> value")
    note: str | None = Field(default=None, max_length=500, pattern=r"^[^\x00]*$")


@router.get("/actions", responses=ERRORS, dependencies=READ, summary="The plan's actions with partners, budget, indicators, status")
def get_actions(conn: ConnDep,
                as_of: Annotated[date | None, Query(description="Status as of this day")] = None) -> list[dict]:
    """Every action, its latest status as of the day (today by default)."""
    return [{**a, "starts_on": a["starts_on"], "budget": [{**b, "amount": float(b["amount"])} for b in a["budget"]],
             "indicators": [{**i, "target": None if i["target"] is None else float(i["target"])} for i in a["indicators"]]}
            for a in list_actions(conn, as_of=as_of)]


@router.get("/updates", responses=ERRORS, dependencies=READ, summary="The append-only history of the actions")
def get_updates(conn: ConnDep,
                action: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9._-]{1,20}$")] = None) -> list[dict]:
    """Every update (oldest first), of one action or all."""
    return [{k: (float(v) if k in ("committed", "spent") and v is not None else v) for k, v in u.items()}
            for u in list_updates(conn, action_id=action)]


@router.get("/places", responses=ERRORS, dependencies=READ, summary="Accommodation and rest places (by arrondissement, never an address)")
def get_places(conn: ConnDep) -> list[dict]:
    """Every place record."""
    return list_places(conn)


@router.post("/updates", status_code=201, responses={**ERRORS, 404: error("no such action")}, dependencies=WRITE, summary="Append an update to an action")
def post_update(body: UpdateIn, conn: ConnDep, principal: PrincipalDep) -> dict:
    """Record an update; the same update sent twice is stored once (``recorded`` false)."""
    fields = {**body.model_dump(), "date": body.date.isoformat()}
    known = {r[0] for r in conn.execute("SELECT id FROM plan_actions")}
    author = f"{principal.role}:{principal.team}"
    record = check_records([("update", "update", fields)], set(partners(conn)), known, author).updates[0]
    recorded = add_update(conn, record)
    conn.commit()
    audit(conn, principal, "plan.update", {"action": body.action, "status": body.status}, 201)
    return {"recorded": recorded, "action": body.action, "date": body.date.isoformat(), "author": author}


@router.post("/load", responses={**ERRORS, 415: error("not CSV or YAML")}, dependencies=WRITE, summary="Load a plan file (CSV or YAML): all of it, or nothing")
async def post_load(request: Request, conn: ConnDep, principal: PrincipalDep) -> dict:
    """Every bad record is named with its reason (400) and nothing is written."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in FORMATS:
        raise UnsupportedMediaType("send the plan as text/csv or application/yaml", "content-type")
    body = await request.body()

    def run() -> dict:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"plan{FORMATS[kind]}"
            path.write_bytes(body)
            report = load_plan(conn, path, author=f"{principal.role}:{principal.team}")
        conn.commit()
        audit(conn, principal, "plan.load", {"counts": report.counts}, 200)
        return {"changed": report.changed, "counts": report.counts}

    return await run_in_threadpool(run)
