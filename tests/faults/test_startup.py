"""Services started while their broker or database is down wait for it, then work as if nothing happened.

Eligibility and payments are stopped, the broker (or PostgreSQL) is stopped, and the two services are
started again: they do not exit, their health says `starting` and what they wait for. The broker (or
PostgreSQL) comes back; they become ready by themselves, and a stream of facts is decided as the engine
decides it and paid once (`faultkit.verify_book`).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx
import pytest
from faultkit import StreamStats, generated_facts, submit_stream, url, verify_book

from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

WAITING = ("eligibility", "payments")


def _health(settings: Settings, service: str) -> tuple[int, dict[str, object]]:
    try:
        response = httpx.get(url(settings, service, "/health"), timeout=2.0)
    except httpx.TransportError:
        return 0, {}
    return response.status_code, response.json()


def _waiting_for(settings: Settings, service: str, dependency: str) -> bool:
    status, body = _health(settings, service)
    return status == 503 and body.get("status") == "starting" and \
        str(body.get("waiting_for", "")).startswith(dependency)


def _start_while_down(settings: Settings, dependency: str, stop: Callable[[], object],
                      start: Callable[[], object]) -> str:
    """Stop the services, stop the dependency, start the services, see them wait, bring it back;
    return what happened (with the seconds to ready after the dependency came back)."""
    from flexledger.devstack import processes, services
    from flexledger.devstack.health import wait_healthy

    for name in WAITING:
        services.stop_service(name, settings)
    assert stop(), f"{dependency} was not running"
    for name in WAITING:
        services.start_service(name, settings, wait=False)
    for name in WAITING:
        assert processes.wait_until(lambda n=name: _waiting_for(settings, n, dependency), 60, 0.2), (
            f"{name} does not say it waits for the {dependency}: {_health(settings, name)}")
    time.sleep(3)  # a few backoffs: still there, still waiting
    for name in WAITING:
        alive = services.service_pid(name, settings) is not None
        assert alive, f"{name} exited while the {dependency} was down"
        assert _waiting_for(settings, name, dependency), _health(settings, name)
    start()
    back = time.monotonic()
    ready: list[str] = []
    for name in WAITING:
        wait_healthy(name, settings, 120)
        ready.append(f"{name} {time.monotonic() - back:.1f}s")
    return f"{dependency} back; ready after: {', '.join(ready)}"


async def _stream_decided(settings: Settings, label: str, seed: int) -> list[str]:
    facts = generated_facts(15, 6, seed)
    book = f"startup-{label}-{uuid.uuid4().hex[:12]}"
    since_ms = int(time.time() * 1000) - 1000
    receipts = await submit_stream(settings, book, facts, stats=StreamStats())
    verdict = await verify_book(settings, book, receipts, since_ms)
    return [f"{verdict.facts} facts, {verdict.decisions} decisions = engine, {verdict.grants} grants"]


async def test_services_started_while_the_broker_is_down_wait_for_it(
    stack: Settings, local_infra: None,
) -> None:
    from flexledger.devstack import kafka
    from flexledger.devstack.health import wait_healthy

    def start_kafka() -> None:
        kafka.start_kafka(stack)
        wait_healthy(kafka.PART, stack, 120)

    happened = _start_while_down(stack, "broker", lambda: kafka.stop_kafka(stack), start_kafka)
    print(happened, *await _stream_decided(stack, "kafka", 21))


async def test_services_started_while_the_database_is_down_wait_for_it(
    stack: Settings, local_infra: None,
) -> None:
    from flexledger.devstack import postgres

    happened = _start_while_down(stack, "database", lambda: postgres.stop_postgres(stack),
                                 lambda: postgres.start_postgres(stack))
    print(happened, *await _stream_decided(stack, "postgres", 22))
