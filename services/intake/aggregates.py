"""Intake's write model: one event-sourced record per fact id in a book.

Its first event records the first submission of the id, accepted or rejected; later events record
each reuse of the id with different content (always rejected, RULES.md section 5). Every event
carries the full message for the facts topic, so the outbox relay never loads an aggregate.
Event class names are stored topics: renaming one breaks replay.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, register_topic

from services.runtime.access.store import ApiKeyRing
from services.runtime.dead_letters import KeptRecord, RedriveHistory, record_headers

# Intake kept the API key ring in its own store until the access module got a store of its own: those
# events are still in intake's log. They decode as the access store's key ring (nothing in intake
# reads them; keys live in the access store now and are issued again there: docs/design/http-auth.md).
register_topic("services.intake.aggregates:ApiKeyRing", ApiKeyRing)

SUBMISSION_NAMESPACE = uuid.UUID("3b0f7f0e-1c55-5a52-9d3e-6f2d8b1c4a01")


def submission_id(book: str, fact_id: str | None) -> uuid.UUID:
    """Deterministic per (book, fact id), so the database refuses a second first submission; a fact
    without an id has no idempotency key and gets a random one."""
    if fact_id is None:
        return uuid.uuid4()
    return uuid.uuid5(SUBMISSION_NAMESPACE, f"{book}\x1f{fact_id}")


class FactSubmission(Aggregate):
    class Recorded(Aggregate.Created):
        book: str
        seq: int
        fact_id: str | None
        subject: str
        outcome: str
        fact: Any
        digest: str
        reason: str | None
        traceparent: str | None
        tracestate: str | None
        # Its fact id scope (fact_ids.scope_of); None: the operator, and every event recorded before
        # issue 13 (the default is a class attribute, which an old event without the field reads).
        submitter: str | None = None

    class ReuseRejected(Aggregate.Event):
        book: str
        seq: int
        fact_id: str | None
        subject: str
        fact: Any
        digest: str
        reason: str
        traceparent: str | None
        tracestate: str | None
        submitter: str | None = None

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, FactSubmission)
            aggregate.seqs.append(self.seq)

    def __init__(self, book: str, seq: int, fact_id: str | None, outcome: str, digest: str) -> None:
        self.book = book
        self.fact_id = fact_id
        self.outcome = outcome
        self.digest = digest
        self.seqs = [seq]

    @classmethod
    def record(cls, *, book: str, fact_id: str | None, **fields: Any) -> FactSubmission:
        """The first submission of a fact id in a book."""
        aggregate_id = submission_id(book, fact_id)
        return cls._create(cls.Recorded, id=aggregate_id, book=book, fact_id=fact_id, **fields)

    @classmethod
    def recorded_event(cls, *, book: str, fact_id: str | None, **fields: Any) -> FactSubmission.Recorded:
        """The creation event of `record`, without building the aggregate: a bulk request creates
        thousands, and only an id reused within the same request needs the aggregate (`event.mutate`)."""
        attributes: dict[str, Any] = {
            "originator_topic": _TOPIC, "originator_id": submission_id(book, fact_id),
            "originator_version": cls.INITIAL_VERSION, "timestamp": cls.Recorded.create_timestamp(),
            "book": book, "fact_id": fact_id, **fields,
        }
        return cls.Recorded(**attributes)

    def reject_reuse(self, **fields: Any) -> None:
        """The id used again for other content: rejected, and recorded with its own seq."""
        self.trigger_event(self.ReuseRejected, **fields)


_TOPIC = get_topic(FactSubmission)


# ---- dead letters -------------------------------------------------------------------------------

AGENCY_FEED_GROUP = "intake"  # the agency feed's consumer group (entrypoints/kafka.py), on dead letters


def dead_letter_id(topic: str, partition: int, offset: int) -> uuid.UUID:
    """One dead letter per consumed position: a redelivered message cannot be dead-lettered twice."""
    return uuid.uuid5(SUBMISSION_NAMESPACE, f"dead-letter\x1f{topic}\x1f{partition}\x1f{offset}")


class DeadLetter(RedriveHistory, Aggregate):
    """An agency message intake did not take in as it came (unreadable, unauthorised, or a fact it
    recorded as rejected), kept with the reason and the original bytes; the outbox relay publishes it
    to the dead-letter topic. Recorded in the same transaction as the message's Kafka position.
    An operator may re-drive it (`services.runtime.redrive`): each attempt is a `Redriven` event,
    recorded in the same transaction as the fact it became, if any."""

    consumer_group = AGENCY_FEED_GROUP

    class Recorded(Aggregate.Created):
        source_topic: str
        source_partition: int
        source_offset: int
        agency: str | None
        book: str | None
        fact_id: str | None
        status: int
        reason: str
        seq: int | None  # the book's seq when the fact was recorded as rejected; None when not recorded
        body_b64: str  # the first `dead_letter_max_bytes` of the message
        body_bytes: int  # the message's length
        traceparent: str | None
        tracestate: str | None
        # Every header, values in base64 (services.runtime.dead_letters.kept_headers); None in the dead
        # letters kept before re-drives existed (the default is a class attribute, read by old events).
        headers: list[list[str]] | None = None

    class Redriven(Aggregate.Event):
        """An operator had the message taken in again: `accepted` (what it became) or still `refused`
        (the new reason)."""

        by: str  # the operator's key: role and key id
        result: str  # services.runtime.dead_letters.RedriveResult
        detail: str  # redacted: never quotes the message

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, DeadLetter)
            aggregate.redrives.append(self)

    def __init__(
        self, source_topic: str, source_partition: int, source_offset: int, body_b64: str, body_bytes: int,
        seq: int | None, book: str | None, headers: list[list[str]] | None = None, **_: Any,
    ) -> None:
        self.source = (source_topic, source_partition, source_offset)
        self.body_b64 = body_b64
        self.body_bytes = body_bytes
        self.seq = seq
        self.book = book
        self.headers = headers
        self.redrives: list[DeadLetter.Redriven] = []

    @classmethod
    def record(
        cls, *, source_topic: str, source_partition: int, source_offset: int, **fields: Any
    ) -> DeadLetter:
        return cls._create(
            cls.Recorded, id=dead_letter_id(source_topic, source_partition, source_offset),
            source_topic=source_topic, source_partition=source_partition, source_offset=source_offset,
            **fields,
        )

    def unredrivable(self) -> str | None:
        """Why the message cannot be taken in again whatever is fixed; None when it can be tried."""
        if self.seq is not None:
            return (f"its fact was recorded as rejected (seq {self.seq} of book {self.book}): a fact id's "
                    "first submission stands, so taking it in again changes nothing; after the fix the "
                    "agency sends the fact again under a new id")
        kept = len(base64.b64decode(self.body_b64))
        if kept < self.body_bytes:
            return (f"kept truncated: intake kept {kept} of its {self.body_bytes} bytes (its one-fact "
                    "limit); the agency sends it again")
        if self.headers is None:
            return ("kept before intake kept a message's headers (its book and content type among them): "
                    "it cannot be read as it came; the agency sends it again")
        return None

    def kept_record(self) -> KeptRecord:
        """The message again, byte for byte, with its headers."""
        topic, partition, offset = self.source
        kept_ms = int(self.created_on.timestamp() * 1000)
        return KeptRecord(topic, partition, offset, base64.b64decode(self.body_b64),
                          record_headers(self.headers or []), kept_ms)
