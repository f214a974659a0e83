"""Outbox relays of payments: the book streams' records, published to Kafka.

Each topic has a sandbox twin (`sandbox.` + its name) that carries every book but the production ones
(`services.runtime.publishing.BookTopics`).

- orders (`flexledger.payments.orders.v1`, key `<book>/<pseudonym of the beneficiary>`): one
  `PaymentOrderV1` per money decision recorded: `order_created` for a grant (committed, or awaiting
  budget with the reason), `clawback_recorded` for a clawback (what it cancelled and what it
  claimed). Refused decisions publish nothing.
- disbursements (`flexledger.payments.disbursements.v1`, key the batch id): one
  `DisbursementInstructionV1` per `BatchCut`.

Relays publish at least once (see `services.runtime.outbox`); ce_id is stable (the order id, the batch id), so
consumers de-duplicate.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from contracts.cloudevents import CloudEvent
from contracts.messages import NO_SUBJECT, DisbursementEntryV1, DisbursementInstructionV1, PaymentOrderV1
from services.payments.aggregates import PaymentsBookStream
from services.payments.codec import decode
from services.payments.domain import events as e
from services.runtime.outbox import Batch, Connection
from services.runtime.publishing import BookTopics, Outgoing, PartitionKeys

ORDER_EVENT_TYPE = "flexledger.payments.order.v1"
DISBURSEMENT_EVENT_TYPE = "flexledger.payments.disbursement.v1"
SOURCE = "/flexledger/payments"


def _domain_events(stored: Any) -> list[e.PaymentsEvent]:
    if not isinstance(stored, PaymentsBookStream.Recorded):
        return []
    return [decode(data) for data in stored.events]


def order_messages(stored: Any, keys: PartitionKeys) -> list[Outgoing]:
    """The orders-topic messages of one stored record (none for other kinds of record)."""
    if not isinstance(stored, PaymentsBookStream.Recorded) or stored.cause.get("kind") != "decision":
        return []
    events = _domain_events(stored)
    received = next((ev for ev in events if isinstance(ev, e.DecisionReceived)), None)
    if received is None:  # refused
        return []
    cause = stored.cause
    recorded_at = stored.timestamp.astimezone(UTC)
    line = received.line
    common: dict[str, Any] = {
        "book": stored.book, "decision_id": received.decision_id, "program": line.program,
        "beneficiary": line.beneficiary, "subject": line.subject, "ref": line.ref, "month": line.month,
        "rule_set": cause["rule_set"], "trace_id": stored.trace_id, "recorded_at": recorded_at,
        "fiscal_year": received.fiscal_year,
    }
    if received.kind == "grant":
        created = next(ev for ev in events if isinstance(ev, e.OrderCreated))
        waiting = next((ev for ev in events if isinstance(ev, e.OrderAwaitingBudget)
                        and ev.order_id == created.order_id), None)
        body = PaymentOrderV1(
            order_id=created.order_id, event="order_created", amount_fen=created.amount_fen,
            status="awaiting_budget" if waiting else "committed",
            awaiting_reason=waiting.reason if waiting else None, **common,
        )
    else:
        cancelled = sum(ev.amount_fen for ev in events
                        if isinstance(ev, e.OrderCancelled) and ev.decision_id == received.decision_id)
        claimed = sum(ev.amount_fen for ev in events
                      if isinstance(ev, e.ReceivableRaised) and ev.decision_id == received.decision_id)
        body = PaymentOrderV1(
            order_id=received.decision_id, event="clawback_recorded", amount_fen=received.amount_fen,
            cancelled_fen=cancelled, claimed_fen=claimed, **common,
        )
    event = CloudEvent(
        id=body.order_id, source=SOURCE, type=ORDER_EVENT_TYPE, subject=f"{stored.book}/{body.order_id}",
        time=recorded_at, traceparent=stored.traceparent, tracestate=stored.tracestate,
    )
    key = keys(stored.book, body.beneficiary or NO_SUBJECT)
    return [Outgoing(body=body, key=key, event=event, book=stored.book)]


def instruction(book: str, cut: e.BatchCut) -> DisbursementInstructionV1:
    return DisbursementInstructionV1(
        book=book, batch_id=cut.batch_id, cut_at=cut.at, total_fen=cut.total_fen,
        entries=[
            DisbursementEntryV1(
                entry_id=entry.entry_id, order_id=entry.order_id, beneficiary=entry.beneficiary,
                program=entry.program, fiscal_year=entry.fiscal_year, amount_fen=entry.amount_fen,
                attempt=entry.attempt,
            )
            for entry in cut.entries
        ],
    )


def disbursement_messages(stored: Any) -> list[Outgoing]:
    """One instruction per batch cut in the record."""
    out = []
    for cut in _domain_events(stored):
        if not isinstance(cut, e.BatchCut):
            continue
        body = instruction(stored.book, cut)
        at: datetime = cut.at
        event = CloudEvent(
            id=cut.batch_id, source=SOURCE, type=DISBURSEMENT_EVENT_TYPE,
            subject=f"{stored.book}/{cut.batch_id}", time=at, traceparent=stored.traceparent,
            tracestate=stored.tracestate,
        )
        out.append(Outgoing(body=body, key=body.key(), event=event, book=stored.book))
    return out


class OrderRelay:
    def __init__(self, orders: BookTopics, tracer: trace.Tracer, keys: PartitionKeys) -> None:
        self.orders = orders
        self.tracer = tracer
        self.keys = keys

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        outgoing = [m for _, stored in batch for m in order_messages(stored, self.keys)]
        await self.orders.publish(self.tracer, outgoing)


class DisbursementRelay:
    def __init__(self, disbursements: BookTopics, tracer: trace.Tracer) -> None:
        self.disbursements = disbursements
        self.tracer = tracer

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        outgoing = [m for _, stored in batch for m in disbursement_messages(stored)]
        await self.disbursements.publish(self.tracer, outgoing)
