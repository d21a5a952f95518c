"""The ``geo-monitor`` command line: one entry point, one sub-command per job.

The commands live in one module per concern (store, analysis, outputs, admin); importing
them registers them on the Typer app of ``cli.app``.
"""

from __future__ import annotations

import sys

# Importing a command module registers its commands; --help lists them in this order.
# isort: off
from cli import store  # noqa: F401
from cli import analysis  # noqa: F401
from cli import outputs  # noqa: F401
from cli import admin  # noqa: F401
from cli import export  # noqa: F401
# isort: on
from cli.app import app, err
from geo_monitor.errors import GeoMonitorError


def run() -> None:  # pragma: no cover - console entry
    """Entry point that turns unexpected errors into one readable line."""
    try:
        app()
    except GeoMonitorError as exc:
        err.print(f"error: {exc}")
        sys.exit(1)
