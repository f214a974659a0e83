"""The three services as detached processes: `python -m services.<name>`, healthy when GET /health is 200."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any

import httpx

from flexledger.devstack import credentials, kafka, postgres_ha, processes, supervisor, zipkin
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import REPO_ROOT, log_file, pid_file
from services.runtime.settings import Settings

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


def instance_part(name: str, instance: str = "") -> str:
    """The part name of one instance: `eligibility`, or `eligibility-b` for a second instance (its pid
    file and log). A second instance runs the same code with the same settings except its HTTP port, so
    it joins the same consumer group: `start_service("eligibility", replace(settings,
    eligibility_port=...), instance="b")`."""
    _check(name)
    if instance and not instance.isalnum():
        raise DevstackError(f"instance {instance!r} must be letters and digits")
    return f"{name}-{instance}" if instance else name


def service_pid(name: str, settings: Settings, *, instance: str = "") -> int | None:
    return processes.running_pid(pid_file(settings, instance_part(name, instance)), _marker(name))


def service_healthy(name: str, settings: Settings, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{service_url(name, settings)}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def service_health(name: str, settings: Settings, timeout: float = 2.0) -> dict[str, Any] | None:
    """The service's health report (status, reasons, ...), None when it does not answer."""
    try:
        report = httpx.get(f"{service_url(name, settings)}/health", timeout=timeout).json()
    except (httpx.HTTPError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def service_env(name: str, settings: Settings) -> dict[str, str]:
    """The environment of `python -m services.<name>`: the settings, connected to Kafka as the
    service's own principal (its name) with its local password, exporting its spans to the local
    Zipkin when that runs and no other export is set (`traces_to_zipkin`)."""
    _check(name)
    every_node = postgres_ha.with_standby(kafka.with_cluster(settings))  # every broker and database node
    own = traces_to_zipkin(credentials.as_principal(every_node, name))
    return {**os.environ, **own.as_env(), "PYTHONUNBUFFERED": "1"}


def traces_to_zipkin(settings: Settings) -> Settings:
    """`settings`, exporting spans to the local Zipkin if it runs and nothing else receives them."""
    exported = (settings.otel_exporter_otlp_endpoint or settings.otel_exporter_zipkin_endpoint
                or settings.otel_traces_file)
    if exported or zipkin.zipkin_pid(settings) is None:
        return settings
    return replace(settings, otel_exporter_zipkin_endpoint=zipkin.spans_endpoint(settings))


def start_service(
    name: str, settings: Settings, *, wait: bool = True, timeout: float = 60.0, instance: str = "",
    supervised: bool = False,
) -> int:
    """Start `python -m services.<name>` detached with the settings as environment; return its pid.

    Already running: returns that pid. With `wait`, blocks until GET /health answers 200. `instance`
    names a further instance (see `instance_part`); give it settings with its own HTTP port.
    `supervised`: under a supervisor (flexledger.devstack.supervisor) that starts it again whenever
    it exits, as `flexledger dev up` runs the services.
    """
    part = instance_part(name, instance)
    pid = service_pid(name, settings, instance=instance)
    if pid is None:
        port = service_port(name, settings)
        if processes.port_open("127.0.0.1", port):
            raise DevstackError(f"port 127.0.0.1:{port} is in use by another process; {part} cannot start")
        # Leftovers of an earlier run whose leader died (its children keep the group alive).
        processes.stop_group(supervisor.supervisor_pid_path(pid_file(settings, part)), timeout=5.0)
        processes.stop_group(pid_file(settings, part), timeout=5.0)
        env = service_env(name, settings)
        # Each instance its own static Kafka group membership: a restart takes its partitions back.
        env[settings.env_name("kafka_instance_id")] = settings.kafka_instance_id or part
        pid = _spawn(name, settings, part, env, supervised)
    if wait and not instance:
        from flexledger.devstack.health import wait_healthy

        wait_healthy(name, settings, timeout)
    elif wait:
        _wait_instance(name, settings, instance, timeout)
    return pid


def _spawn(name: str, settings: Settings, part: str, env: dict[str, str], supervised: bool) -> int:
    command = [sys.executable, "-m", _marker(name)]
    pid_path = pid_file(settings, part)
    if not supervised:
        return processes.spawn_detached(command, log_path=log_file(settings, part), pid_path=pid_path,
                                        env=env, cwd=REPO_ROOT)
    pid_path.unlink(missing_ok=True)  # the supervisor writes it when the service runs
    processes.spawn_detached(
        [sys.executable, "-m", "flexledger.devstack.supervisor", "--log", str(log_file(settings, part)),
         "--pid", str(pid_path), "--", *command],
        log_path=log_file(settings, part), pid_path=supervisor.supervisor_pid_path(pid_path), env=env,
        cwd=REPO_ROOT,
    )
    if not processes.wait_until(lambda: processes.running_pid(pid_path, _marker(name)) is not None, 10.0):
        raise DevstackError(f"the supervisor of {part} did not start it; see {log_file(settings, part)}:\n"
                            f"{processes.tail(log_file(settings, part))}")
    pid = processes.read_pid(pid_path)
    assert pid is not None
    return pid


def supervision(name: str, settings: Settings, *, instance: str = "") -> supervisor.Supervision | None:
    """The restarts and last exit of a supervised service; None when no supervisor runs it."""
    return supervisor.read_state(pid_file(settings, instance_part(name, instance)))


def _wait_instance(name: str, settings: Settings, instance: str, timeout: float) -> None:
    part = instance_part(name, instance)
    healthy = processes.wait_until(
        lambda: service_healthy(name, settings) or service_pid(name, settings, instance=instance) is None,
        timeout, interval=0.5,
    )
    if not (healthy and service_healthy(name, settings)):
        gone = service_pid(name, settings, instance=instance) is None
        state = "exited" if gone else f"not healthy in {timeout:.0f}s"
        raise DevstackError(f"{part} {state}; see {log_file(settings, part)}:\n"
                            f"{processes.tail(log_file(settings, part))}")


def stop_service(name: str, settings: Settings, timeout: float = 15.0, *, instance: str = "") -> bool:
    """SIGTERM the service's process group, SIGKILL after `timeout`; True if it was running."""
    part = instance_part(name, instance)
    # The supervisor first (it stops the service it runs), or it would start the service again.
    supervised = processes.stop_group(supervisor.supervisor_pid_path(pid_file(settings, part)),
                                      marker=supervisor.__name__, timeout=timeout + 5.0)
    stopped = processes.stop_group(pid_file(settings, part), marker=_marker(name), timeout=timeout)
    return supervised or stopped


def kill_service(name: str, settings: Settings, *, instance: str = "") -> bool:
    """SIGKILL the service's process group at once (a crash, for fault tests); True if it was running.
    The pid file stays: `start_service` sees the process is gone and starts a new one."""
    pid = service_pid(name, settings, instance=instance)
    if pid is None:
        return False
    processes.kill_group(pid)
    # The leader shows as a zombie while its other threads still exit and hold its sockets open.
    port = service_port(name, settings)
    if not processes.wait_until(lambda: not processes.port_open("127.0.0.1", port), 10.0, interval=0.05):
        raise DevstackError(f"port {port} still open 10s after {instance_part(name, instance)} was killed")
    return True
