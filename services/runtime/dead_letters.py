"""Dead letters: what a consumer could not take in, kept in its service's event store and published from
its outbox like every other message, as `contracts.messages.DeadLetterV1`.

- Recording: a strict decoder (`services.runtime.consuming`) hands a poison record to its consumer's
  `DeadLetters`, which records it here (`record_dead_letter`) as a `DeadLetter` aggregate: the reason,
  the source position and the original bytes, which stay in the store (events are encrypted at rest).
  The aggregate id is derived from (consumer group, topic, partition, offset), so the store holds one
  dead letter per consumed position and a redelivered record finds its own. (Not the Kafka position's
  tracking record: a poison record inside a batch precedes the batch's commit, which tracks the batch's
  last offset, and a position must never be tracked before the lower ones.)
- Publishing: `DeadLetterRelay`, the handler of a log follower of the service's notification log,
  publishes each recorded dead letter to the service's dead-letter topic with the body masked
  (`contracts.messages.masked_body`): no identity number goes on the wire. At least once, like every
  relay; `dead_letter_id` identifies repeats.

Intake keeps its own `DeadLetter` aggregate (it records an agency message's dead letter in the same
transaction as the message's position) and publishes it with `dead_letter_outgoing` and `body_fields`.
- Re-driving (`services.runtime.redrive`): an operator has a kept record taken in again after a fix; each
  attempt is a `Redriven` event on the aggregate (who, the result), recorded in the same transaction as
  the record's effects, so a dead letter re-driven successfully is never taken in twice.

The event class names below are stored topics: renaming one breaks replay.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from typing import Any, Literal, Protocol, runtime_checkable

from eventsourcing.domain import Aggregate
from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher
from opentelemetry import trace

from contracts.cloudevents import CloudEvent
from contracts.messages import DeadLetterV1, Service, masked_body
from contracts.topics import Topic
from services.runtime.eventstore import IntegrityError, ServiceApplication
from services.runtime.outbox import Batch, Connection
from services.runtime.publishing import Outgoing, publish_batch
from services.runtime.telemetry import carrier_of

DEAD_LETTER_NAMESPACE = uuid.UUID("452eda9a-1a8b-4f0d-8f23-7aab94340cc1")


def dead_letter_id(group: str, topic: str, partition: int, offset: int) -> uuid.UUID:
    """One dead letter per consumed position and consumer group."""
    return uuid.uuid5(DEAD_LETTER_NAMESPACE, f"{group}\x1f{topic}\x1f{partition}\x1f{offset}")


RedriveResult = Literal["accepted", "refused"]


class AlreadyRedriven(Exception):
    """The dead letter was re-driven successfully before: it is never taken in twice."""

    def __init__(self, letter: Redrivable) -> None:
        super().__init__(f"dead letter {letter.id} was re-driven successfully before")
        self.letter = letter


@dataclass(frozen=True, slots=True)
class KeptRecord:
    """A dead letter's record as its consumer read it (what an aiokafka ConsumerRecord offers the
    decoders and handlers), rebuilt from the store for a re-drive."""

    topic: str
    partition: int
    offset: int
    value: bytes
    headers: tuple[tuple[str, bytes], ...]
    timestamp: int  # ms since the epoch: when the record was kept (the Kafka timestamp is not kept)


class RedriveHistory:
    """The re-drives of a dead letter (the runtime's `DeadLetter` and intake's own): each is one of the
    aggregate's own `Redriven` events (its stored topic names the aggregate), kept in `redrives`; after
    one took the message in, no other may."""

    redrives: list[Any]
    Redriven: type[Aggregate.Event]
    trigger_event: Callable[..., None]

    @property
    def accepted(self) -> bool:
        """Whether a re-drive took the message in: it is never taken in again."""
        return any(r.result == "accepted" for r in self.redrives)

    def redriven(self, by: str, result: RedriveResult, detail: str) -> None:
        if self.accepted:
            assert isinstance(self, Redrivable)  # both dead letters are
            raise AlreadyRedriven(self)
        self.trigger_event(self.Redriven, by=by, result=result, detail=detail)


class DeadLetter(RedriveHistory, Aggregate):
    """A record that a consumer of eligibility or payments could not decode, kept with the reason."""

    class Kept(Aggregate.Created):
        consumer_group: str
        source_topic: str
        source_partition: int
        source_offset: int
        reason: str  # redacted: never quotes the record
        body_b64: str  # the record's value, byte for byte
        traceparent: str | None  # the producer's, when the record named a valid one
        tracestate: str | None
        # Every header, values in base64 (the message tag among them, for a re-drive to check again);
        # None in the dead letters kept before re-drives existed (the default is a class attribute).
        headers: list[list[str]] | None = None

    class Redriven(Aggregate.Event):
        """An operator had the record taken in again: `accepted` (with what the consumer did with it) or
        still `refused` (with the new reason)."""

        by: str  # the operator's key: role and key id
        result: str  # RedriveResult
        detail: str  # redacted: never quotes the record

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, DeadLetter)
            aggregate.redrives.append(self)

    def __init__(
        self, consumer_group: str, source_topic: str, source_partition: int, source_offset: int,
        reason: str, body_b64: str, headers: list[list[str]] | None = None, **_: Any,
    ) -> None:
        self.consumer_group = consumer_group
        self.source = (source_topic, source_partition, source_offset)
        self.reason = reason
        self.body_b64 = body_b64
        self.headers = headers or []
        self.redrives: list[DeadLetter.Redriven] = []

    @classmethod
    def keep(cls, group: str, record: Any, reason: str) -> DeadLetter:
        """The dead letter of `record` (an aiokafka ConsumerRecord) for consumer group `group`."""
        headers = {name: (value or b"").decode("utf-8", "replace") for name, value in (record.headers or ())}
        carrier = carrier_of(headers)
        return cls._create(
            cls.Kept, id=dead_letter_id(group, record.topic, record.partition, record.offset),
            consumer_group=group, source_topic=record.topic, source_partition=record.partition,
            source_offset=record.offset, reason=reason,
            body_b64=base64.b64encode(record.value or b"").decode("ascii"),
            traceparent=carrier.get("traceparent"), tracestate=carrier.get("tracestate"),
            headers=kept_headers(record.headers or ()),
        )

    def kept_record(self) -> KeptRecord:
        """The record again, byte for byte (headers only for dead letters kept since they are)."""
        topic, partition, offset = self.source
        kept_ms = int(self.created_on.timestamp() * 1000)
        return KeptRecord(topic, partition, offset, base64.b64decode(self.body_b64),
                          record_headers(self.headers), kept_ms)

    def unredrivable(self) -> str | None:
        """Why the record cannot be taken in again whatever is fixed (None: it can be tried; one kept
        without headers is refused by the tag check, with that reason)."""
        return None


def kept_headers(headers: Iterable[tuple[str, bytes | None]]) -> list[list[str]]:
    """A record's headers as a dead letter keeps them: [name, value in base64], in order."""
    return [[name, base64.b64encode(value or b"").decode("ascii")] for name, value in headers]


