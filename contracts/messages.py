"""Wire models of the facts, payments and dead-letter topics, and the partition keys that keep them in order.

Decisions have their own module (`contracts.decisions`). Every model is versioned by its
`schema_version` and by the `.v1` suffix of its topic; a breaking change is a new model on a new topic.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.decisions import DecisionV1
from contracts.identifiers import mask_identifiers

BOOK_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
DEFAULT_BOOK = "main"
# The book a submission is for: an HTTP request header to intake, a Kafka header on the agency feed.
BOOK_HTTP_HEADER = "X-Flexledger-Book"
BOOK_KAFKA_HEADER = "flexledger-book"
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
    """`<book>/<subject>`: one subject's messages share a partition, so they stay in order. Only for
    subjects that name no one (a statistic's pseudonym): a person's or enterprise's messages are keyed
    by a keyed pseudonym instead (`services.runtime.publishing.PartitionKeys`)."""
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


class PaymentOrderV1(BaseModel):
    """What payments recorded for one money decision, on flexledger.payments.orders.v1.

    `order_created`: a grant became a payment order (`status`: committed to its budget, or waiting for
    budget with `awaiting_reason`); `clawback_recorded`: a clawback, which cancelled `cancelled_fen` of
    the line's undisbursed orders and raised a receivable of `claimed_fen` for the rest. The fields
    after `recorded_at` were added with the payments ledger (issue 5); they are optional, so messages
    without them stay valid."""

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
    fiscal_year: int | None = Field(None, description="the budget year the line is charged to")
    status: Literal["committed", "awaiting_budget"] | None = Field(
        None, description="order_created: charged to its budget, or waiting for an appropriation"
    )
    awaiting_reason: str | None = Field(None, description="why the order waits for budget")
    cancelled_fen: int | None = Field(None, ge=0, description="clawback_recorded: amount cancelled unpaid")
    claimed_fen: int | None = Field(None, ge=0, description="clawback_recorded: receivable raised")


OrderChange = Literal["created", "awaiting_budget", "committed", "cancelled", "offset", "batched", "paid",
                      "returned"]


class OrderEventV1(BaseModel):
    """One change of one payment order, on flexledger.payments.order-events.v1: every change, in the
    order payments recorded them (per key), so a subscriber that folds them keeps an exact mirror of
    every order (docs/design/contracts.md, "Mirroring payment orders"):

    - `created`: the order exists, worth `amount_fen` (the grant `decision_id`), not yet committed;
    - `awaiting_budget`: it waits for an appropriation (`reason`);
    - `committed`: `amount_fen` is charged to its budget; the order is ready to pay;
    - `cancelled`: the clawback `decision_id` cancelled `amount_fen` of what was not yet disbursed;
    - `offset`: `amount_fen` of it settled the beneficiary's debt `claim_id` instead of being paid;
    - `batched`: `amount_fen` went to the bank in entry `entry_id` of batch `batch_id` (try `attempt`);
    - `paid`: the bank paid entry `entry_id` (`confirmation`);
    - `returned`: the bank returned entry `entry_id` (`reason`); the amount is owed again.

    The order's state follows: cancelled when nothing is left of it, else awaiting budget until
    committed, in transit while an entry is with the bank, ready while some is unpaid, else paid."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    book: str = Field(pattern=BOOK_PATTERN)
    event_id: str = Field(description="<book>/<position in payments' log>/<index>: unique, stable across "
                                      "redeliveries (also ce_id)")
    order_id: str = Field(description="the payment order (= the grant's decision id)")
    change: OrderChange
    amount_fen: int = Field(gt=0, description="what the change is worth (see the model's description)")
    at: AwareDatetime = Field(description="when payments recorded the change")
    decision_id: str | None = Field(None, description="created: the grant; cancelled: the clawback")
    beneficiary: str | None = Field(None, description="created: resident identity number or unified social "
                                                      "credit code (as on the orders topic)")
    program: str | None = Field(None, description="created: the programme")
    fiscal_year: int | None = Field(None, description="created: the budget year the order is charged to")
    subject: str | None = Field(None, description="created: the line's subject")
    ref: str | None = Field(None, description="created: the line's reference")
    month: str | None = Field(None, description="created: the line's month")
    reason: str | None = Field(None, description="awaiting_budget: why; returned: the bank's reason")
    claim_id: str | None = Field(None, description="offset: the debt settled")
    batch_id: str | None = Field(None, description="batched: the disbursement instruction")
    entry_id: str | None = Field(None, description="batched, paid, returned: the disbursement entry")
    attempt: int | None = Field(None, ge=1, description="batched: 1 the first time, 2 after a return, ...")
    confirmation: str | None = Field(None, description="paid: the bank's reference")
    trace_id: str | None = None


class DisbursementEntryV1(BaseModel):
    """One payment of a disbursement instruction. The beneficiary is in clear: Finance pays it."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    entry_id: str = Field(description="<batch_id>-<index>: the key of its settlement result")
    order_id: str = Field(description="the payment order (= the grant's decision id)")
    beneficiary: str = Field(description="resident identity number or unified social credit code")
    program: str
    fiscal_year: int
    amount_fen: int = Field(gt=0)
    attempt: int = Field(ge=1, description="1 the first time; 2 after one bank return, ...")


class DisbursementInstructionV1(BaseModel):
    """A batch of payments for the Finance Bureau, on flexledger.payments.disbursements.v1."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    book: str = Field(pattern=BOOK_PATTERN)
    batch_id: str = Field(description="<book>-B<n>, unique; also the partition key")
    cut_at: AwareDatetime = Field(description="when payments cut the batch")
    entries: list[DisbursementEntryV1] = Field(min_length=1)
    total_fen: int = Field(gt=0)

    @model_validator(mode="after")
    def _total_adds_up(self) -> DisbursementInstructionV1:
        if sum(entry.amount_fen for entry in self.entries) != self.total_fen:
            raise ValueError("total_fen is not the sum of the entries")
        return self

    def key(self) -> str:
        return self.batch_id


class SettlementResultV1(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    entry_id: str
    outcome: Literal["paid", "returned"]
    confirmation: str | None = Field(None, description="the bank's reference of a paid entry")
    reason: str | None = Field(None, description="why the bank returned the entry")

    @model_validator(mode="after")
    def _outcome_has_its_detail(self) -> SettlementResultV1:
        if self.outcome == "paid" and not self.confirmation:
            raise ValueError("a paid entry needs a confirmation")
        if self.outcome == "returned" and not self.reason:
            raise ValueError("a returned entry needs a reason")
        return self


class SettlementV1(BaseModel):
    """The bank's results for entries of one batch, on flexledger.payments.settlements.v1. A batch may be
    settled by several messages (confirmations first, returns days later); each entry's result is final,
    and the same result sent again changes nothing."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    book: str = Field(pattern=BOOK_PATTERN)
    batch_id: str
    settlement_id: str = Field(description="the bank's id of this settlement file")
    settled_at: AwareDatetime
    results: list[SettlementResultV1] = Field(min_length=1)

    def key(self) -> str:
        return self.batch_id


Service = Literal["intake", "eligibility", "payments"]

# What a dead letter shows of a message's value, at most (characters of `body_masked`). A diagnosis
# needs the start of a message; the whole original stays in the service's event store. Worst case on
# the wire, every character a JSON escape (6 bytes): 96 KiB, well inside one Kafka record.
DEAD_LETTER_BODY_MAX_CHARS = 16 * 1024


def masked_body(value: bytes) -> str:
    """`body_masked` of a dead letter whose original value is `value`: the bytes as UTF-8 text
    (undecodable bytes as U+FFFD), every identity number masked (`contracts.identifiers`), then cut at
    DEAD_LETTER_BODY_MAX_CHARS characters — masked before the cut, so that a cut never leaves the
    start of a number in clear."""
    return mask_identifiers(value.decode("utf-8", "replace"))[:DEAD_LETTER_BODY_MAX_CHARS]


class DeadLetterV1(BaseModel):
    """A message a consumer could not take in, on its service's dead-letter topic: one contract for
    flexledger.intake.dead-letters.v1 (agency messages), flexledger.eligibility.dead-letters.v1 (facts)
    and flexledger.payments.dead-letters.v1 (decisions and settlements). It replaced the intake-only
    `IntakeDeadLetterV1` (which carried the original bytes in base64) when eligibility's and payments'
    dead letters moved into their outboxes; no outside subscriber read either (only `admin` may read
    dead letters: flexledger/kafka_access.py).

    Published from the service's outbox, at least once: `dead_letter_id` identifies repeats. No identity
    number is on the wire: the key and ce_subject are the source position, `body_masked` shows the
    value masked, and the text fields are masked when the model is built (a reason never quotes the
    message anyway). The original bytes stay in the service's event store, encrypted at rest, found by
    the source position and checked against `body_sha256`; operators re-drive from there."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    dead_letter_id: str = Field(description="deterministic from the consumer group and the source position: "
                                            "one per consumed message")
    service: Service = Field(description="whose consumer refused it")
    consumer_group: str
    source_topic: str
    source_partition: int = Field(ge=0)
    source_offset: int = Field(ge=0)
    reason: str = Field(description="why, naming the field or header (never quoting personal data)")
    status: int | None = Field(None, description="intake: what HTTP would have answered (400, 401, 403, 409, "
                                                 "413, 415 or 500); null from eligibility and payments")
    book: str | None = Field(None, description="the book the message was for, when known")
    fact_id: str | None = Field(None, description="the fact's id, when known")
    seq: int | None = Field(None, description="intake: the book's seq of the recorded rejection, if any")
    agency: str | None = Field(None, description="intake: the agency that sent it, when known")
    body_masked: str = Field(max_length=DEAD_LETTER_BODY_MAX_CHARS, description=(
        "the original value as UTF-8 text (undecodable bytes as U+FFFD) with every identity number "
        f"masked, cut at {DEAD_LETTER_BODY_MAX_CHARS} characters (contracts.messages.masked_body)"))
    body_bytes: int = Field(ge=0, description="length of the original value in bytes")
    body_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description=(
        "SHA-256 (hex) of the original value as the service's event store keeps it: all of it, except "
        "intake's messages over its one-fact limit, of which it keeps the first 64 KiB (body_bytes is then "
        "larger)"))
    dead_lettered_at: datetime

    @field_validator("consumer_group", "source_topic", "reason", "book", "fact_id", "agency")
    @classmethod
    def _masked(cls, text: str | None) -> str | None:
        # Whatever a builder passes (an agency header or a fact id may be an identity number), the
        # wire never carries one in clear.
        return None if text is None else mask_identifiers(text)

    def key(self) -> str:
        """The source position: names no person, and keeps one message's repeats together."""
        return f"{self.source_topic}/{self.source_partition}/{self.source_offset}"


