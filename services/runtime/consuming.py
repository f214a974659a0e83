"""Consuming from Kafka: strict decoders that turn poison messages into redacted reasons (and dead
letters), and the CONSUMER spans of records.

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
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from faststream.kafka.message import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from pydantic import BaseModel, ValidationError

from services.runtime.dead_letters import record_dead_letter
from services.runtime.message_auth import MessageAuthenticator
from services.runtime.metrics import DEAD_LETTERS, dead_letter_reason
from services.runtime.process import until_done
from services.runtime.store import ServiceStore
from services.runtime.telemetry import context_from_headers

log = logging.getLogger(__name__)


class PoisonMessage(ValueError):
    """A message that is not the topic's model. Its text never quotes the message: facts carry identity
    numbers, and pydantic's own errors would print them into the log."""


def strict_decoder(
    model: type[BaseModel], *, dead_letters: DeadLetters | None = None
) -> Callable[[KafkaMessage], Awaitable[Any]]:
    """A FastStream decoder validating the body against `model`, failing with a redacted reason.

    A poison message then fails before the handler and is logged and committed (AckPolicy.ACK), so it
    never blocks its partition. With `dead_letters`, it is first kept as a dead letter with the reason
    (recorded in the event store, retried until committed), so it is committed past only once kept."""

    async def decode(msg: KafkaMessage) -> Any:
        try:
            return model.model_validate_json(msg.body).model_dump(mode="json")
        except ValidationError as exc:
            r = msg.raw_message
            where = "" if isinstance(r, tuple) else f" {r.topic}[{r.partition}]@{r.offset}"
            reason = _validation_reason(model, msg.body, exc)
            if dead_letters is not None and not isinstance(r, tuple):
                await dead_letters.keep(r, f"not a {model.__name__}: {reason}")
            raise PoisonMessage(f"not a {model.__name__}{where}: {reason}") from None

    return decode


def strict_batch_decoder(
    model: type[BaseModel], *, mac_key: bytes, dead_letters: DeadLetters | None = None
) -> Callable[[KafkaMessage], Awaitable[Any]]:
    """`strict_decoder` for a batch subscriber of a service-to-service topic: one entry per record of
    the batch, in order — the validated `model`, or None for a record to skip (dead-lettered first, when
    `dead_letters` is given), so that the handler can pair entries with `msg.raw_message` and skip the
    Nones. A record is believed only with a valid tag under `mac_key` (`services.runtime.message_auth`):
    an untagged or forged one is refused before anything in it is read, so a forged `seq` can never
    make the consumer skip a genuine message as already processed."""
    check = tagged_record_checker(model, mac_key)

    async def decode(msg: KafkaMessage) -> Any:
        records = msg.raw_message
        assert isinstance(records, tuple), "a batch subscriber's message holds a tuple of records"
        out: list[BaseModel | None] = []
        for record in records:
            checked = check(record)
            if isinstance(checked, BaseModel):
                out.append(checked)
                continue
            reason = checked
            where = f" {record.topic}[{record.partition}]@{record.offset}"
            if dead_letters is not None:
                await dead_letters.keep(record, reason)
            log.error("PoisonMessage:%s: %s (skipped)", where, reason)
            out.append(None)
        return out

    return decode


def tagged_record_checker(model: type[BaseModel], mac_key: bytes) -> Callable[[Any], BaseModel | str]:
    """What `strict_batch_decoder` asks of each record (an aiokafka ConsumerRecord, or a dead letter's
    `KeptRecord` when it is re-driven): the validated `model`, or the redacted reason it is refused."""
    authenticators: dict[str, MessageAuthenticator] = {}

    def check(record: Any) -> BaseModel | str:
        value = record.value or b""
        tags = authenticators.get(record.topic)
        if tags is None:
            tags = authenticators[record.topic] = MessageAuthenticator(mac_key, record.topic)
        reason = tags.problem(record.headers or (), value)
        return reason if reason is not None else model_of(model, value)

    return check


def model_of(model: type[BaseModel], value: bytes) -> BaseModel | str:
    """`value` validated as a `model`, or the redacted reason it is not one."""
    try:
        return model.model_validate_json(value)
    except ValidationError as exc:
        return f"not a {model.__name__}: {_validation_reason(model, value, exc)}"


def _validation_reason(model: type[BaseModel], body: bytes, exc: ValidationError) -> str:
    """Why `body` is not a `model`, naming fields, never quoting their values (identity numbers)."""
    return unknown_schema_version(model, body) or "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False, include_context=False)
    )


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


@dataclass(frozen=True, slots=True)
class DeadLetters:
    """A consumer's dead letters: where it keeps the messages it cannot decode, then goes on.

    A poison record is recorded in the service's event store (the original bytes, encrypted at rest;
    one dead letter per source position and consumer group, so a redelivery records nothing) and
    published to the service's dead-letter topic by its dead-letter relay, like every other message
    (`services.runtime.dead_letters`). The reason must never quote the body (identity numbers)."""

    store: ServiceStore[Any]  # open by the time anything is consumed
    group: str
    wake: Callable[[], None]  # wakes the service's log followers (the dead-letter relay among them)

    async def keep(self, record: Any, reason: str) -> None:
        """Record `record` (an aiokafka ConsumerRecord) with `reason`, retried until committed (off the
        event loop), then wake the relay."""
        where = f"{record.topic}[{record.partition}]@{record.offset}"
        kept = await until_done(
            f"dead-lettering {where}",
            lambda: asyncio.to_thread(record_dead_letter, self.store.app, self.group, record, reason),
        )
        if kept:
            DEAD_LETTERS.labels(self.store.app.name, record.topic, dead_letter_reason(reason)).inc()
            self.wake()
        log.warning("dead-lettered %s (group %s%s): %s", where, self.group,
                    "" if kept else ", recorded before", reason)


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
