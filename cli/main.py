"""The ``geo-monitor`` command line: one entry point, one sub-command per job.

The commands live in one module per concern (store, analysis, outputs, admin); importing
them registers them on the Typer app of ``cli.app``.
"""

from __future__ import annotations

import os
import sys

import psycopg
from pydantic import ValidationError

# Importing a command module registers its commands; --help lists them in this order.
# isort: off
from cli import store  # noqa: F401
from cli import analysis  # noqa: F401
from cli import outputs  # noqa: F401
from cli import admin  # noqa: F401
from cli import export  # noqa: F401
from cli import publish  # noqa: F401
from cli import plan  # noqa: F401
# isort: on
from cli.app import app, err, settings_problem
from geo_monitor.errors import GeoMonitorError


def run() -> None:  # pragma: no cover - console entry
    """Entry point that turns every error into one readable line (never a traceback).

    ``GEO_MONITOR_DEBUG=1`` shows the traceback of an unexpected error, for a bug report.
    """
    try:
        app()
    except (GeoMonitorError, OSError, ValidationError, psycopg.Error) as exc:
        err.print(f"error: {one_line(exc)}", markup=False, highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        sys.exit(130)
    except Exception as exc:
        if os.environ.get("GEO_MONITOR_DEBUG"):
            raise
        err.print(f"unexpected error ({type(exc).__name__}): {one_line(exc)}. Set GEO_MONITOR_DEBUG=1 to see "
                  "where it happened, and report it.", markup=False, highlight=False)
        sys.exit(1)


def one_line(exc: BaseException) -> str:
    """Return an error as one line (settings errors name the variable)."""
    if isinstance(exc, ValidationError):
        return settings_problem(exc)
    if isinstance(exc, FileNotFoundError):
        return f"no such file: {exc.filename}; check the path"
    return " ".join(str(exc).split()) or type(exc).__name__
