"""Schemathesis over the app's own OpenAPI schema, once per role: no 5xx, no answer outside the schema.

Each role fuzzes every operation of the schema with a bounded, derandomised number of
examples on the session database. ``DELETE /tokens/{id}`` as admin would revoke the suite's
own tokens (ids are small integers): that one runs in a throwaway database of its own,
where the fuzzing admin token has an id no small integer reaches.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api.main import create_app
from geo_monitor import db
from geo_monitor.privacy.tokens import create_token
from geo_monitor.settings import Settings

ROLES = ("admin", "planner", "police", "outreach", "public")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
FUZZ = settings(max_examples=25, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))


# The schema only (no lifespan, no database): collected per operation, sent to ``fuzz_app``.
SCHEMA = schemathesis.openapi.from_dict(create_app(Settings(environment="test")).openapi())
schema = SCHEMA.exclude(method="DELETE", path_regex="^/tokens/")
revoke_schema = SCHEMA.include(method="DELETE", path_regex="^/tokens/")


@pytest.fixture(scope="session")
def fuzz_app(api_settings, api_data):
    """An app instance of its own on the session database (schemathesis runs its lifespan)."""
    return create_app(api_settings)


@pytest.mark.parametrize("role", ROLES)
@schema.parametrize()
@FUZZ
def test_fuzz_every_operation_as_every_role(case, role, tokens, fuzz_app) -> None:
    token = tokens[role]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    case.call_and_validate(headers=headers, checks=CHECKS, app=fuzz_app)


@pytest.fixture
def revoke_target(role, tokens, fuzz_app, settings_factory) -> tuple:
    """(app, headers) to fuzz token revocation with: the admin's in a throwaway database."""
    if role != "admin":  # refused before anything is revoked
        token = tokens[role]
        return fuzz_app, {"Authorization": f"Bearer {token}"} if token else {}
    throwaway = settings_factory()
    db.up(throwaway)
    with db.connect(throwaway) as conn:
        for _ in range(3):  # ids 1-3: something to revoke where the fuzzer looks first
            create_token(conn, role="planner", team="fuzz")
        conn.execute("ALTER TABLE api_tokens ALTER COLUMN id RESTART WITH 1234567890")
        token = create_token(conn, role="admin", team="fuzz")[1]
    return create_app(throwaway), {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("role", ROLES)
@revoke_schema.parametrize()
@FUZZ
def test_fuzz_token_revocation_as_every_role(case, role, revoke_target) -> None:
    app, headers = revoke_target
    case.call_and_validate(headers=headers, checks=CHECKS, app=app)