class StatisticV1(BaseModel):
    """One urban new-employment statistic (or its revocation) for the Statistics Bureau, on
    flexledger.eligibility.statistics.v1. It names the worker only by a keyed pseudonym
    (HMAC-SHA256 under the pseudonym key): never an identity number or a name."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    book: str = Field(pattern=BOOK_PATTERN)
    statistic_id: str = Field(description="the ledger decision's id (also the CloudEvent id)")
    kind: Literal["statistic", "statistic_revoked"]
    pseudonym: str = Field(pattern=r"^[0-9a-f]{64}$", description="HMAC-SHA256 of the worker, hex")
    month: str = Field(description="the month counted as the worker's new employment of its year")
    rule_set: str
    recorded_at: datetime

    def key(self) -> str:
        return partition_key(self.book, self.pseudonym)


class CheckpointV1(BaseModel):
    """A signed checkpoint of eligibility's ledger, on flexledger.audit.checkpoints.v1
    (services/eligibility/domain/checkpoint.py). Verify offline: `flexledger audit verify-checkpoint
    FILE --public-key KEY`; hold the ledger to it: `flexledger audit verify`."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    schema_version: Literal[1] = 1
    ledger: str = Field(description="whose log: 'eligibility'")
    book: str | None = Field(None, description="null: the whole log, every book")
    up_to_notification_id: int = Field(ge=1, description="the last stored event the digest covers")
    event_count: int = Field(ge=1, description="how many stored events the digest covers: the tree size")
    digest: str = Field(pattern=r"^[0-9a-f]{64}$", description="hex; by digest_algorithm: "
                        "flexledger-merkle-sha256/2 the RFC 9162 tree root, flexledger-log-sha256/1 the "
                        "running SHA-256 (docs/design/audit-format.md)")
    digest_algorithm: str
    signed_at: str = Field(description="ISO 8601, exactly as signed")
    key_id: str = Field(description="first 16 hex digits of SHA-256 of the public key")
    signature_algorithm: Literal["ed25519"] = "ed25519"
    signature: str = Field(description="base64 Ed25519 signature of the signed fields")


# Every model that crosses a service boundary, by the name of its committed JSON Schema file.
WIRE_MODELS: dict[str, type[BaseModel]] = {
    "fact-message.v1": FactMessageV1,
    "decision.v1": DecisionV1,
    "payment-order.v1": PaymentOrderV1,
    "order-event.v1": OrderEventV1,
    "disbursement-instruction.v1": DisbursementInstructionV1,
    "settlement.v1": SettlementV1,
    "dead-letter.v1": DeadLetterV1,
    "statistic.v1": StatisticV1,
    "checkpoint.v1": CheckpointV1,
}
