"""Payments' write model: one event stream per book, holding the payments domain's events.

`PaymentsBookStream` (id `book_stream_id(book)`) is the book's stream: each `Recorded` event is one
command (a decision, an appropriation, a batch cut, a settlement, a repayment) with the domain events
it caused (`services.payments.codec`), what caused it, and the trace it ran in; a refused command
(e.g. a clawback larger than its line) is recorded with its `refusal` and no domain events. Folding the
domain events of the stream in order with `PaymentsBook.apply` rebuilds the book.

`PaymentOrder` and `Clawback` are the walking skeleton's write model (one aggregate per decision).
They are no longer written, but their event class names are stored topics in existing event stores
and must keep resolving, so they stay here, unchanged.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate

ORDER_NAMESPACE = uuid.UUID("0c3e9a57-2b8f-5d61-a4c0-7e95f1d2b3a4")
BOOK_NAMESPACE = uuid.UUID("5b0f3c8e-9d21-5a47-8e6b-1c2d3e4f5a6b")


def book_stream_id(book: str) -> uuid.UUID:
    """The id of a book's payments stream (book names are not personal data)."""
    return uuid.uuid5(BOOK_NAMESPACE, f"payments-book\x1f{book}")


class PaymentsBookStream(Aggregate):
    """The event stream of one payments book."""

    class Opened(Aggregate.Created):
        book: str

    class Recorded(Aggregate.Event):
        book: str
        cause: dict[str, Any]  # what the command was: {"kind": "decision", "decision_id": ...}, ...
        events: list[dict[str, Any]]  # the domain events, encoded (services.payments.codec)
        refusal: str | None  # why the command was refused (then `events` is empty)
        trace_id: str | None
        traceparent: str | None
        tracestate: str | None

    def __init__(self, book: str) -> None:
        self.book = book

    @classmethod
    def open(cls, book: str) -> PaymentsBookStream:
        return cls._create(cls.Opened, id=book_stream_id(book), book=book)

    def record(
        self, cause: dict[str, Any], events: list[dict[str, Any]], refusal: str | None,
        trace_id: str | None, carrier: dict[str, str],
    ) -> None:
        self.trigger_event(
            self.Recorded, book=self.book, cause=cause, events=events, refusal=refusal, trace_id=trace_id,
            traceparent=carrier.get("traceparent"), tracestate=carrier.get("tracestate"),
        )


# ---- the walking skeleton's events (read, never written) ------------------------------------------


def order_id(book: str, decision_id: str) -> uuid.UUID:
    return uuid.uuid5(ORDER_NAMESPACE, f"{book}\x1f{decision_id}")


class _MoneyLine(Aggregate):
    class Created(Aggregate.Created):
        book: str
        decision_id: str
        program: str | None
        beneficiary: str | None
        subject: str | None
        ref: str | None
        month: str | None
        amount_fen: int
        rule_set: str
        trace_id: str | None
        traceparent: str | None
        tracestate: str | None

    def __init__(
        self, book: str, decision_id: str, program: str | None, beneficiary: str | None, subject: str | None,
        ref: str | None, month: str | None, amount_fen: int, rule_set: str,
    ) -> None:
        assert amount_fen > 0, "a money decision moves a positive amount"
        self.book, self.decision_id, self.program = book, decision_id, program
        self.beneficiary, self.subject, self.ref, self.month = beneficiary, subject, ref, month
        self.amount_fen, self.rule_set = amount_fen, rule_set


class PaymentOrder(_MoneyLine):
    """A grant to pay to its beneficiary."""

    class PaymentOrderCreated(_MoneyLine.Created):
        pass

    @classmethod
    def create(cls, *, book: str, decision_id: str, **fields: Any) -> PaymentOrder:
        return cls._create(cls.PaymentOrderCreated, id=order_id(book, decision_id), book=book,
                           decision_id=decision_id, **fields)


class Clawback(_MoneyLine):
    """A clawback to recover from (or offset against) its beneficiary."""

    class ClawbackRecorded(_MoneyLine.Created):
        pass

    @classmethod
    def create(cls, *, book: str, decision_id: str, **fields: Any) -> Clawback:
        return cls._create(cls.ClawbackRecorded, id=order_id(book, decision_id), book=book,
                           decision_id=decision_id, **fields)
