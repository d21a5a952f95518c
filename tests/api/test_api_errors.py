"""One table from error to status: every library error has its status, no refusal is a 500.

Each error class is raised by a route of a real app instance and answered over HTTP, so the
handlers, not only the table, are what is checked.
"""

from __future__ import annotations

import inspect

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import errors as api_errors
from api.main import create_app
from geo_monitor import errors
from geo_monitor.settings import Settings

LIBRARY_ERRORS = [cls for _, cls in inspect.getmembers(errors, inspect.isclass)
                  if issubclass(cls, errors.GeoMonitorError)]
INSTALLATION = (errors.ConfigurationError,)  # only a broken installation may answer 5xx


def _raise(exc: Exception) -> FastAPI:
    app = create_app(Settings(environment="test"))

    @app.get("/raise")
    def raise_it() -> None:
        raise exc

    return app


def _instance(cls: type[Exception]) -> Exception:
    if cls is errors.ZoneConflictError:
        return cls("zone 5 was changed since version 2", 3, '"zone-5-v3"')
    if cls is errors.InvalidArgumentError:
        return cls("limit 9 is over the maximum of 8", "limit")
    return cls(f"a {cls.__name__}")


def test_every_library_error_is_in_the_table() -> None:
    assert len(LIBRARY_ERRORS) >= 12
    assert [cls.__name__ for cls in LIBRARY_ERRORS if cls not in api_errors.STATUS] == []


@pytest.mark.parametrize("cls", LIBRARY_ERRORS, ids=lambda cls: cls.__name__)
def test_each_library_error_answers_its_status_over_http(cls: type[Exception]) -> None:
    exc = _instance(cls)
    answer = TestClient(_raise(exc), raise_server_exceptions=False).get("/raise")  # no lifespan: no database
    assert answer.status_code == api_errors.STATUS[cls]
    assert answer.json()["error"]["message"] == str(exc)
    if issubclass(cls, INSTALLATION) or cls is errors.GeoMonitorError:
        assert answer.status_code >= 500
    else:
        assert 400 <= answer.status_code < 500, f"{cls.__name__} is a refusal, not a server error"
    if cls is errors.ZoneConflictError:
        assert answer.status_code == 409 and answer.headers["ETag"] == '"zone-5-v3"'
    if cls is errors.InvalidArgumentError:
        assert answer.status_code == 400 and answer.json()["error"]["parameter"] == "limit"
    if answer.status_code == 503:
        assert answer.headers["Retry-After"]


def test_the_schema_documents_400_for_a_bad_parameter_never_422() -> None:
    schema = create_app(Settings(environment="test")).openapi()
    operations = [(path, method, op) for path, ops in schema["paths"].items() for method, op in ops.items()]
    assert operations
    assert [(path, method) for path, method, op in operations if "422" in op["responses"]] == []
    with_parameters = [(path, method, op) for path, method, op in operations
                       if op.get("parameters") or op.get("requestBody")]
    assert [(path, method) for path, method, op in with_parameters if "400" not in op["responses"]] == []
    assert "HTTPValidationError" not in schema["components"]["schemas"]
