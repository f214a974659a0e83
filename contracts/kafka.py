"""Kafka plumbing every service shares: the broker, traced publishing from an outbox, traced
consumption, and a decoder that turns poison messages into redacted errors.

Consumption is at-least-once (subscribers use AckPolicy.ACK: commit after the handler returns) and
the handler never returns before its effect is committed: transient failures (database or broker
down) are retried with backoff (`contracts.runtime.until_done`), holding the partition, because
skipping a fact would make the ledger wrong. FastStream's ACK also commits when a handler raises, so
handlers must not raise for transient failures. Exactly-once effect comes from the Kafka position
recorded with the events.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from pydantic import BaseModel, ValidationError

from contracts.cloudevents import CloudEvent
from contracts.settings import Settings
from contracts.telemetry import context_from, context_from_headers, current_carrier

log = logging.getLogger(__name__)

def make_broker(settings: Settings, client_id: str) -> KafkaBroker:
    """Idempotent producer with acks=all: a retried send never duplicates or reorders a partition."""
    return KafkaBroker(
        settings.kafka_bootstrap, client_id=client_id, acks="all", enable_idempotence=True,
        logger=logging.getLogger(f"{client_id}.kafka"), log_level=logging.DEBUG,
    )


class PoisonMessage(ValueError):
    """A message that is not the topic's model. Its text never quotes the message: facts carry identity
    numbers, and pydantic's own errors would print them into the log."""


def strict_decoder(model: type[BaseModel]) -> Callable[[KafkaMessage], Awaitable[Any]]:
    """A FastStream decoder validating the body against `model`, failing with a redacted reason.

    A poison message then fails before the handler and is logged and committed (AckPolicy.ACK), so it
    never blocks its partition; the dead-letter topic is for a later issue."""

    async def decode(msg: KafkaMessage) -> Any:
        try:
            return model.model_validate_json(msg.body).model_dump(mode="json")
        except ValidationError as exc:
            r = msg.raw_message
            where = "" if isinstance(r, tuple) else f" {r.topic}[{r.partition}]@{r.offset}"
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
                for e in exc.errors(include_url=False, include_input=False, include_context=False)
            )
            raise PoisonMessage(f"not a {model.__name__}{where}: {problems}") from None

    return decode


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message of an outbox batch: body, partition key, CloudEvent attributes."""

    body: BaseModel
    key: str
    event: CloudEvent


async def publish_batch(tracer: trace.Tracer, publisher: DefaultPublisher, batch: Sequence[Outgoing]) -> None:
    """Send every message (one PRODUCER span each, child of the trace stored with its event), then
    wait for all acknowledgements. Sends are issued in order, so each partition keeps that order."""
    topic = publisher.topic
    pending = []
    for item in batch:
        parent = context_from(item.event.traceparent, item.event.tracestate)
        with tracer.start_as_current_span(
            f"{topic} publish", context=parent, kind=SpanKind.PRODUCER,
            attributes={"messaging.system": "kafka", "messaging.destination.name": topic,
                        "messaging.operation.type": "publish", "messaging.message.id": item.event.id},
        ):
            headers = item.event.headers() | current_carrier()
            pending.append(await publisher.publish(
                item.body, key=item.key.encode("utf-8"), headers=headers, no_confirm=True,
                correlation_id=item.event.id,
            ))
    await asyncio.gather(*pending)


@contextmanager
def consuming(tracer: trace.Tracer, msg: KafkaMessage, group: str) -> Iterator[Span]:
    """A CONSUMER span for one message, child of the producer's `traceparent` header."""
    record = msg.raw_message
    assert not isinstance(record, tuple), "batch consumption is not used"
    with tracer.start_as_current_span(
        f"{record.topic} process", context=context_from_headers(msg.headers), kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka", "messaging.destination.name": record.topic,
            "messaging.operation.type": "process", "messaging.consumer.group.name": group,
            "messaging.destination.partition.id": str(record.partition),
            "messaging.kafka.offset": record.offset,
        },
    ) as span:
        yield span
