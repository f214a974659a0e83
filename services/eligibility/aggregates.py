"""Eligibility's write model: the decision ledger, one hash-chained stream per subject (a worker,
enterprise or park) in a book, and the ledger's signed checkpoints.

Each `FactProcessed` event is one fact processed with the decisions it caused, and is a link of a hash
chain over the stream: `hash = link_hash(prev_hash, chain_content(event))`, so an altered or deleted
event breaks every later link. Stored events name their class by topic: the classes here keep the
topics they were first stored under (`TOPIC`), so that renaming a class never breaks replay.
"""

from __future__ import annotations

import uuid
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


# The class was first named SubjectLedger; its stored events, and every checkpoint signed over them,
# carry these topics.
_STORED_AS = "services.eligibility.aggregates:SubjectLedger"


class DecisionChain(Aggregate):
    """The decisions of one subject in a book: every fact about it processed, in order, each with the
    decisions it caused and the rule set that made them, chained by hashes."""

    TOPIC = _STORED_AS

    class Created(Aggregate.Created):  # never triggered: eventsourcing gives every aggregate one, which
        # then needs its explicit topic like the others
        TOPIC = f"{_STORED_AS}.Created"

    class Opened(Aggregate.Created):
        TOPIC = f"{_STORED_AS}.Opened"
        book: str
        subject: str

    class FactProcessed(Aggregate.Event):
        TOPIC = f"{_STORED_AS}.FactProcessed"
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
            assert isinstance(aggregate, DecisionChain)
            aggregate.last_seq = self.seq
            aggregate.head = self.hash
            aggregate.rule_set = self.rule_set
            enterprise = self.fact.get("enterprise") if isinstance(self.fact, dict) else None
            if (self.outcome == "accepted" and isinstance(enterprise, str)
                    and all(known != enterprise for _, known in aggregate.employers)):
                # A new tuple, never changed in place: the decision relay reads it from another thread.
                aggregate.employers = (*aggregate.employers, (self.originator_version, enterprise))

    def __init__(self, book: str, subject: str) -> None:
        self.book = book
        self.subject = subject
        self.last_seq = 0  # highest intake sequence processed: anything at or below is a redelivery
        self.head = GENESIS  # hash of the last link
        self.rule_set: str | None = None
        # The enterprises that named the subject in an accepted fact, each with the chain version that
        # first did: who employs a worker, for the decisions topic (adapters/employers.py).
        self.employers: tuple[tuple[int, str], ...] = ()

    def record(self, **fields: Any) -> None:
        """Append one processed fact as the next link of the chain."""
        fields = {"book": self.book, "subject": self.subject, **fields}
        link = link_hash(self.head, chain_content(fields))
        self.trigger_event(self.FactProcessed, prev_hash=self.head, hash=link, **fields)


class LedgerCheckpoints(Aggregate):
    """The signed checkpoints of the decision ledger (`services.eligibility.domain.checkpoint`), one
    event each.

    One aggregate per ledger, so two instances never sign the same stretch twice (the second append
    fails on the version). The checkpoint relay publishes each `Signed` to the checkpoints topic."""

    class Started(Aggregate.Created):
        ledger: str

    class Signed(Aggregate.Event):
        ledger: str
        up_to_notification_id: int
        event_count: int
        digest: str
        digest_algorithm: str
        signed_at: str
        key_id: str
        signature: str
        # The Merkle tree's frontier (hex, largest subtree first), for the checkpointer to resume from;
        # not published. Absent from checkpoints signed before the tree.
        frontier: list[str] | None = None

        def apply(self, aggregate: Aggregate) -> None:
            assert isinstance(aggregate, LedgerCheckpoints)
            aggregate.up_to = self.up_to_notification_id
            aggregate.event_count = self.event_count
            aggregate.digest = self.digest
            aggregate.digest_algorithm = self.digest_algorithm
            aggregate.frontier = getattr(self, "frontier", None)

    def __init__(self, ledger: str) -> None:
        self.ledger = ledger
        self.up_to = 0
        self.event_count = 0
        self.digest = "0" * 64
        self.digest_algorithm = ""
        self.frontier: list[str] | None = None

    @classmethod
    def start(cls, ledger: str) -> LedgerCheckpoints:
        return cls._create(cls.Started, id=checkpoints_id(ledger), ledger=ledger)

    def sign(self, **fields: Any) -> None:
        self.trigger_event(self.Signed, ledger=self.ledger, **fields)


CHECKPOINTS_NAMESPACE = uuid.UUID("a3f1c9e2-7b4d-5c8e-9f10-2d3e4b5a6c7d")


def checkpoints_id(ledger: str) -> uuid.UUID:
    return uuid.uuid5(CHECKPOINTS_NAMESPACE, ledger)
