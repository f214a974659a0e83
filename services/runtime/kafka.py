"""Kafka plumbing every service shares: the broker, traced publishing from an outbox, traced
consumption, and a decoder that turns poison messages into redacted errors.

Consumption is at-least-once (subscribers use AckPolicy.ACK: commit after the handler returns) and
the handler never returns before its effect is committed: transient failures (database or broker
down) are retried with backoff (`services.runtime.process.until_done`), holding the partition, because
skipping a fact would make the ledger wrong. FastStream's ACK also commits when a handler raises, so
handlers must not raise for transient failures. Exactly-once effect comes from the Kafka position
recorded with the events.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram512
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode
from pydantic import BaseModel, ValidationError

from contracts.cloudevents import CloudEvent
from services.runtime.process import until_done
from services.runtime.settings import Settings
from services.runtime.telemetry import context_from, context_from_headers

log = logging.getLogger(__name__)

# Record batches up to 512 KiB (aiokafka's default is 16 KiB): an outbox batch of a few hundred facts
# goes to the broker as one batch per partition, and the broker's work is mostly per batch. Below the
# broker's default message.max.bytes (1 MiB), which bounds one batch.
MAX_BATCH_BYTES = 512 * 1024


def make_broker(settings: Settings, client_id: str) -> KafkaBroker:
    """Idempotent producer with acks=all: a retried send never duplicates or reorders a partition.
    Connected as the settings' principal; subscribers never ask the broker to create a topic (topics
    are provisioned by `admin`, and a service's principal may not create any)."""
    return KafkaBroker(
        settings.kafka_bootstrap, client_id=client_id, acks="all", enable_idempotence=True,
        max_batch_size=MAX_BATCH_BYTES, security=broker_security(settings), allow_auto_create_topics=False,
        logger=logging.getLogger(f"{client_id}.kafka"), log_level=logging.DEBUG,
    )


# ---- who connects (docs/design/kafka-trust.md) ---------------------------------------------------

