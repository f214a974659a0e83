"""The three services as detached processes: `python -m services.<name>`, healthy when GET /health is 200."""

from __future__ import annotations

import os
import sys

import httpx

from contracts.settings import Settings
from flexledger.devstack import processes
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import REPO_ROOT, log_file, pid_file

SERVICES: tuple[str, ...] = ("intake", "eligibility", "payments")


def _check(name: str) -> None:
    if name not in SERVICES:
        raise DevstackError(f"unknown service {name!r}; the services are {', '.join(SERVICES)}")


def service_port(name: str, settings: Settings) -> int:
    _check(name)
    port: int = getattr(settings, f"{name}_port")
    return port


def service_url(name: str, settings: Settings) -> str:
    return f"http://127.0.0.1:{service_port(name, settings)}"


def _marker(name: str) -> str:
    return f"services.{name}"


def service_pid(name: str, settings: Settings) -> int | None:
    _check(name)
    return processes.running_pid(pid_file(settings, name), _marker(name))


def service_healthy(name: str, settings: Settings, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{service_url(name, settings)}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def start_service(name: str, settings: Settings, *, wait: bool = True, timeout: float = 60.0) -> int:
    """Start `python -m services.<name>` detached with the settings as environment; return its pid.

    Already running: returns that pid. With `wait`, blocks until GET /health answers 200.
    """
    pid = service_pid(name, settings)
    if pid is None:
        port = service_port(name, settings)
        if processes.port_open("127.0.0.1", port):
            raise DevstackError(f"port 127.0.0.1:{port} is in use by another process; {name} cannot start")
        # Leftovers of an earlier run whose leader died (its children keep the group alive).
        processes.stop_group(pid_file(settings, name), timeout=5.0)
        env = {**os.environ, **settings.as_env(), "PYTHONUNBUFFERED": "1"}
        pid = processes.spawn_detached(
            [sys.executable, "-m", _marker(name)],
            log_path=log_file(settings, name),
            pid_path=pid_file(settings, name),
            env=env,
            cwd=REPO_ROOT,
        )
    if wait:
        from flexledger.devstack.health import wait_healthy

        wait_healthy(name, settings, timeout)
    return pid


def stop_service(name: str, settings: Settings, timeout: float = 15.0) -> bool:
    """SIGTERM the service's process group, SIGKILL after `timeout`; True if it was running."""
    _check(name)
    return processes.stop_group(pid_file(settings, name), marker=_marker(name), timeout=timeout)
