"""Intake's write model: one event-sourced record per fact id in a book.

Its first event records the first submission of the id, accepted or rejected; later events record
each reuse of the id with different content (always rejected, RULES.md section 5). Every event
carries the full message for the facts topic, so the outbox relay never loads an aggregate.
Event class names are stored topics: renaming one breaks replay.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate

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

    def reject_reuse(self, **fields: Any) -> None:
        """The id used again for other content: rejected, and recorded with its own seq."""
        self.trigger_event(self.ReuseRejected, **fields)
