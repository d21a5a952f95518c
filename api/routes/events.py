"""POST /events: the same ingest, rules and report as the command line, over HTTP."""

from __future__ import annotations

import csv
import json
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.deps import ConnDep, PrincipalDep, require
from api.errors import PayloadTooLarge, UnsupportedMediaType
from api.schemas import ERRORS, error
from geo_monitor.errors import InvalidArgumentError
from geo_monitor.privacy.tokens import audit
from geo_monitor.store.ingest import IngestReport, ingest_chunks, ingest_file
from geo_monitor.store.readers import RECORD

router = APIRouter(tags=["events"])
SUFFIX = {"csv": ".csv", "geojson": ".geojson", "parquet": ".parquet", "dansmarue": ".csv"}
MAX_REJECTS_SHOWN = 1000


class RejectedRow(BaseModel):
    """A refused record: its number in the upload and the reason (never its values)."""

    record: int
    reason: str


class IngestAnswer(BaseModel):
    """The ingest report."""

    batch_id: int
    received: int
    accepted: int
    duplicates_in_file: int
    duplicates_in_store: int
    rejected: int
    rejected_by_reason: dict[str, int]
    naive_times: int
    seconds: float
    rejected_rows: list[RejectedRow]
    rejected_rows_truncated: bool


def _format_of(content_type: str, fmt: str | None) -> str:
    if fmt:
        return fmt
    kind = content_type.split(";")[0].strip().lower()
    known = {"text/csv": "csv", "application/geo+json": "geojson", "application/json": "json",
             "application/vnd.apache.parquet": "parquet", "application/x-parquet": "parquet"}
    if kind not in known:
        raise UnsupportedMediaType(f"unsupported content type {kind[:60]!r}: send text/csv, application/geo+json, "
                                   "application/json or application/vnd.apache.parquet (or set format=)",
                                   "content-type")
    return known[kind]


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing it with 413 as soon as it passes the limit."""
    too_large = PayloadTooLarge(f"the upload is larger than {limit:,} bytes; split it into smaller files")
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large
    parts, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise too_large
        parts.append(part)
    if not size:
        raise InvalidArgumentError("the request body is empty", "body")
    return b"".join(parts)


def _batch_name(team: str, fmt: str, filename: str | None) -> str:
    """Name the batch after what came in: ``api:<team>:<file name>`` or ``api:<team>:<UTC time>.<format>``."""
    if filename:
        return f"api:{team}:{filename}"
    return f"api:{team}:{datetime.now(UTC):%Y%m%dT%H%M%SZ}.{fmt}"


def _answer(report: IngestReport, rejects: list[tuple[int, str]]) -> IngestAnswer:
    return IngestAnswer(
        batch_id=report.batch_id, received=report.received, accepted=report.accepted,
        duplicates_in_file=report.duplicates_in_file, duplicates_in_store=report.duplicates_in_store,
        rejected=report.rejected, rejected_by_reason=dict(report.rejected_by_reason),
        naive_times=report.naive_times, seconds=round(report.seconds, 3),
        rejected_rows=[RejectedRow(record=r, reason=why) for r, why in rejects[:MAX_REJECTS_SHOWN]],
        rejected_rows_truncated=len(rejects) > MAX_REJECTS_SHOWN,
    )


def _json_records(body: bytes) -> pd.DataFrame:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgumentError(f"the body is not valid JSON: {str(exc)[:120]}", "body") from None
    if isinstance(data, dict) and data.get("type") == "FeatureCollection":
        return None  # GeoJSON: read as a file
    records = data.get("events") if isinstance(data, dict) else data
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise InvalidArgumentError('expected {"events": [ {kind, category, occurred_at, lon, lat, ...}, ... ]}', "body")
    frame = pd.DataFrame(records, dtype=object)
    frame[RECORD] = np.arange(1, len(frame) + 1)
    return frame


RECORD_EXAMPLE = {"kind": "incident", "category": "drug_litter", "occurred_at": "2021-03-14T22:40:00+01:00",
                  "lon": 2.3601, "lat": 48.8867, "source": "ville-propreté", "external_id": "DMR-2021-000123"}
BODY = {"required": True, "description": (
    "One record per event: `kind, category, occurred_at, lon, lat, source, external_id` (+ `ends_at` for works), "
    "as CSV columns, GeoJSON Point features' properties, GeoParquet columns or a JSON list. Any other field is "
    "refused. The content type says which (or the `format` parameter)."), "content": {
    "text/csv": {"schema": {"type": "string"}, "example": (
        "kind,category,occurred_at,lon,lat,source,external_id\n"
        "incident,drug_litter,2021-03-14T22:40:00+01:00,2.3601,48.8867,ville-propreté,DMR-2021-000123\n")},
    "application/geo+json": {"schema": {"type": "object", "required": ["type", "features"], "properties": {
        "type": {"type": "string", "enum": ["FeatureCollection"]},
        "features": {"type": "array", "items": {"type": "object", "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "geometry": {"type": "object", "description": "a GeoJSON Point, WGS84 lon/lat"},
            "properties": {"type": "object", "description": "kind, category, occurred_at, source, external_id"}}}}}},
        "example": {"type": "FeatureCollection", "features": [{
            "type": "Feature", "geometry": {"type": "Point", "coordinates": [2.3601, 48.8867]},
            "properties": {k: v for k, v in RECORD_EXAMPLE.items() if k not in ("lon", "lat")}}]}},
    "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary",
                                                  "description": "GeoParquet (point geometry) or lon/lat columns"}},
    "application/json": {"schema": {"type": "object", "required": ["events"], "properties": {
        "events": {"type": "array", "items": {"type": "object"}}}}, "example": {"events": [RECORD_EXAMPLE]}},
}}


@router.post("/events", response_model=IngestAnswer, openapi_extra={"requestBody": BODY}, responses={**ERRORS, 413: error("the upload is larger than the limit"),
                        415: error("unsupported content type (named in the body)")},
             dependencies=[Depends(require("events.write"))],
             summary="Ingest events (CSV, GeoJSON, GeoParquet or a JSON list) with the CLI's rules")
async def post_events(request: Request, principal: PrincipalDep, conn: ConnDep,
                      source: Annotated[str | None, Query(max_length=64, description="Source for rows without one")] = None,
                      team: Annotated[str | None, Query(max_length=64, description="Team that owns new sources")] = None,
                      format: Annotated[Literal["csv", "geojson", "parquet", "dansmarue", "json"] | None,
                                        Query(description="Overrides the content type")] = None,
                      crs: Annotated[str | None, Query(max_length=20, pattern=r"^(EPSG|OGC):[A-Za-z0-9]+$")] = None,
                      filename: Annotated[str | None, Query(max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                                                            description="Name of the sent file, kept in the batch record")] = None,
                      ) -> IngestAnswer:
    """Refused rows come back with their record number and reason; the valid rest is stored."""
    settings = request.app.state.settings
    fmt = _format_of(request.headers.get("content-type", ""), format)
    body = await _read_body(request, settings.api_max_upload_bytes)
    batch_name = _batch_name(principal.team, fmt, filename)

    def run() -> tuple[IngestReport, list[tuple[int, str]]]:
        with tempfile.TemporaryDirectory() as tmp:
            rejects_path = Path(tmp) / "rejects.csv"
            frame = _json_records(body) if fmt == "json" else None
            if frame is not None:
                report = ingest_chunks(conn, [frame], name=batch_name, fmt="json", source=source, crs=crs,
                                       actor=f"api:{principal.team}", rejects_path=rejects_path,
                                       settings=settings, team=team)
            else:
                kind = "geojson" if fmt == "json" else fmt
                path = Path(tmp) / f"upload{SUFFIX[kind]}"
                path.write_bytes(body)
                report = ingest_file(conn, path, fmt=None if kind == "dansmarue" else kind,
                                     adapter="dansmarue" if kind == "dansmarue" else None, source=source,
                                     crs=crs, actor=f"api:{principal.team}", rejects_path=rejects_path,
                                     settings=settings, team=team, name=batch_name)
            audit(conn, principal, "events.post", {"format": fmt, "source": source, "team": team,
                                                   "accepted": report.accepted}, 200)
            rejects = []
            if report.rejects_path and report.rejects_path.exists():
                with open(report.rejects_path, encoding="utf-8", newline="") as handle:
                    rejects = [(int(row[RECORD]), row["_reason"]) for row in csv.DictReader(handle)]
            return report, rejects

    report, rejects = await run_in_threadpool(run)
    return _answer(report, rejects)
