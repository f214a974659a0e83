"""Payments' write model for the walking skeleton: what is owed or reclaimed per money decision.

One aggregate per decision, its id derived from the decision id, so a redelivered or republished
decision can never create a second order. The double-entry domain (services/payments/domain) will
take over from here; these event class names are stored topics and must keep replaying.
"""

from __future__ import annotations

import uuid
from typing import Any

from eventsourcing.domain import Aggregate

ORDER_NAMESPACE = uuid.UUID("0c3e9a57-2b8f-5d61-a4c0-7e95f1d2b3a4")


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
