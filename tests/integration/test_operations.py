"""What an operator sees, on the three services as processes: `/metrics` on every service counts a fact
through all three (and names no identity number), every metric the alerts and the dashboard use is
served, and `/health` turns `degraded` with the right reason while eligibility's events table is
locked, then `ok` again."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts.messages import BOOK_HTTP_HEADER
from flexledger.scenario_file import load_scenario
from services.runtime.settings import Settings
from tests.unit.test_operations_config import family_of, metrics_named_in_deploy

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
SERVICES = ("intake", "eligibility", "payments")
TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def watched(infra: Settings) -> Iterator[Settings]:
    """The three services, with a health watch that judges a stall after 3 s (sampled every second)."""
    from flexledger import devstack

    def stop() -> None:
        for name in reversed(devstack.SERVICES):
            devstack.stop_service(name, infra)

    settings = replace(infra, health_stall_s=3, health_interval_s=1)
    stop()
    try:
        for name in devstack.SERVICES:
            devstack.start_service(name, settings, timeout=90)
        yield settings
    finally:
        stop()


def _url(settings: Settings, service: str, path: str) -> str:
    return f"http://127.0.0.1:{getattr(settings, f'{service}_port')}{path}"


def _auth(settings: Settings) -> dict[str, str]:
    from flexledger.submit import operator_key

    return {"Authorization": f"Bearer {operator_key(settings)}"}


async def _eventually(what: str, probe: Callable[[], Awaitable[Any]]) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        if result := await probe():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return sum(value for (sample, have), value in samples.items()
               if sample == name and set(labels.items()) <= have)


async def _post_vector(client: httpx.AsyncClient, settings: Settings, book: str) -> list[dict[str, Any]]:
    facts: list[dict[str, Any]] = load_scenario(VECTOR)["facts"]
    headers = {BOOK_HTTP_HEADER: book, **_auth(settings)}
    for fact in facts:
        response = await client.post(_url(settings, "intake", "/v1/facts"), json=fact, headers=headers)
        assert response.status_code in (201, 400), response.text
    return facts


async def test_metrics_count_a_fact_through_every_service(watched: Settings) -> None:
    book = f"test-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(timeout=30) as client:
        facts = await _post_vector(client, watched, book)

        async def ordered() -> bool:
            page = await client.get(_url(watched, "payments", f"/v1/books/{book}/orders"),
                                    headers=_auth(watched))
            return bool(page.json()["orders"])

        await _eventually("the payment order", ordered)
        texts = {name: (await client.get(_url(watched, name, "/metrics"))).text for name in SERVICES}

    intake, eligibility, payments = (_samples(texts[name]) for name in SERVICES)
    assert _total(intake, "flexledger_intake_facts_total", channel="http", outcome="accepted") >= len(facts)
    assert _total(intake, "flexledger_http_requests_total", route="/v1/facts", status="201") >= len(facts)
    assert _total(eligibility, "flexledger_eligibility_decisions_total", books="sandbox", kind="grant",
                  programme="employment_service") >= 1
    assert _total(eligibility, "flexledger_kafka_consumer_batch_messages_count") >= 1
    assert _total(payments, "flexledger_payments_orders_total", books="sandbox", outcome="created") >= 1
    assert _total(intake, "flexledger_outbox_batch_events_count") >= 1
    # No identity number, fact id or book in any label or value.
    for text in texts.values():
        assert "320213197804121019" not in text and "91320213MA1XY0001L" not in text and book not in text


async def test_every_metric_the_alerts_and_dashboard_name_is_served(watched: Settings) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        served = set()
        for name in SERVICES:
            text = (await client.get(_url(watched, name, "/metrics"))).text
            served |= {family.name for family in text_string_to_metric_families(text)}
    missing = {name for name in metrics_named_in_deploy() if family_of(name) not in served}
    assert not missing, f"deploy/ names metrics no service serves: {sorted(missing)}"


async def test_health_is_degraded_while_a_table_is_locked_then_ok(watched: Settings) -> None:
    book = f"test-{uuid.uuid4().hex}"
    health_url = _url(watched, "eligibility", "/health")
    async with httpx.AsyncClient(timeout=30) as client:

        async def ok() -> bool:
            return bool((await client.get(health_url)).json()["status"] == "ok")

        await _eventually("eligibility ok", ok)
        # The owner role may lock eligibility's events table; the held transaction keeps the lock.
        conn = await asyncpg.connect(watched.pg_dsn())
        try:
            locked = conn.transaction()
            await locked.start()
            await conn.execute("LOCK TABLE eligibility.eligibility_events IN ACCESS EXCLUSIVE MODE")
            await _post_vector(client, watched, book)

            def stalled(reason: str) -> bool:
                return (reason.startswith("consumer eligibility on sandbox.flexledger.intake.facts.v1")
                        and "no progress" in reason)

            async def degraded() -> dict[str, Any] | None:
                response = await client.get(health_url)
                report = response.json()
                assert report["status"] in ("ok", "degraded") and response.status_code == 200, report
                return report if any(map(stalled, report["reasons"])) else None

            report = await _eventually("eligibility's consumer reported stalled", degraded)
            assert report["status"] == "degraded"
            reasons = report["reasons"]
            assert any(r.startswith("database: the eligibility event log") for r in reasons), reasons
            await locked.rollback()
        finally:
            await conn.close()
        await _eventually("eligibility ok again", ok)
        progress = (await client.get(_url(watched, "eligibility", f"/v1/books/{book}/progress"),
                                     headers=_auth(watched))).json()
        assert progress["last_seq"] >= 1