SECURITY_PROTOCOLS = ("PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("SCRAM-SHA-512", "PLAIN")


def client_security(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that make an aiokafka producer, consumer or admin client connect as the
    settings' principal: `AIOKafkaConsumer(..., **client_security(settings))`."""
    protocol = _protocol(settings)
    if protocol == "PLAINTEXT":
        return {}
    if not settings.kafka_username:
        raise ValueError(_NO_PRINCIPAL.format(protocol=protocol))
    args: dict[str, Any] = {
        "security_protocol": protocol, "sasl_mechanism": settings.kafka_sasl_mechanism,
        "sasl_plain_username": settings.kafka_username, "sasl_plain_password": settings.kafka_password,
    }
    if protocol == "SASL_SSL":
        args["ssl_context"] = ssl_context(settings)
    return args


def broker_security(settings: Settings) -> BaseSecurity | None:
    """`client_security` for a FastStream broker (one broker, one principal). Without a user name it
    only warns: a broker is also built to describe the AsyncAPI document, or in tests that never
    connect; one that does connect is refused by the broker."""
    protocol = _protocol(settings)
    if protocol == "PLAINTEXT":
        return None
    if not settings.kafka_username:
        log.warning(_NO_PRINCIPAL.format(protocol=protocol))
    context = ssl_context(settings) if protocol == "SASL_SSL" else None
    scheme = SASLScram512 if settings.kafka_sasl_mechanism == "SCRAM-SHA-512" else SASLPlaintext
    return scheme(username=settings.kafka_username, password=settings.kafka_password,
                  ssl_context=context, use_ssl=context is not None)


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """Checks the broker's certificate chain and host name against `kafka_ca_file` (PEM), else against
    the system's CAs."""
    return ssl.create_default_context(cafile=settings.kafka_ca_file or None)


def _protocol(settings: Settings) -> str:
    """The security protocol, refusing settings that could not connect (an unknown protocol or
    mechanism) with an error that names the setting."""
    protocol = settings.kafka_security_protocol.upper()
    if protocol not in SECURITY_PROTOCOLS:
        raise ValueError(f"FLEXLEDGER_KAFKA_SECURITY_PROTOCOL {settings.kafka_security_protocol!r} is "
                         f"not one of {', '.join(SECURITY_PROTOCOLS)}")
    if protocol != "PLAINTEXT" and settings.kafka_sasl_mechanism not in SASL_MECHANISMS:
        raise ValueError(f"FLEXLEDGER_KAFKA_SASL_MECHANISM {settings.kafka_sasl_mechanism!r} is not one of "
                         f"{', '.join(SASL_MECHANISMS)}")
    return protocol


_NO_PRINCIPAL = ("Kafka wants a principal ({protocol}): set FLEXLEDGER_KAFKA_USERNAME and "
                 "FLEXLEDGER_KAFKA_PASSWORD (`flexledger dev env --principal NAME` shows them)")


def static_member(settings: Settings, group: str) -> str | None:
    """The `group_instance_id` of this process in consumer group `group`, None for dynamic membership
    (`Settings.kafka_instance_id`)."""
    return f"{settings.kafka_instance_id}/{group}" if settings.kafka_instance_id else None


class PoisonMessage(ValueError):
    """A message that is not the topic's model. Its text never quotes the message: facts carry identity
    numbers, and pydantic's own errors would print them into the log."""


def strict_decoder(
    model: type[BaseModel], *, dead_letters: DeadLetters | None = None
) -> Callable[[KafkaMessage], Awaitable[Any]]:
    """A FastStream decoder validating the body against `model`, failing with a redacted reason.

    A poison message then fails before the handler and is logged and committed (AckPolicy.ACK), so it
    never blocks its partition. With `dead_letters`, it is first published to the dead-letter topic
    with the reason (retried until the broker takes it), so it is committed past only once kept."""

    async def decode(msg: KafkaMessage) -> Any:
        try:
            return model.model_validate_json(msg.body).model_dump(mode="json")
        except ValidationError as exc:
            r = msg.raw_message
            where = "" if isinstance(r, tuple) else f" {r.topic}[{r.partition}]@{r.offset}"
            reason = unknown_schema_version(model, msg.body) or "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            )
            if dead_letters is not None and not isinstance(r, tuple):
                await dead_letters.keep(r, f"not a {model.__name__}: {reason}")
            raise PoisonMessage(f"not a {model.__name__}{where}: {reason}") from None

    return decode


def strict_batch_decoder(
    model: type[BaseModel], *, dead_letters: DeadLetters | None = None
) -> Callable[[KafkaMessage], Awaitable[Any]]:
    """`strict_decoder` for a batch subscriber: one entry per record of the batch, in order — the
    validated `model`, or None for a poison record (dead-lettered first, when `dead_letters` is given),
    so that the handler can pair entries with `msg.raw_message` and skip the Nones."""

    async def decode(msg: KafkaMessage) -> Any:
        records = msg.raw_message
        assert isinstance(records, tuple), "a batch subscriber's message holds a tuple of records"
        out: list[BaseModel | None] = []
        for record in records:
            try:
                out.append(model.model_validate_json(record.value or b""))
            except ValidationError as exc:
                where = f" {record.topic}[{record.partition}]@{record.offset}"
                reason = unknown_schema_version(model, record.value or b"") or "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                    for e in exc.errors(include_url=False, include_input=False, include_context=False)
                )
                if dead_letters is not None:
                    await dead_letters.keep(record, f"not a {model.__name__}: {reason}")
                log.error("PoisonMessage: not a %s%s: %s (skipped)", model.__name__, where, reason)
                out.append(None)
        return out

    return decode


def unknown_schema_version(model: type[BaseModel], body: bytes) -> str | None:
    """'unknown schema_version N' when `body` is a JSON object naming another version than `model`'s
    (the version is quoted only when it is an integer: nothing else of the body is ever quoted)."""
    field = model.model_fields.get("schema_version")
    if field is None:
        return None
    try:
        data = json.loads(body)
    except ValueError:  # not JSON, not UTF-8: the validation error says so
        return None
    if not isinstance(data, dict) or "schema_version" not in data or data["schema_version"] == field.default:
        return None
    got = data["schema_version"]
    integer = isinstance(got, int) and not isinstance(got, bool)
    shown = str(got) if integer else f"of type {type(got).__name__}"
    return f"unknown schema_version {shown} (this consumer reads {field.default})"


DLQ_HEADER_PREFIX = "dlq_"


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """A consumer's dead-letter topic: where it keeps the messages it cannot decode, then goes on.

    The dead letter carries the source message's value and key unchanged, its headers (values as
    UTF-8 text, undecodable bytes backslash-escaped), and `dlq_reason`, `dlq_source_topic`,
    `dlq_source_partition`, `dlq_source_offset`, `dlq_consumer_group`, `dlq_at`: enough to find the
    original and to re-drive it (drop the `dlq_*` headers, publish to the source topic). Publishing
    is at least once: a crash before the source offset is committed keeps the message twice (same
    source coordinates). The reason must never quote the body (identity numbers)."""

    broker: KafkaBroker
    topic: str
    group: str

    async def keep(self, record: Any, reason: str) -> None:
        """Publish `record` (an aiokafka ConsumerRecord) with `reason`; retried until the broker has it."""
        headers = {
            name: (value or b"").decode("utf-8", "backslashreplace")
            for name, value in (record.headers or ())
            if not name.startswith(DLQ_HEADER_PREFIX)
        }
        headers |= {
            "dlq_reason": reason, "dlq_source_topic": record.topic,
            "dlq_source_partition": str(record.partition), "dlq_source_offset": str(record.offset),
            "dlq_consumer_group": self.group, "dlq_at": datetime.now(UTC).isoformat(),
        }
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        await until_done(
            f"dead-lettering {where} to {self.topic}",
            lambda: self.broker.publish(record.value or b"", self.topic, key=record.key, headers=headers,
                                        correlation_id=f"dlq:{where}"),
        )
        log.warning("dead-lettered %s to %s: %s", where, self.topic, reason)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of an outbox batch: body, partition key, CloudEvent attributes."""

    body: BaseModel
    key: str
    event: CloudEvent


async def publish_batch(tracer: trace.Tracer, publisher: DefaultPublisher, batch: Sequence[Outgoing]) -> None:
    """Send every message, then wait for all acknowledgements.

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
    traces: dict[tuple[str | None, str | None], _TraceSpan] = {}
    try:
        for item in batch:
            event = item.event
            parent = (event.traceparent, event.tracestate)
            if (span := traces.get(parent)) is None:
                span = traces[parent] = _TraceSpan.start(tracer, topic, event)
            span.messages += 1
            headers = event.headers() | span.headers | {"correlation_id": event.id}
            key = item.key.encode("utf-8")
            await batches.add(_partition(key, partitions), key, item.body.model_dump_json().encode("utf-8"),
                              [(name, text.encode("utf-8")) for name, text in headers.items()])
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
        await asyncio.gather(*self.sent)

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


def consumer_span_attributes(topic: str, group: str, partition: int) -> dict[str, str]:
    """The OpenTelemetry messaging attributes of a CONSUMER span (one record's, or a batch's)."""
    return {"messaging.system": "kafka", "messaging.destination.name": topic,
            "messaging.operation.type": "process", "messaging.consumer.group.name": group,
            "messaging.destination.partition.id": str(partition)}


@contextmanager
def consuming_record(tracer: trace.Tracer, record: Any, group: str) -> Iterator[Span]:
    """A CONSUMER span for one record (an aiokafka ConsumerRecord), child of its producer's
    `traceparent` header; the span is current inside the block."""
    headers = {name: (value or b"").decode("utf-8", "replace") for name, value in (record.headers or ())}
    with tracer.start_as_current_span(
        f"{record.topic} process", context=context_from_headers(headers), kind=SpanKind.CONSUMER,
        attributes={**consumer_span_attributes(record.topic, group, record.partition),
                    "messaging.kafka.offset": record.offset},
    ) as span:
        yield span


def consuming(tracer: trace.Tracer, msg: KafkaMessage, group: str) -> AbstractContextManager[Span]:
    """`consuming_record` for a message of a non-batch subscriber."""
    record = msg.raw_message
    assert not isinstance(record, tuple), "batch consumption is not used"
    return consuming_record(tracer, record, group)