def record_headers(kept: list[list[str]]) -> tuple[tuple[str, bytes], ...]:
    """The headers `kept_headers` kept, as a consumer record has them."""
    return tuple((name, base64.b64decode(value)) for name, value in kept)


@runtime_checkable
class Redrivable(Protocol):
    """A dead letter an operator may re-drive (services.runtime.redrive): the runtime's `DeadLetter`, and
    intake's own (services/intake/aggregates.py), each with its `Redriven` events in `redrives`."""

    consumer_group: str
    source: tuple[str, int, int]
    redrives: list[Any]  # the `Redriven` events: by, result, detail, timestamp

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def accepted(self) -> bool: ...

    def redriven(self, by: str, result: RedriveResult, detail: str) -> None: ...

    def kept_record(self) -> KeptRecord: ...

    def unredrivable(self) -> str | None: ...


# A re-drive's witness: the dead letter, loaded afresh, with the pending `Redriven` event of this attempt
# (result, detail); raises `AlreadyRedriven` when another attempt took it in meanwhile. The use case that
# takes the record in records it in the same transaction as the effects (services.runtime.redrive).
Witness = Callable[[RedriveResult, str], Aggregate]


def record_dead_letter(app: ServiceApplication, group: str, record: Any, reason: str) -> bool:
    """Keep `record`, which the consumer in `group` could not decode, in `app`'s store; False when its
    position was kept before (a redelivery: nothing recorded). Synchronous: run it off the event loop."""
    letter = DeadLetter.keep(group, record, reason)
    try:
        app.record(letter)
    except IntegrityError:  # the id is taken: this position's dead letter is recorded already
        if app.recorder.select_events(letter.id, limit=1):
            return False
        raise
    return True


