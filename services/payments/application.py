"""Payments' application (skeleton): turn each money decision into one order or clawback, exactly once.

Use case `record_decision`: a grant creates a PaymentOrder, a clawback a Clawback, saved with the
Kafka position in one transaction; other kinds move no money and record only the position. The
double-entry accounts and budgets of services/payments/domain plug in behind this use case.
"""

from __future__ import annotations

from enum import StrEnum

from eventsourcing.persistence import IntegrityError, Tracking

from contracts.decisions import DecisionV1
from contracts.eventstore import ServiceApplication
from services.payments.aggregates import Clawback, PaymentOrder


class Outcome(StrEnum):
    RECORDED = "recorded"
    NO_MONEY = "no_money"  # extension, statistic, recognition, rejected: nothing to pay
    REDELIVERED = "redelivered"  # this Kafka position was already recorded
    REPUBLISHED = "republished"  # this decision was already recorded, from another offset


class PaymentsApplication(ServiceApplication):
    name = "payments"

    def record_decision(
        self, decision: DecisionV1, position: Tracking, trace_id: str | None, trace_carrier: dict[str, str]
    ) -> Outcome:
        if decision.kind not in ("grant", "clawback"):
            return self._position_only(position, Outcome.NO_MONEY)
        line = PaymentOrder if decision.kind == "grant" else Clawback
        aggregate = line.create(
            book=decision.book, decision_id=decision.decision_id, program=decision.program,
            beneficiary=decision.beneficiary, subject=decision.subject, ref=decision.ref,
            month=decision.month, amount_fen=decision.amount_fen, rule_set=decision.rule_set,
            trace_id=trace_id, traceparent=trace_carrier.get("traceparent"),
            tracestate=trace_carrier.get("tracestate"),
        )
        try:
            self.record(aggregate, tracking=position)
        except IntegrityError:
            if self.already_tracked(position):
                return Outcome.REDELIVERED
            return self._position_only(position, Outcome.REPUBLISHED)  # the order exists already
        return Outcome.RECORDED

    def _position_only(self, position: Tracking, outcome: Outcome) -> Outcome:
        try:
            self.record(tracking=position)
        except IntegrityError:
            return Outcome.REDELIVERED
        return outcome
