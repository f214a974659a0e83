"""Eligibility's write model: the ledger stream of one subject (a worker, enterprise or park) in a book.

Each `FactProcessed` event is one fact the ledger processed with the decisions it caused, and is a
link of a hash chain over the stream: `hash = link_hash(prev_hash, chain_content(event))`, so an
altered or deleted event breaks every later link. Event class names are stored topics: renaming one
breaks replay.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.domain import Aggregate

from services.eligibility.domain.chain import GENESIS, link_hash

# The fields of FactProcessed that its hash covers, in addition to the previous hash.
CHAIN_FIELDS = (
    "book", "subject", "seq", "fact_id", "outcome", "fact", "reason", "digest", "decisions", "rule_set",
    "trace_id",
)


def chain_content(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: fields[name] for name in CHAIN_FIELDS}


class SubjectLedger(Aggregate):
    class Opened(Aggregate.Created):
        book: str
        subject: str

    class FactProcessed(Aggregate.Event):
        book: str
        subject: str
        seq: int
        fact_id: str | None
        outcome: str
        fact: Any
        reason: str | None
        digest: str
        decisions: list[dict[str, Any]]
        rule_set: str
        trace_id: str | None
        traceparent: str | None
        tracestate: str | None
        prev_hash: str
        hash: str

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, SubjectLedger)
            aggregate.last_seq = self.seq
            aggregate.head = self.hash
            aggregate.rule_set = self.rule_set

    def __init__(self, book: str, subject: str) -> None:
        self.book = book
        self.subject = subject
        self.last_seq = 0  # highest intake sequence processed: anything at or below is a redelivery
        self.head = GENESIS  # hash of the last link
        self.rule_set: str | None = None

    def record(self, **fields: Any) -> None:
        """Append one processed fact as the next link of the chain."""
        fields = {"book": self.book, "subject": self.subject, **fields}
        link = link_hash(self.head, chain_content(fields))
        self.trigger_event(self.FactProcessed, prev_hash=self.head, hash=link, **fields)
