"""End to end: one fact POSTed over HTTP becomes events in intake, eligibility and payments, and
everything it caused is one connected trace (the three services in-process, sharing one
TracerProvider with an in-memory exporter; the broker and database are real)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts.messages import BOOK_HTTP_HEADER, fact_subject
from contracts.topics import SANDBOX_DECISIONS, SANDBOX_FACTS, SANDBOX_ORDERS
from flexledger.devstack.credentials import as_principal
from flexledger.scenario_file import load_scenario
from services.eligibility.application import EligibilityApplication
from services.eligibility.bootstrap import bootstrap as eligibility_bootstrap
from services.intake.aggregates import FactSubmission
from services.intake.application import IntakeApplication
from services.intake.bootstrap import bootstrap as intake_bootstrap
from services.payments.aggregates import PaymentsBookStream
from services.payments.application import PaymentsApplication
from services.payments.bootstrap import bootstrap as payments_bootstrap
from services.runtime.settings import Settings

# The services live in the session loop (where async fixtures run): the test must run there too.
pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
TIMEOUT_S = 60.0


class Stack:
    def __init__(self, settings: Settings, exporter: InMemorySpanExporter, provider: TracerProvider) -> None:
        self.settings = settings
        self.exporter = exporter
        self.provider = provider
        # Each service on Kafka as its own principal, as in its own process (docs/design/kafka-trust.md).
        kafka = {name: as_principal(settings, name) for name in ("intake", "eligibility", "payments")}
        self.intake = intake_bootstrap(kafka["intake"], provider)
        self.eligibility = eligibility_bootstrap(kafka["eligibility"], provider)
        self.payments = payments_bootstrap(kafka["payments"], provider)
        self.intake_url = f"http://127.0.0.1:{settings.intake_port}"


@pytest.fixture
async def stack(infra: Settings) -> AsyncIterator[Stack]:
    from flexledger import devstack

    for name in devstack.SERVICES:  # the same ports, consumer groups and writer lock: one copy only
        devstack.stop_service(name, infra)
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    s = Stack(infra.for_service(), exporter, provider)  # as the services' runtime role, like a process
    services = (s.intake, s.eligibility, s.payments)
    server = uvicorn.Server(uvicorn.Config(s.intake.http, host="127.0.0.1", port=infra.intake_port,
                                           log_config=None, lifespan="off"))
    for service in services:
        await service.start()
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield s
    finally:
        server.should_exit = True
        await serving
        for service in reversed(services):
            await service.stop()
        provider.shutdown()


async def _eventually(what: str, probe: Any) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while not (result := await probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


def _trace_of(spans: tuple[ReadableSpan, ...], trace_id: int) -> list[ReadableSpan]:
    return [s for s in spans if s.context is not None and s.context.trace_id == trace_id]


async def test_one_fact_over_http_is_one_trace_through_all_three_services(stack: Stack) -> None:
    facts = load_scenario(VECTOR)["facts"]
    book = f"e2e-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(timeout=30) as client:
        from flexledger.submit import operator_key  # intake wants an API key: the bootstrap operator key

        operator = {"Authorization": f"Bearer {operator_key(stack.settings)}"}
        headers = {BOOK_HTTP_HEADER: book, **operator}
        responses = [await client.post(f"{stack.intake_url}/v1/facts", json=f, headers=headers)
                     for f in facts]
    assert [r.status_code for r in responses] == [201] * len(facts)

    async def ordered() -> list[dict[str, Any]]:  # payments' HTTP API, in process
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.payments.http),
                                     base_url="http://payments", headers=operator) as payments_api:
            response = await payments_api.get(f"/v1/books/{book}/orders", params={"limit": 10})
        orders: list[dict[str, Any]] = response.json()["orders"]
        return orders

    orders = await _eventually("the payment order", ordered)
    assert len(orders) == 1 and orders[0]["amount_fen"] == 100000
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=stack.eligibility.http),
                                 base_url="http://eligibility", headers=operator) as eligibility_http:
        page = await eligibility_http.get(f"/v1/books/{book}/decisions", params={"limit": 100})
    grants = [d for d in page.json()["decisions"] if d["kind"] == "grant"]
    assert len(grants) == 1
    grant = grants[0]
    # The order, the decision and the fact that caused them carry one trace id.
    assert orders[0]["trace_id"] == grant["trace_id"]
    trace_id = int(grant["trace_id"], 16)

    intake_app = IntakeApplication(stack.settings)  # intake's events, read as any reader of its store would
    try:
        submitted = [e for _, e in intake_app.notifications(0, 1_000_000)
                     if isinstance(e, FactSubmission.Recorded) and e.book == book
                     and e.fact_id == grant["after"]]
    finally:
        intake_app.close()
    assert len(submitted) == 1 and submitted[0].traceparent.split("-")[1] == grant["trace_id"]
    eligibility = EligibilityApplication(stack.settings)  # the store the service wrote, read by the test
    try:
        processed = [e for e in eligibility.stream_events(book, fact_subject(submitted[0].fact))
                     if e.fact_id == grant["after"]]
    finally:
        eligibility.close()
    assert len(processed) == 1 and processed[0].trace_id == grant["trace_id"]
    payments_store = PaymentsApplication(stack.settings)  # the payments event store, read as it is
    try:
        paid = [e for _, e in payments_store.notifications(0, 1_000_000)
                if isinstance(e, PaymentsBookStream.Recorded) and e.book == book
                and e.cause["kind"] == "decision"]
    finally:
        payments_store.close()
    assert len(paid) == 1 and paid[0].trace_id == grant["trace_id"]

    async def traced() -> list[ReadableSpan]:
        spans = _trace_of(stack.exporter.get_finished_spans(), trace_id)
        return spans if any(s.name == f"{SANDBOX_ORDERS.name} publish" for s in spans) else []

    spans = await _eventually("the whole trace", traced)
    names = [s.name for s in spans]
    # The test book is a sandbox book: its messages travel on the sandbox twins of the topics.
    for expected in (
        "POST /v1/facts", "intake db commit", f"{SANDBOX_FACTS.name} publish",
        f"{SANDBOX_FACTS.name} process", "eligibility db commit",
        f"{SANDBOX_DECISIONS.name} publish", f"{SANDBOX_DECISIONS.name} process",
        "payments db commit", f"{SANDBOX_ORDERS.name} publish",
    ):
        assert expected in names, f"{expected!r} missing from the trace: {sorted(set(names))}"
    # Connected: one root (the HTTP request), every other span's parent is in the same trace.
    ids = {s.context.span_id for s in spans if s.context is not None}
    roots = [s for s in spans if s.parent is None or s.parent.span_id not in ids]
    assert [r.name for r in roots] == ["POST /v1/facts"]
    # No identity number in clear in any span attribute.
    worker = grant["subject"]
    for span in stack.exporter.get_finished_spans():
        assert all(worker not in str(value) for value in (span.attributes or {}).values()), span.name
