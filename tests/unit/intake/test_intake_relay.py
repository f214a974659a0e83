"""Intake's outbox relay through `publishing.publish_batch`, against a recording aiokafka producer
(no broker): messages per partition in log order under pseudonymous keys, CloudEvents headers, a
traceparent and a valid tag on each, one PRODUCER span per trace, full record batches sent as they fill,
each book's facts on its own topic (production or sandbox)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.record.default_records import DefaultRecordBatch
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from contracts.messages import FactMessageV1
from contracts.topics import FACTS, SANDBOX_FACTS
from services.intake.adapters.relay import FactRelay
from services.intake.aggregates import FactSubmission
from services.runtime import publishing
from services.runtime.message_auth import MessageAuthenticator
from services.runtime.publishing import BookTopics, PartitionKeys

PARTITIONS = 6
KEYS = PartitionKeys(b"k" * 32)
MAC_KEY = b"m" * 32
BULK_TRACE = "0af7651916cd43dd8448eb211c80319c"


class RecordingProducer(AIOKafkaProducer):  # type: ignore[misc]
    """Keeps what `send_batch` is given, per partition, in order; never connects."""

    def __init__(self, max_batch_size: int) -> None:
        super().__init__(bootstrap_servers="127.0.0.1:1", max_batch_size=max_batch_size)
        self.batches: list[tuple[int, list[Any]]] = []
        self.topics: list[str] = []  # the topic of each of `batches`

    async def partitions_for(self, topic: str) -> set[int]:
        return set(range(PARTITIONS))

    async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert topic in (FACTS.name, SANDBOX_FACTS.name) and batch.closed()
        self.batches.append((partition, list(DefaultRecordBatch(bytes(batch._build())))))
        self.topics.append(topic)
        done: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


class Publisher:
    def __init__(self, topic: str) -> None:
        self.topic = topic


def _facts_topics(production_books: frozenset[str]) -> BookTopics:
    return BookTopics(FACTS, Publisher(FACTS.name), Publisher(SANDBOX_FACTS.name),  # type: ignore[arg-type]
                      production_books)


@pytest.fixture
def spans() -> Iterator[tuple[TracerProvider, InMemorySpanExporter]]:
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider, exporter
    provider.shutdown()


def _event(seq: int, worker: str, trace_id: str, book: str = "b") -> FactSubmission.Recorded:
    traceparent = f"00-{trace_id}-b7ad6b7169203331-01"  # one request: one parent span
    return FactSubmission.recorded_event(
        book=book, seq=seq, fact_id=f"f{seq}", subject=worker, outcome="accepted", reason=None,
        fact={"id": f"f{seq}", "type": "worker_registered", "worker": worker}, digest="d" * 64,
        traceparent=traceparent, tracestate=None,
    )


async def _relay(
    monkeypatch: pytest.MonkeyPatch, provider: TracerProvider, events: list[Any], max_batch_size: int,
    production_books: frozenset[str] = frozenset({"b"}),
) -> RecordingProducer:
    producer = RecordingProducer(max_batch_size)
    monkeypatch.setattr(publishing, "_producer_of", lambda publisher: producer)
    relay = FactRelay(_facts_topics(production_books), provider.get_tracer("test"), KEYS, MAC_KEY)
    await relay(None, list(enumerate(events, start=1)))  # type: ignore[arg-type]
    await producer.stop()
    return producer


def headers_of(producer: RecordingProducer, seq: int) -> dict[str, str]:
    for _, records in producer.batches:
        for record in records:
            if json.loads(record.value)["seq"] == seq:
                return {name: value.decode() for name, value in record.headers}
    raise AssertionError(f"seq {seq} was not sent")


async def test_each_partition_gets_its_messages_in_log_order_with_cloudevents_and_traceparent(
    monkeypatch: pytest.MonkeyPatch, spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    workers = [f"w{k}" for k in range(10)]
    events = [_event(seq, workers[seq % 10], BULK_TRACE) for seq in range(1, 41)]
    single = _event(41, "w3", "1" * 32)  # a single POST: a trace of its own
    producer = await _relay(monkeypatch, provider, [*events, single], max_batch_size=16 * 1024)

    assert len(producer.batches) <= PARTITIONS  # one batch per partition: they all fit
    seen: list[int] = []
    for partition, records in producer.batches:
        seqs = [json.loads(r.value)["seq"] for r in records]
        assert seqs == sorted(seqs)
        for record in records:
            body = FactMessageV1.model_validate_json(record.value)
            assert record.key == KEYS("b", body.subject).encode() and body.subject.encode() not in record.key
            assert MessageAuthenticator(MAC_KEY, FACTS.name).problem(record.headers, record.value) is None
            assert DefaultPartitioner()(record.key, list(range(PARTITIONS)), []) == partition
            headers = {name: value.decode() for name, value in record.headers}
            assert headers["ce_id"] == str(uuid.uuid5(uuid.UUID("a4f0b7a2-52c4-5d7e-8f43-1b8e0c9d6e21"),
                                                      f"b/{body.seq}"))
            assert headers["ce_type"] == "flexledger.intake.fact.v1"
            assert headers["ce_subject"] == f"b/{body.seq}"
            trace_id = "1" * 32 if body.seq == 41 else BULK_TRACE
            assert headers["traceparent"].split("-")[1] == trace_id
            seen.append(body.seq)
    assert sorted(seen) == list(range(1, 42))

    finished = exporter.get_finished_spans()
    assert [s.kind for s in finished] == [SpanKind.PRODUCER] * 2
    bulk, alone = sorted(finished, key=lambda s: s.context.trace_id != int(BULK_TRACE, 16))
    assert bulk.attributes["messaging.batch.message_count"] == 40  # type: ignore[index]
    assert alone.attributes["messaging.message.id"] == headers_of(producer, 41)["ce_id"]  # type: ignore[index]
    for span in finished:  # each message names its trace's span as the parent
        assert span.parent is not None and span.name == f"{FACTS.name} publish"


async def test_a_full_batch_is_sent_and_the_partition_goes_on_in_a_new_one(
    monkeypatch: pytest.MonkeyPatch, spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = spans
    events = [_event(seq, "w1", BULK_TRACE) for seq in range(1, 31)]  # one subject: one partition
    producer = await _relay(monkeypatch, provider, events, max_batch_size=4 * 1024)
    assert len(producer.batches) > 1 and len({p for p, _ in producer.batches}) == 1
    seqs = [json.loads(r.value)["seq"] for _, records in producer.batches for r in records]
    assert seqs == list(range(1, 31))
    traceparents = {headers_of(producer, seq)["traceparent"] for seq in seqs}
    assert len(traceparents) == 1  # one span for the trace, named by every message


async def test_each_book_goes_on_its_own_topic_in_log_order_tagged_for_that_topic(
    monkeypatch: pytest.MonkeyPatch, spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    """A batch of a production book's facts and a sandbox book's, interleaved: the sandbox book's only on
    the sandbox twin, the production book's only on the production topic, each in log order per
    partition, tagged for the topic it is on (so a copy moved to the other topic is refused)."""
    provider, exporter = spans
    books = ("main", "scenario-0f3a")
    events = [_event(seq, f"w{seq % 4}", BULK_TRACE, book=books[seq % 2]) for seq in range(1, 41)]
    producer = await _relay(monkeypatch, provider, events, 16 * 1024, production_books=frozenset({"main"}))

    seen: dict[str, list[int]] = {FACTS.name: [], SANDBOX_FACTS.name: []}
    for topic, (_, records) in zip(producer.topics, producer.batches, strict=True):
        other = SANDBOX_FACTS.name if topic == FACTS.name else FACTS.name
        seqs = [json.loads(r.value)["seq"] for r in records]
        assert seqs == sorted(seqs)
        for record in records:
            body = FactMessageV1.model_validate_json(record.value)
            assert topic == (FACTS.name if body.book == "main" else SANDBOX_FACTS.name)
            assert record.key == KEYS(body.book, body.subject).encode()
            assert MessageAuthenticator(MAC_KEY, topic).problem(record.headers, record.value) is None
            assert MessageAuthenticator(MAC_KEY, other).problem(record.headers, record.value) is not None
            seen[topic].append(body.seq)
    assert sorted(seen[FACTS.name]) == list(range(2, 41, 2))
    assert sorted(seen[SANDBOX_FACTS.name]) == list(range(1, 41, 2))
    assert {s.name for s in exporter.get_finished_spans()} == {f"{FACTS.name} publish",
                                                                f"{SANDBOX_FACTS.name} publish"}


def test_recorded_at_is_the_events_time_in_utc() -> None:
    from services.intake.adapters.relay import to_message

    event = _event(1, "w1", BULK_TRACE)
    message = to_message(event, KEYS)
    assert message is not None and isinstance(message.body, FactMessageV1)
    assert message.body.recorded_at == event.timestamp.astimezone(UTC)
    assert message.body.recorded_at.tzinfo is not None and message.body.recorded_at < datetime.now(UTC)


def test_recent_events_answer_only_when_they_have_every_id() -> None:
    from eventsourcing.persistence import Notification, Recording

    from services.intake.application import _RecentEvents

    recent = _RecentEvents(capacity=3)
    events = {n: _event(n, "w1", BULK_TRACE) for n in range(1, 6)}

    def recording(n: int) -> Recording[Any]:
        return Recording(events[n], Notification(id=n, originator_id=events[n].originator_id,
                                                 originator_version=1, topic="t", state=b""))

    recent.add([recording(1), recording(2)])
    assert recent.get([1, 2]) == [events[1], events[2]]
    assert recent.get([1, 2, 3]) is None  # 3 is not here (another process's, or not yet added)
    recent.add([recording(4), recording(5)])  # capacity 3: 1 goes
    assert recent.get([1]) is None and recent.get([4, 5]) == [events[4], events[5]]
    recent.forget_through(4)
    assert recent.get([2]) is None and recent.get([5]) == [events[5]]


async def test_a_failed_send_fails_the_batch_and_marks_its_spans(
    monkeypatch: pytest.MonkeyPatch, spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans

    class BrokerDown(RecordingProducer):
        async def send_batch(self, batch: Any, topic: str, *, partition: int) -> asyncio.Future[Any]:
            raise ConnectionError("broker down")

    producer = BrokerDown(16 * 1024)
    monkeypatch.setattr(publishing, "_producer_of", lambda publisher: producer)
    relay = FactRelay(_facts_topics(frozenset({"b"})), provider.get_tracer("test"), KEYS, MAC_KEY)
    with pytest.raises(ConnectionError):  # the follower keeps its position and publishes again
        await relay(None, [(1, _event(1, "w1", BULK_TRACE))])  # type: ignore[arg-type]
    await producer.stop()
    [span] = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
