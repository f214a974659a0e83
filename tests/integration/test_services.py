"""The three services as processes on the real broker and database: a fact posted to intake becomes
events in all three services, redelivered messages change nothing, and a sandbox book's messages travel
only on the sandbox topics (the test books are sandbox books; `main` is the production book)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from eventsourcing.persistence import Tracking

from contracts.messages import BOOK_HTTP_HEADER, FactMessageV1, fact_subject
from contracts.topics import (
    DECISIONS,
    DISBURSEMENTS,
    FACTS,
    ORDERS,
    SANDBOX_DECISIONS,
    SANDBOX_FACTS,
    STATISTICS,
    Topic,
    sandbox_twin,
)
from flexledger.devstack.credentials import client_args
from flexledger.scenario_file import load_scenario
from services.eligibility.aggregates import DecisionChain, chain_content
from services.eligibility.application import EligibilityApplication, FactOutcome
from services.eligibility.domain.chain import verify_chain
from services.intake.aggregates import FactSubmission
from services.intake.application import IntakeApplication
from services.payments.aggregates import PaymentsBookStream
from services.payments.application import PaymentsApplication
from services.runtime.keys import facts_mac_key, partition_key_secret
from services.runtime.message_auth import tag_header
from services.runtime.publishing import PartitionKeys
from services.runtime.settings import Settings

# Async fixtures run in the session loop; the tests share it (clients and services in one loop).
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

VECTOR = Path(__file__).resolve().parents[1] / "vectors" / "01-employment-service-difficulty.yaml"
TIMEOUT_S = 60.0


async def _eventually(what: str, probe: Callable[[], Awaitable[Any]], timeout_s: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        if result := await probe():
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Flow:
    settings: Settings
    book: str
    facts: list[dict[str, Any]]
    worker: str
    grant: dict[str, Any]
    orders: list[dict[str, Any]]


def _auth(settings: Settings) -> dict[str, str]:
    """Intake wants an API key: the bootstrap operator key of the test stack."""
    from flexledger.submit import operator_key

    return {"Authorization": f"Bearer {operator_key(settings)}"}


def _url(settings: Settings, service: str, path: str) -> str:
    return f"http://127.0.0.1:{getattr(settings, f'{service}_port')}{path}"


@pytest.fixture(scope="module")
async def flow(services: Settings) -> Flow:
    """Vector 01 (one employment-service grant) posted to a fresh book, waited for through payments."""
    facts = load_scenario(VECTOR)["facts"]
    book = f"test-{uuid.uuid4().hex}"
    async with httpx.AsyncClient(timeout=30, headers=_auth(services)) as client:
        headers = {BOOK_HTTP_HEADER: book, **_auth(services)}
        for fact in facts:
            response = await client.post(_url(services, "intake", "/v1/facts"), json=fact, headers=headers)
            assert response.status_code in (201, 400), response.text

        async def decided() -> bool:
            progress = (await client.get(_url(services, "eligibility", f"/v1/books/{book}/progress"))).json()
            return bool(progress["last_seq"] == len(facts))

        await _eventually("every fact decided", decided)

        async def grant() -> dict[str, Any] | None:
            page = (await client.get(_url(services, "eligibility", f"/v1/books/{book}/decisions"))).json()
            return next((d for d in page["decisions"] if d["kind"] == "grant"), None)

        granted = await _eventually("the grant", grant)

        async def orders() -> list[dict[str, Any]]:
            return (await client.get(_url(services, "payments", f"/v1/books/{book}/orders"))).json()["orders"]

        found = await _eventually("the payment order", orders)
    return Flow(services, book, facts, granted["subject"], granted, found)


async def test_a_fact_becomes_events_in_all_three_services(flow: Flow) -> None:
    intake = IntakeApplication(flow.settings)
    eligibility = EligibilityApplication(flow.settings)
    payments = PaymentsApplication(flow.settings)
    try:
        submitted = [e for _, e in intake.notifications(0, 100_000)
                     if isinstance(e, FactSubmission.Recorded) and e.book == flow.book]
        assert [e.seq for e in submitted] == list(range(1, len(flow.facts) + 1))
        assert all(e.traceparent for e in submitted)

        stream = eligibility.stream_events(flow.book, flow.worker)
        about_worker = sorted(e.seq for e in submitted if fact_subject(e.fact) == flow.worker)
        assert [e.seq for e in stream] == about_worker
        grant_id = flow.grant["decision_id"]
        granting = [e for e in stream if any(d["decision_id"] == grant_id for d in e.decisions)]
        assert len(granting) == 1 and granting[0].trace_id == flow.grant["trace_id"]
        assert verify_chain([(chain_content(e.__dict__), e.hash) for e in stream]) is None

        assert flow.orders == [{**flow.orders[0], "event": "order_created", "decision_id": grant_id,
                                "amount_fen": 100000, "trace_id": flow.grant["trace_id"]}]
        stored = [e for _, e in payments.notifications(0, 100_000)
                  if isinstance(e, PaymentsBookStream.Recorded) and e.book == flow.book
                  and e.cause["kind"] == "decision"]
        assert [e.cause["decision_id"] for e in stored] == [flow.grant["decision_id"]]
    finally:
        for app in (intake, eligibility, payments):
            app.close()


async def test_identity_numbers_are_encrypted_at_rest(flow: Flow) -> None:
    conn = await asyncpg.connect(flow.settings.pg_dsn())
    try:
        for schema in ("intake", "eligibility", "payments"):
            found = await conn.fetchval(
                f"SELECT count(*) FROM {schema}.{schema}_events WHERE position($1::bytea IN state) > 0 "
                "OR topic LIKE '%' || $2 || '%' OR originator_id::text LIKE '%' || $2 || '%'",
                flow.worker.encode(), flow.worker,
            )
            assert found == 0, f"{schema} stores {flow.worker[:4]}... in clear"
    finally:
        await conn.close()


Record = ConsumerRecord[bytes, bytes]


async def test_intake_answers_with_the_status_of_each_outcome(services: Settings) -> None:
    book = f"test-{uuid.uuid4().hex}"
    fact = load_scenario(VECTOR)["facts"][0]
    url = _url(services, "intake", "/v1/facts")
    async with httpx.AsyncClient(timeout=30, headers=_auth(services)) as client:

        async def post(body: Any, book_header: str = book) -> httpx.Response:
            return await client.post(url, content=body if isinstance(body, bytes) else None,
                                     json=None if isinstance(body, bytes) else body,
                                     headers={BOOK_HTTP_HEADER: book_header, **_auth(services)})

        first = await post(fact)
        # The answer names the request's trace, as does its `traceparent` header.
        trace_id = first.headers["traceparent"].split("-")[1]
        accepted = {"outcome": "accepted", "fact_id": fact["id"], "seq": 1, "trace_id": trace_id}
        assert (first.status_code, first.json()) == (201, accepted)
        again = await post(fact)
        assert (again.status_code, again.json()["duplicate"], again.json()["seq"]) == (200, True, 1)
        reused = await post({**fact, "name": "another name"})
        assert (reused.status_code, reused.json()["seq"]) == (409, 2)
        malformed = await post({"id": "x1", "type": "monthly_report"})
        assert malformed.status_code == 400 and "missing" in malformed.json()["reason"]
        assert (await post(b"{not json")).status_code == 400
        assert (await post(fact, book_header="Not/A/Book")).status_code == 422
        progress = (await client.get(_url(services, "intake", f"/v1/books/{book}/progress"))).json()
    assert progress == {"book": book, "last_seq": 3}  # accepted, reuse and malformed are recorded


async def test_a_poison_message_is_skipped_and_never_quoted(flow: Flow) -> None:
    from aiokafka.admin import AIOKafkaAdminClient

    from flexledger.devstack.paths import log_file

    log = log_file(flow.settings, "eligibility")
    logged_before = log.stat().st_size
    producer = AIOKafkaProducer(**client_args(flow.settings, "admin"), acks="all")
    await producer.start()
    try:
        # Not a FactMessageV1, though tagged as intake tags: it passes the tag, then fails validation.
        poison = json.dumps({"book": flow.book, "seq": 1, "fact": {"worker": flow.worker}}).encode()
        tag = tag_header(facts_mac_key(flow.settings), SANDBOX_FACTS.name, poison)
        meta = await producer.send_and_wait(SANDBOX_FACTS.name, poison, headers=[tag],
                                            key=_key(flow.settings, flow.book, flow.worker).encode())
    finally:
        await producer.stop()
    tp = TopicPartition(SANDBOX_FACTS.name, meta.partition)

    async def committed_past() -> bool:
        admin = AIOKafkaAdminClient(**client_args(flow.settings, "admin"))
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets("eligibility", partitions=[tp])
        finally:
            await admin.close()
        return tp in offsets and offsets[tp].offset > meta.offset

    await _eventually("the group to commit past the poison message", committed_past)
    with log.open("rb") as text:
        text.seek(logged_before)
        written = text.read().decode("utf-8", "replace")
    assert "PoisonMessage" in written and flow.worker not in written


async def _find(settings: Settings, topic: str, key: str, match: Callable[[Record], bool]) -> Record:
    """The first message with `key` on its partition that `match`es (scanning that partition)."""
    producer = AIOKafkaProducer(**client_args(settings, "admin"))
    await producer.start()
    try:  # the partition the services' producers chose for this key
        partitions = sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()
    tp = TopicPartition(topic, DefaultPartitioner()(key.encode(), partitions, partitions))
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if record.key == key.encode() and match(record):
                    return record
        raise AssertionError(f"no matching message with key {key[:12]}... on {topic}")
    finally:
        await consumer.stop()


async def _republish(settings: Settings, record: Record) -> int:
    producer = AIOKafkaProducer(**client_args(settings, "admin"), acks="all")
    await producer.start()
    try:
        meta = await producer.send_and_wait(
            record.topic, record.value, key=record.key, partition=record.partition,
            headers=list(record.headers),
        )
        return int(meta.offset)
    finally:
        await producer.stop()


async def _tracked(settings: Settings, schema: str, topic: str, partition: int) -> int:
    conn = await asyncpg.connect(settings.pg_dsn())
    try:
        value = await conn.fetchval(
            f"SELECT notification_id FROM {schema}.{schema}_tracking WHERE application_name = $1",
            f"kafka:{topic}:{partition}",
        )
        return -1 if value is None else int(value)
    finally:
        await conn.close()


async def _ledger_counts(flow: Flow) -> tuple[int, int, int]:
    async with httpx.AsyncClient(timeout=30, headers=_auth(flow.settings)) as client:
        book = f"/v1/books/{flow.book}"
        decisions = (await client.get(_url(flow.settings, "eligibility", f"{book}/decisions"))).json()
        orders = (await client.get(_url(flow.settings, "payments", f"{book}/orders"))).json()
    eligibility = EligibilityApplication(flow.settings)
    try:
        stream = len(eligibility.stream_events(flow.book, flow.worker))
    finally:
        eligibility.close()
    return stream, len(decisions["decisions"]), len(orders["orders"])


async def test_republished_fact_and_decision_change_nothing(flow: Flow) -> None:
    before = await _ledger_counts(flow)
    grant_fact = flow.grant["after"]
    fact = await _find(flow.settings, SANDBOX_FACTS.name, _key(flow.settings, flow.book, flow.worker),
                       lambda r: FactMessageV1.model_validate_json(r.value).fact_id == grant_fact)
    grant_key = _key(flow.settings, flow.book, flow.grant["beneficiary"])
    decision = await _find(flow.settings, SANDBOX_DECISIONS.name, grant_key,
                           lambda r: dict(r.headers).get("ce_id") == flow.grant["decision_id"].encode())
    fact_offset = await _republish(flow.settings, fact)
    decision_offset = await _republish(flow.settings, decision)

    async def consumed() -> bool:
        facts = await _tracked(flow.settings, "eligibility", SANDBOX_FACTS.name, fact.partition)
        decisions = await _tracked(flow.settings, "payments", SANDBOX_DECISIONS.name, decision.partition)
        return facts >= fact_offset and decisions >= decision_offset

    await _eventually("both copies consumed", consumed)
    await asyncio.sleep(0.5)  # a wrongly recorded copy would reach the read side within this
    assert await _ledger_counts(flow) == before


async def test_consumer_restarted_from_an_earlier_offset_changes_nothing(flow: Flow) -> None:
    from flexledger import devstack

    before = await _ledger_counts(flow)
    worker_key = _key(flow.settings, flow.book, flow.worker)
    first = await _find(flow.settings, SANDBOX_FACTS.name, worker_key, lambda r: True)
    tp = TopicPartition(SANDBOX_FACTS.name, first.partition)
    tracked = await _tracked(flow.settings, "eligibility", SANDBOX_FACTS.name, first.partition)
    devstack.stop_service("eligibility", flow.settings)
    try:
        # Join the (now empty) group as its only member, then move its committed offset back.
        rewind = AIOKafkaConsumer(SANDBOX_FACTS.name, **client_args(flow.settings, "admin"),
                                  group_id="eligibility", enable_auto_commit=False)
        await rewind.start()
        try:
            await _eventually("the group assignment", _assigned(rewind, tp))
            await rewind.commit({tp: first.offset})  # the group now re-reads our whole stream
        finally:
            await rewind.stop()
    finally:
        devstack.start_service("eligibility", flow.settings, timeout=90)

    async def caught_up() -> bool:
        admin = AIOKafkaConsumer(**client_args(flow.settings, "admin"), group_id="eligibility",
                                 enable_auto_commit=False)
        await admin.start()
        try:
            return (await admin.committed(tp) or 0) > tracked
        finally:
            await admin.stop()

    await _eventually("the group to re-read past its old position", caught_up)
    assert await _ledger_counts(flow) == before
    assert await _tracked(flow.settings, "eligibility", SANDBOX_FACTS.name, first.partition) == tracked


async def _bodies(settings: Settings, topic: Topic) -> list[dict[str, Any]]:
    """Every JSON message on `topic`, from the beginning to the end offsets of now (poison skipped)."""
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        bodies = []
        while any([await consumer.position(tp) < ends[tp] for tp in partitions]):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    try:
                        body = json.loads(record.value or b"")
                    except ValueError:
                        continue
                    if isinstance(body, dict):
                        bodies.append(body)
        return bodies
    finally:
        await consumer.stop()


async def test_a_sandbox_book_travels_only_on_the_sandbox_topics(flow: Flow) -> None:
    """The flow's test book is a sandbox book: its facts, decisions and orders are on the `sandbox.`
    twins and nothing of it is on a production topic, where Finance, Statistics and tax would read it.
    A fact of `main`, the production book, and its decision are only on the production topics."""
    main_fact = {"id": f"probe-{uuid.uuid4().hex}", "type": "monthly_report"}  # rejected, and recorded
    async with httpx.AsyncClient(timeout=30, headers=_auth(flow.settings)) as client:
        response = await client.post(_url(flow.settings, "intake", "/v1/facts"), json=main_fact,
                                     headers={BOOK_HTTP_HEADER: "main", **_auth(flow.settings)})
    assert response.status_code == 400, response.text

    def of_main(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ours = (b for b in bodies if b.get("book") == "main")
        return [b for b in ours if main_fact["id"] in (b.get("fact_id"), b.get("after"))]

    async def sandbox_orders_and_main_decision() -> bool:
        ordered = {b["order_id"] for b in await _bodies(flow.settings, sandbox_twin(ORDERS))
                   if b.get("book") == flow.book}
        decided = of_main(await _bodies(flow.settings, DECISIONS))
        return ordered >= {o["order_id"] for o in flow.orders} and bool(decided)

    await _eventually("the orders and the main book's decision published", sandbox_orders_and_main_decision)
    for topic in (FACTS, DECISIONS, STATISTICS, ORDERS, DISBURSEMENTS):
        production = await _bodies(flow.settings, topic)
        assert not [b for b in production if b.get("book") == flow.book], f"a sandbox book on {topic.name}"
        sandbox = await _bodies(flow.settings, sandbox_twin(topic))
        assert not [b for b in sandbox if b.get("book") == "main"], f"main on the twin of {topic.name}"
        if topic in (FACTS, DECISIONS):
            assert of_main(production) and not of_main(sandbox), topic.name
    sandbox_facts = [b for b in await _bodies(flow.settings, SANDBOX_FACTS) if b.get("book") == flow.book]
    assert {b.get("fact_id") for b in sandbox_facts} >= {f.get("id") for f in flow.facts}
    sandbox_decisions = await _bodies(flow.settings, SANDBOX_DECISIONS)
    assert flow.grant["decision_id"] in {b.get("decision_id") for b in sandbox_decisions}


def _assigned(consumer: AIOKafkaConsumer, tp: TopicPartition) -> Callable[[], Awaitable[bool]]:
    async def probe() -> bool:
        await consumer.getmany(timeout_ms=100, max_records=1)  # drives the group join
        return tp in consumer.assignment()

    return probe


def _message(book: str, seq: int, fact: dict[str, Any]) -> FactMessageV1:
    from datetime import UTC, datetime

    from services.intake.domain.submission import content_digest

    return FactMessageV1(book=book, seq=seq, fact_id=fact["id"], subject=fact_subject(fact),
                         outcome="accepted", fact=fact, digest=content_digest(fact),
                         recorded_at=datetime.now(UTC))


async def test_a_redelivered_position_is_told_apart_from_a_version_conflict(infra: Settings) -> None:
    """Two instances of eligibility writing to one subject stream, without Kafka in between."""
    facts = [f for f in load_scenario(VECTOR)["facts"] if fact_subject(f).startswith("3")]
    worker = fact_subject(facts[0])
    facts = [f for f in facts if fact_subject(f) == worker][:4]
    book = f"test-{uuid.uuid4().hex}"
    source = f"kafka:test-{uuid.uuid4().hex}:0"
    a, b = EligibilityApplication(infra), EligibilityApplication(infra)

    def alone(app: EligibilityApplication, message: FactMessageV1, offset: int) -> FactOutcome:
        """A batch of one message, as the consumer hands it over."""
        [(outcome, _)] = app.process_batch([(message, Tracking(source, offset), None, {})])
        return outcome

    try:
        m1, m2, m3, m4 = (_message(book, seq, fact) for seq, fact in enumerate(facts, start=1))
        assert alone(a, m1, 10) is FactOutcome.PROCESSED
        # The same offset again, even carrying another fact: a redelivery, nothing recorded.
        assert alone(a, m2, 10) is FactOutcome.REDELIVERED
        assert alone(b, m2, 11) is FactOutcome.PROCESSED
        # `a` dropped the stream from its cache when its save failed: it reads it again, with b's fact.
        assert alone(a, m3, 12) is FactOutcome.PROCESSED
        # The same fact from a later offset (the relay published it twice): `b` still holds the stream
        # without it, so its save conflicts; it reloads, finds the fact processed, keeps the position.
        assert alone(b, m3, 13) is FactOutcome.REPUBLISHED
        assert alone(b, m4, 14) is FactOutcome.PROCESSED
        stream = a.stream_events(book, worker)
        assert [e.seq for e in stream] == [1, 2, 3, 4]
        assert verify_chain([(chain_content(e.__dict__), e.hash) for e in stream]) is None
        assert isinstance(stream[0], DecisionChain.FactProcessed)
    finally:
        a.close()
        b.close()


def _key(settings: Settings, book: str, subject: str) -> str:
    """The message key the services give a subject's messages (a keyed pseudonym)."""
    return PartitionKeys(partition_key_secret(settings))(book, subject)
