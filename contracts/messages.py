"""Wire models of the facts and payment-order topics, and the partition keys that keep them in order.

Decisions have their own module (`contracts.decisions`). Every model is versioned by its
`schema_version` and by the `.v1` suffix of its topic; a breaking change is a new model on a new topic.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.decisions import DecisionV1

BOOK_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
DEFAULT_BOOK = "main"
NO_SUBJECT = "-"
# Partition keys are built from submitted text: cap what a key may carry from a (possibly rejected) fact.
MAX_SUBJECT_CHARS = 64
_BOOK = re.compile(BOOK_PATTERN)
# The fields that name what a fact is about, most specific first (RULES.md: facts about one worker).
_SUBJECT_FIELDS = ("worker", "enterprise", "park")


def valid_book(book: str) -> bool:
    return bool(_BOOK.fullmatch(book))


def fact_subject(fact: Any) -> str:
    """The worker a fact is about, else its enterprise or park, else '-' (e.g. for a malformed fact)."""
    if isinstance(fact, dict):
        for name in _SUBJECT_FIELDS:
            value = fact.get(name)
            if isinstance(value, str) and 0 < len(value) <= MAX_SUBJECT_CHARS:
                return value
    return NO_SUBJECT


def partition_key(book: str, subject: str) -> str:
    """`<book>/<subject>`: one subject's messages share a partition, so they stay in order."""
    return f"{book}/{subject}"


class FactMessageV1(BaseModel):
    """One submission that intake recorded, accepted or rejected, on flexledger.intake.facts.v1.

    `seq` is intake's recording sequence in the book (1, 2, 3, ... without gaps): consumers de-duplicate
    by (book, seq) and report their progress as the highest seq up to which they have processed all."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    book: str = Field(pattern=BOOK_PATTERN, description="'main', or a sandbox book such as scenario-<hex>")
    seq: int = Field(ge=1, description="intake's recording sequence in the book, gap-free")
    fact_id: str | None = Field(description="the submitter's idempotency key; null when the fact had none")
    subject: str = Field(description="worker, else enterprise or park the fact is about; '-' if none")
    outcome: Literal["accepted", "rejected"]
    fact: Any = Field(description="the submitted JSON, exactly as received")
    reason: str | None = Field(None, description="why the fact was rejected (RULES.md section 5)")
    digest: str = Field(description="SHA-256 of the canonical JSON of the fact")
    recorded_at: datetime = Field(description="when intake recorded the submission (UTC)")
    traceparent: str | None = Field(None, description="W3C trace context of the submission")
    tracestate: str | None = None

    def key(self) -> str:
        return partition_key(self.book, self.subject)


class PaymentOrderV1(BaseModel):
    """What payments recorded for one money decision, on flexledger.payments.orders.v1."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    book: str = Field(pattern=BOOK_PATTERN)
    order_id: str = Field(description="deterministic: one order per decision")
    event: Literal["order_created", "clawback_recorded"]
    decision_id: str
    program: str | None = None
    beneficiary: str | None = None
    subject: str | None = None
    ref: str | None = None
    month: str | None = None
    amount_fen: int = Field(gt=0)
    rule_set: str
    trace_id: str | None = None
    recorded_at: datetime

    def key(self) -> str:
        return partition_key(self.book, self.beneficiary or NO_SUBJECT)


# Every model that crosses a service boundary, by the name of its committed JSON Schema file.
WIRE_MODELS: dict[str, type[BaseModel]] = {
    "fact-message.v1": FactMessageV1,
    "decision.v1": DecisionV1,
    "payment-order.v1": PaymentOrderV1,
}
