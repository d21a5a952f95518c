"""Real servers for the tests: a command that serves the API, started on a free port and stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from geo_monitor.settings import Settings


def free_port() -> int:
    """Return a TCP port free on the loopback now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a server on ``settings``' database (no other GEO_MONITOR_ variable leaks in)."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GEO_MONITOR_")},
            "GEO_MONITOR_DATABASE_URL": settings.database_url,
            "GEO_MONITOR_REFERENCE_DIR": str(settings.reference_dir), "GEO_MONITOR_ENVIRONMENT": "test",
            "GEO_MONITOR_CACHE_DIR": str(settings.cache_dir), **extra}


def start_server(command: list[str], env: dict[str, str], cwd: Path, port: int,
                 timeout: float = 60) -> subprocess.Popen:
    """Start ``command`` (listening on ``port``) and wait for /health; fail with its log if it does not come up."""
    log = open(cwd / f"server-{port}.log", "w+b")  # closed by stop_server, read on failure
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log)
    process.log = log  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            text = log.read().decode()[-3000:]
            stop_server(process)
            pytest.fail(f"the server did not come up (exit {process.poll()}):\n{text}")
        time.sleep(0.2)


def stop_server(process: subprocess.Popen) -> None:
    """Stop a server gracefully (SIGTERM), killing it after 15 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    process.log.close()  # type: ignore[attr-defined]
