"""The web console (flexledger/console/) as a detached process of the local stack: `python -m
flexledger.console` on 127.0.0.1:`console_port`, healthy when GET /health is 200. `flexledger dev up`
starts it after the services; it reads them over HTTP with the logged-in user's key."""

from __future__ import annotations

import os
import sys

import httpx

from flexledger.devstack import processes
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import REPO_ROOT, log_file, pid_file
from services.runtime.settings import Settings

PART = "console"
HOST = "127.0.0.1"
MARKER = "flexledger.console"


def console_url(settings: Settings) -> str:
    return f"http://{HOST}:{settings.console_port}"


def console_pid(settings: Settings) -> int | None:
    return processes.running_pid(pid_file(settings, PART), MARKER)


def console_healthy(settings: Settings, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{console_url(settings)}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def start_console(settings: Settings) -> int:
    """Start the console detached (idempotent); return its pid. Wait with `health.wait_healthy(PART, ...)`."""
    pid = console_pid(settings)
    if pid is not None:
        return pid
    if processes.port_open(HOST, settings.console_port):
        raise DevstackError(f"port {HOST}:{settings.console_port} is in use by another process; "
                            "the console cannot start (set FLEXLEDGER_CONSOLE_PORT)")
    env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
    return processes.spawn_detached([sys.executable, "-m", MARKER], log_path=log_file(settings, PART),
                                    pid_path=pid_file(settings, PART), env=env, cwd=REPO_ROOT)


def stop_console(settings: Settings, timeout: float = 15.0) -> bool:
    """SIGTERM the console's process group, SIGKILL after `timeout`; True if it was running."""
    return processes.stop_group(pid_file(settings, PART), marker=MARKER, timeout=timeout)