# ---- publishing -------------------------------------------------------------------------------------


def body_fields(kept: bytes, body_bytes: int | None = None) -> dict[str, Any]:
    """A dead letter's body fields for the original value `kept` (`body_bytes`: the original's length
    when only the first bytes were kept)."""
    return {"body_masked": masked_body(kept), "body_sha256": hashlib.sha256(kept).hexdigest(),
            "body_bytes": len(kept) if body_bytes is None else body_bytes}


def dead_letter_outgoing(body: DeadLetterV1, traceparent: str | None, tracestate: str | None) -> Outgoing:
    """`body` as an outbox message: keyed and named (ce_subject) by its source position, never a person."""
    event = CloudEvent(
        id=body.dead_letter_id, source=f"/flexledger/{body.service}",
        type=f"flexledger.{body.service}.dead-letter.v1", subject=body.key(), time=body.dead_lettered_at,
        traceparent=traceparent, tracestate=tracestate,
    )
    return Outgoing(body=body, key=body.key(), event=event)


def to_dead_letter(service: Service, stored: object) -> Outgoing | None:
    """The dead-letter-topic message of a stored `DeadLetter.Kept` (None for other events)."""
    if not isinstance(stored, DeadLetter.Kept):
        return None
    body = DeadLetterV1(
        dead_letter_id=str(stored.originator_id), service=service, consumer_group=stored.consumer_group,
        source_topic=stored.source_topic, source_partition=stored.source_partition,
        source_offset=stored.source_offset, reason=stored.reason,
        dead_lettered_at=stored.timestamp.astimezone(UTC), **body_fields(base64.b64decode(stored.body_b64)),
    )
    return dead_letter_outgoing(body, stored.traceparent, stored.tracestate)


class DeadLetterRelay:
    """The handler of a log follower: the service's recorded dead letters, to its dead-letter topic."""

    def __init__(self, publisher: DefaultPublisher, tracer: trace.Tracer, service: Service) -> None:
        self.publisher = publisher
        self.tracer = tracer
        self.service = service

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        letters = [m for _, stored in batch if (m := to_dead_letter(self.service, stored)) is not None]
        await publish_batch(self.tracer, self.publisher, letters)


def dead_letter_publisher(broker: KafkaBroker, topic: Topic) -> DefaultPublisher:
    """The FastStream publisher of a service's dead-letter topic (`topic.producer` is the service), as the
    AsyncAPI document describes it."""
    return broker.publisher(
        topic.name, title=topic.name, schema=DeadLetterV1,
        description=f"{topic.purpose}. Key: <source topic>/<partition>/<offset>. CloudEvents binary mode "
                    f"(type flexledger.{topic.producer}.dead-letter.v1, ce_id = dead_letter_id). Published "
                    f"from {topic.producer}'s outbox, at least once; dead_letter_id identifies repeats. "
                    "Identity numbers are masked in body_masked; the original bytes stay in the service's "
                    "event store, encrypted. Readable by admin only.",
    )
