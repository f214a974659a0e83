"""Zipkin server, the local stack's trace viewer: one JVM from the Maven-fetched executable jar, spans kept
in memory (a restart forgets them), bound to 127.0.0.1:`zipkin_port`.

The services export to it when `flexledger dev up` started it (`services.service_env`); its UI is at
`ui_url(settings)`, one trace at `trace_url(settings, trace_id)`, and `flexledger trace` reads its
API (`/api/v2/...`).
"""

from __future__ import annotations

import os

import httpx

from flexledger.devstack import processes
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.jars import ensure_zipkin_jar, java_executable
from flexledger.devstack.paths import log_file, pid_file, state_dir
from services.runtime.settings import Settings

PART = "zipkin"
HOST = "127.0.0.1"
MARKER = "zipkin-server"
# A small heap and a quick JIT: it is a viewer for one developer's stack, not a store. Zipkin drops the
# oldest traces past MAX_SPANS (a long benchmark keeps the last ones); about 3 KB of heap each, so the
# heap holds them with room to spare (a fuller one made it pause past the exporters' timeout).
JVM_OPTIONS = ("-Xms64m", "-Xmx768m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
MAX_SPANS = 100_000


def base_url(settings: Settings) -> str:
    return f"http://{HOST}:{settings.zipkin_port}"


def spans_endpoint(settings: Settings) -> str:
    """Where the services send their spans (OTEL_EXPORTER_ZIPKIN_ENDPOINT)."""
    return f"{base_url(settings)}/api/v2/spans"


def ui_url(settings: Settings) -> str:
    return f"{base_url(settings)}/zipkin/"


def trace_url(settings: Settings, trace_id: str) -> str:
    """Zipkin's page of one trace."""
    return f"{base_url(settings)}/zipkin/traces/{trace_id}"


def zipkin_pid(settings: Settings) -> int | None:
    return processes.running_pid(pid_file(settings, PART), MARKER)


def zipkin_healthy(settings: Settings, timeout: float = 2.0) -> bool:
    """GET /health answers 200 (Zipkin says UP once its storage and HTTP server are)."""
    try:
        return httpx.get(f"{base_url(settings)}/health", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def start_zipkin(settings: Settings) -> int:
    """Start Zipkin detached (idempotent); return its pid. It takes 10-60 s to answer: wait with
    `health.wait_healthy(PART, ...)`."""
    pid = zipkin_pid(settings)
    if pid is not None:
        return pid
    if processes.port_open(HOST, settings.zipkin_port):
        raise DevstackError(f"port {HOST}:{settings.zipkin_port} is in use by another process; "
                            "Zipkin cannot start (set FLEXLEDGER_ZIPKIN_PORT)")
    jar = ensure_zipkin_jar()
    env = {**os.environ, "STORAGE_TYPE": "mem", "MEM_MAX_SPANS": str(MAX_SPANS),
           "QUERY_PORT": str(settings.zipkin_port)}
    workdir = state_dir(settings) / PART
    workdir.mkdir(parents=True, exist_ok=True)
    return processes.spawn_detached(
        [java_executable(), *JVM_OPTIONS, "-jar", str(jar),
         f"--armeria.ports[0].ip={HOST}", f"--armeria.ports[0].port={settings.zipkin_port}"],
        log_path=log_file(settings, PART), pid_path=pid_file(settings, PART), env=env, cwd=workdir,
    )


def stop_zipkin(settings: Settings, timeout: float = 15.0) -> bool:
    """SIGTERM Zipkin's process group, SIGKILL after `timeout`; True if it was running."""
    return processes.stop_group(pid_file(settings, PART), marker=MARKER, timeout=timeout)
