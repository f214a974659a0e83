"""Is a part of the stack healthy, and waiting until it is (with an error naming the part and its log)."""

from __future__ import annotations

import time
from pathlib import Path

from flexledger.devstack import console, kafka, postgres, postgres_ha, processes, services, zipkin
from flexledger.devstack.errors import DevstackError
from flexledger.devstack.paths import log_file
from services.runtime.settings import Settings

INFRA: tuple[str, ...] = (kafka.PART, postgres.PART)
VIEWER: str = zipkin.PART  # the trace viewer: started by `dev up` only (tests and tools need no viewer)


def address(part: str, settings: Settings) -> str:
    if part == kafka.PART:
        return kafka.bootstrap(settings)
    if part == postgres.PART:
        return postgres_ha.with_standby(settings).pg_address
    if part == zipkin.PART:
        return zipkin.ui_url(settings)
    if part == console.PART:
        return console.console_url(settings)
    return services.service_url(part, settings)


def part_log(part: str, settings: Settings) -> Path:
    if part == postgres.PART:
        return postgres.layout(settings).log
    return log_file(settings, part)


def part_pid(part: str, settings: Settings) -> int | None:
    if part == kafka.PART:
        return kafka.kafka_pid(settings)
    if part == postgres.PART:
        return postgres.postgres_pid(settings)
    if part == zipkin.PART:
        return zipkin.zipkin_pid(settings)
    if part == console.PART:
        return console.console_pid(settings)
    return services.service_pid(part, settings)


def is_healthy(part: str, settings: Settings, timeout: float = 2.0) -> bool:
    """kafka: a metadata round trip that finds every node; postgres: a login as pg_user; zipkin and a
    service: GET /health is 200."""
    if part == kafka.PART:
        return kafka.kafka_healthy(settings, timeout)
    if part == postgres.PART:
        return postgres.pg_healthy(postgres_ha.with_standby(settings), timeout)
    if part == zipkin.PART:
        return zipkin.zipkin_healthy(settings, timeout)
    if part == console.PART:
        return console.console_healthy(settings, timeout)
    return services.service_healthy(part, settings, timeout)


def wait_healthy(part: str, settings: Settings, timeout: float = 60.0) -> float:
    """Block until `part` is healthy; return the seconds waited. Fails early if its process exits."""
    start = time.monotonic()
    deadline = start + timeout
    watched = part != postgres.PART  # a process of ours, with a pid file
    while True:
        if is_healthy(part, settings):
            return time.monotonic() - start
        log_path = part_log(part, settings)
        if watched and part_pid(part, settings) is None:
            raise DevstackError(
                f"{part} is not running (it exited or was never started); see {log_path}:\n"
                f"{processes.tail(log_path)}"
            )
        if time.monotonic() >= deadline:
            raise DevstackError(
                f"{part} at {address(part, settings)} not healthy after {timeout:.0f}s; see {log_path}:\n"
                f"{processes.tail(log_path)}"
            )
        time.sleep(0.5)
