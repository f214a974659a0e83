"""Publishing from an outbox: a batch of recorded events straight into aiokafka record batches, traced
per trace the events were recorded in; a topic split by book (`BookTopics`) gets each message on its
book's topic, production or sandbox."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from pydantic import BaseModel

from contracts.cloudevents import CloudEvent
from contracts.topics import Topic, sandbox_twin, topic_for
from services.runtime.kafka import producer_broken
from services.runtime.message_auth import MAC_HEADER, MessageAuthenticator
from services.runtime.telemetry import context_from


class PartitionKeys:
    """Message keys that keep one subject's messages on one partition, in order, without naming the
    subject (docs/design/kafka-trust.md): `<book>/` and a keyed pseudonym of the subject (HMAC-SHA256,
    128 bits, hex). A book is no one's personal data and stays readable."""

    def __init__(self, secret: bytes) -> None:
        self._mac = hmac.new(secret, b"flexledger.partition-key.v1\x00", hashlib.sha256)

    def __call__(self, book: str, subject: str) -> str:
        mac = self._mac.copy()
        mac.update(f"{book}/{subject}".encode())
        return f"{book}/{mac.hexdigest()[:32]}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of an outbox batch: body, partition key, CloudEvent attributes, and the book it is
    about (which picks its topic on a topic split by book, `BookTopics`; None on the others)."""

    body: BaseModel
    key: str
    event: CloudEvent
    book: str | None = None


class BookTopics:
    """A topic split by book: the publishers of a production topic (`contracts.topics.BOOK_TOPICS`) and
    of its sandbox twin. A production book's messages go on the first, every other book's on the twin
    (`contracts.topics.topic_for`), so a sandbox book never reaches a production subscriber."""

    def __init__(
        self, topic: Topic, production: DefaultPublisher, sandbox: DefaultPublisher,
        production_books: Collection[str],
    ) -> None:
        assert (production.topic, sandbox.topic) == (topic.name, sandbox_twin(topic).name), "publishers"
        self.topic = topic
        self.production = production
        self.sandbox = sandbox
        self.production_books = frozenset(production_books)

    @classmethod
    def declare(
        cls, broker: KafkaBroker, topic: Topic, production_books: Collection[str], *,
        schema: type[BaseModel], description: str,
    ) -> BookTopics:
        """Both publishers on `broker`, described for the AsyncAPI document: `description` (what the
        messages are), then which books appear on which topic."""
        twin = sandbox_twin(topic)
        production = broker.publisher(
            topic.name, title=topic.name, schema=schema,
            description=f"{description} Production books only (FLEXLEDGER_PRODUCTION_BOOKS, default main); "
                        f"every other book's messages go on {twin.name}.",
        )
        sandbox = broker.publisher(
            twin.name, title=twin.name, schema=schema,
            description=f"{description} Sandbox books only: every book not in FLEXLEDGER_PRODUCTION_BOOKS "
                        f"(scenario-<hex>, tests, probes); the production books' messages go on "
                        f"{topic.name}. No outside subscriber may read it.",
        )
        return cls(topic, production, sandbox, production_books)

    async def publish(
        self, tracer: trace.Tracer, batch: Sequence[Outgoing], *, mac_key: bytes | None = None
    ) -> None:
        """`publish_batch` to each topic of the batch's messages, in the batch's order within each topic
        (so within each partition); each message tagged for the topic it goes on."""
        production: list[Outgoing] = []
        sandbox: list[Outgoing] = []
        for item in batch:
            assert item.book is not None, f"a message for {self.topic.name} names no book"
            on_production = topic_for(self.topic, item.book, self.production_books) == self.topic
            (production if on_production else sandbox).append(item)
        await publish_batch(tracer, self.production, production, mac_key=mac_key)
        await publish_batch(tracer, self.sandbox, sandbox, mac_key=mac_key)


async def publish_batch(
    tracer: trace.Tracer, publisher: DefaultPublisher, batch: Sequence[Outgoing], *,
    mac_key: bytes | None = None,
) -> None:
    """Send every message, then wait for all acknowledgements. With `mac_key`, every message carries
    its tag (`services.runtime.message_auth`): the topic's consumer believes nothing untagged.

    Tracing: one PRODUCER span per trace the batch's events were recorded in, child of it, until the
    broker acknowledged; every message carries it as `traceparent`. A single POST's fact has a
    trace of its own, so a span of its own (`messaging.message.id`); the facts of one bulk request
    share their request's trace, so one span (`messaging.batch.message_count`) — per message, a span
    would cost more CPU than the rest of publishing.

    The messages go straight into aiokafka record batches, one per partition (a new one when full),
    in order, so each partition keeps the batch's order; the idempotent producer numbers them as it
    would single sends. This skips FastStream's per-message publish machinery and aiokafka's
    per-message future, and the broker appends a few large batches instead of many small ones."""
    if not batch:
        return
    topic = publisher.topic
    producer = _producer_of(publisher)
    partitions = len(await producer.partitions_for(topic))
    batches = _RecordBatches(producer, topic)
    tags = MessageAuthenticator(mac_key, topic) if mac_key is not None else None
    traces: dict[tuple[str | None, str | None], _TraceSpan] = {}
    try:
        for item in batch:
            event = item.event
            parent = (event.traceparent, event.tracestate)
            if (span := traces.get(parent)) is None:
                span = traces[parent] = _TraceSpan.start(tracer, topic, event)
            span.messages += 1
            headers = event.headers() | span.headers | {"correlation_id": event.id}
            key, value = item.key.encode("utf-8"), item.body.model_dump_json().encode("utf-8")
            encoded = [(name, text.encode("utf-8")) for name, text in headers.items()]
            if tags is not None:
                encoded.append((MAC_HEADER, tags.tag(value)))
            await batches.add(_partition(key, partitions), key, value, encoded)
        await batches.send_all()
    except BaseException as exc:
        for span in traces.values():
            span.end(exc)
        raise
    for span in traces.values():
        span.end()


@dataclass(slots=True)
class _TraceSpan:
    """The PRODUCER span of the messages of one trace in a batch, and the headers naming it."""

    span: Span
    headers: dict[str, str]
    message_id: str
    messages: int = 0

    @classmethod
    def start(cls, tracer: trace.Tracer, topic: str, event: CloudEvent) -> _TraceSpan:
        span = tracer.start_span(
            f"{topic} publish", context=context_from(event.traceparent, event.tracestate),
            kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                        "messaging.operation.type": "publish"},
        )
        return cls(span, _trace_headers(span), event.id)

    def end(self, error: BaseException | None = None) -> None:
        if error is not None:
            self.span.record_exception(error)
            self.span.set_status(StatusCode.ERROR, type(error).__name__)
        if self.messages == 1:
            self.span.set_attribute("messaging.message.id", self.message_id)
        else:
            self.span.set_attribute("messaging.batch.message_count", self.messages)
        self.span.end()


class _RecordBatches:
    """aiokafka record batches of one topic, one open per partition: sent when full, and at the end."""

    def __init__(self, producer: AIOKafkaProducer, topic: str) -> None:
        self.producer = producer
        self.topic = topic
        self.open: dict[int, BatchBuilder] = {}
        self.sent: list[asyncio.Future[Any]] = []

    async def add(self, partition: int, key: bytes, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        builder = self.open.get(partition)
        if builder is not None and builder.append(key=key, value=value, timestamp=None,
                                                  headers=headers) is not None:
            return
        if builder is not None:  # full: send it, and start the next one for this partition
            await self._send(partition, builder)
        builder = self.open[partition] = self.producer.create_batch()
        builder.append(key=key, value=value, timestamp=None, headers=headers)  # an empty batch takes any

    async def send_all(self) -> None:
        """Send the open batches and wait until the broker acknowledged every batch."""
        for partition, builder in self.open.items():
            await self._send(partition, builder)
        self.open.clear()
        try:
            await asyncio.gather(*self.sent)
        except Exception as exc:
            producer_broken(self.producer, exc)  # replaced if it can never send again
            raise

    async def _send(self, partition: int, builder: BatchBuilder) -> None:
        builder.close()  # complete: it need not linger for more messages
        self.sent.append(await self.producer.send_batch(builder, self.topic, partition=partition))


def _producer_of(publisher: DefaultPublisher) -> AIOKafkaProducer:
    """The started aiokafka producer behind a FastStream publisher (FastStream 0.7's internals)."""
    state = getattr(getattr(publisher._outer_config, "producer", None), "_producer", None)
    producer = getattr(state, "producer", None)
    if not isinstance(producer, AIOKafkaProducer):
        raise RuntimeError(f"no started Kafka producer behind the publisher of {publisher.topic}")
    return producer


_DEFAULT_PARTITIONER = DefaultPartitioner()


@lru_cache(maxsize=65_536)  # one subject's messages share a key: murmur2 is pure Python in aiokafka
def _partition(key: bytes, partitions: int) -> int:
    """The partition aiokafka's default partitioner gives `key` (so single sends and batches agree)."""
    return int(_DEFAULT_PARTITIONER(key, list(range(partitions)), []))


def _trace_headers(span: Span) -> dict[str, str]:
    """W3C `traceparent` (and `tracestate`) naming `span` as the parent, as the propagator writes them."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return {}
    headers = {"traceparent": f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{ctx.trace_flags:02x}"}
    if ctx.trace_state:
        headers["tracestate"] = ctx.trace_state.to_header()
    return headers
