"""`stack`: the broker, PostgreSQL and the three services as processes, healthy before every test.

The fault tests kill and restart parts of the stack, so each test first brings back whatever is not
healthy (a test that failed half-way must not take the next one down with it). Services started here
are stopped at the end of the session (the `infra` fixture stops the broker and PostgreSQL).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from services.runtime.settings import Settings

SECOND_INSTANCE = "b"
LOG_LINES_ON_FAILURE = 40


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    """A failed fault test shows the services' last warnings and errors: the stack is gone by the time
    anyone reads a CI log, and the test's own output only says what the client saw."""
    outcome: Any = yield
    report = outcome.get_result()
    settings = item.funcargs.get("stack") if hasattr(item, "funcargs") else None
    if report.when != "call" or not report.failed or not isinstance(settings, Settings):
        return
    from flexledger import devstack
    from flexledger.devstack.paths import log_file

    for name in devstack.SERVICES:
        path = log_file(settings, name)
        if path.exists():
            lines = [_short(line) for line in path.read_text(errors="replace").splitlines()
                     if '"WARNING"' in line or '"ERROR"' in line]
            tail = "\n".join(lines[-LOG_LINES_ON_FAILURE:])
            report.sections.append((f"{name} log: last warnings and errors", tail))


def _short(line: str) -> str:
    """One JSON log line as time, level, message and the exception's last line (what was raised)."""
    try:
        entry = json.loads(line)
    except ValueError:
        return line[:300]
    raised = str(entry.get("exc_info", "")).strip().splitlines()[-1:]
    return " ".join([entry.get("time", ""), entry.get("level", ""), entry.get("message", ""), *raised])[:600]


def _bring_up(settings: Settings, local: bool) -> None:
    from flexledger import devstack
    from flexledger.devstack import kafka, postgres

    if local and not devstack.is_healthy("kafka", settings):
        kafka.start_kafka(settings)
        devstack.wait_healthy("kafka", settings, 120)
    if local and not devstack.is_healthy("postgres", settings):
        postgres.start_postgres(settings)
    for name in devstack.SERVICES:
        if not devstack.is_healthy(name, settings):
            devstack.stop_service(name, settings)
            devstack.start_service(name, settings, timeout=120)


@pytest.fixture(scope="session")
def fault_stack(infra: Settings, infra_source: str) -> Iterator[Settings]:
    from flexledger import devstack
    from flexledger.devstack import services

    try:
        yield infra
    finally:
        services.stop_service("eligibility", infra, instance=SECOND_INSTANCE)
        for name in reversed(devstack.SERVICES):
            devstack.stop_service(name, infra)


@pytest.fixture
def stack(fault_stack: Settings, infra_source: str) -> Settings:
    """The stack, every part healthy (restarted if a previous test left it down)."""
    t0 = time.monotonic()
    _bring_up(fault_stack, infra_source == "local")
    print(f"stack healthy in {time.monotonic() - t0:.1f}s")
    return fault_stack


@pytest.fixture
def local_infra(infra_source: str) -> None:
    """Faults of the broker and the database need the local ones (devstack), not containers or given
    endpoints."""
    if infra_source != "local":
        pytest.skip(f"the broker and database come from {infra_source}: they cannot be restarted here")


@pytest.fixture
def cluster_stack(cluster_infra: Settings) -> Settings:
    """The three services on the three-broker cluster (`cluster_infra`), every node and service up
    (restarted if a previous test left one down)."""
    from flexledger import devstack
    from flexledger.devstack import kafka

    t0 = time.monotonic()
    if not devstack.is_healthy("kafka", cluster_infra):
        kafka.start_kafka(cluster_infra)
        devstack.wait_healthy("kafka", cluster_infra, 120)
    for name in devstack.SERVICES:
        if not devstack.is_healthy(name, cluster_infra):
            devstack.stop_service(name, cluster_infra)
            devstack.start_service(name, cluster_infra, timeout=120)
    print(f"cluster stack healthy in {time.monotonic() - t0:.1f}s")
    return cluster_infra


@pytest.fixture
def ha_stack(ha_infra: Settings) -> Settings:
    """The three services on PostgreSQL with a synchronous standby (`ha_infra`), every part up (the pair
    started again, the old primary cloned from the new one, if a previous test left it failed over)."""
    from flexledger import devstack
    from flexledger.devstack import postgres_ha

    t0 = time.monotonic()
    if not all(node.role != "down" for node in postgres_ha.status(ha_infra)):
        postgres_ha.start(ha_infra)
    for name in devstack.SERVICES:
        if not devstack.is_healthy(name, ha_infra):
            devstack.stop_service(name, ha_infra)
            devstack.start_service(name, ha_infra, timeout=120)
    print(f"HA stack healthy in {time.monotonic() - t0:.1f}s")
    return ha_infra
