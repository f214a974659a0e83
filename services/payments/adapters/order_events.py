"""Outbox relay of every payment order's changes: `flexledger.payments.order-events.v1`.

Each domain event that changes an order becomes one `OrderEventV1` (an event of a batch cut, one per
entry), keyed like the orders topic by `<book>/<keyed pseudonym of the beneficiary>`, so one order's
changes stay in the order payments recorded them. The ce_id is the record's position in payments'
notification log and the event's index in it: stable when the relay publishes again after a crash
(at least once), so subscribers de-duplicate by it. A subscriber that folds the changes of an order
gets exactly the order payments holds (tests/integration/test_order_events.py compares the two).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from opentelemetry import trace

from contracts.cloudevents import CloudEvent
from contracts.messages import NO_SUBJECT, OrderEventV1
from services.payments.aggregates import PaymentsBookStream
from services.payments.codec import decode
from services.payments.domain import events as e
from services.runtime.outbox import Batch, Connection
from services.runtime.publishing import BookTopics, Outgoing, PartitionKeys

ORDER_EVENT_TYPE = "flexledger.payments.order-event.v1"
SOURCE = "/flexledger/payments"


def _changes(event: e.PaymentsEvent, beneficiaries: dict[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(beneficiary, fields of an OrderEventV1) for each order `event` changes."""
    match event:
        case e.OrderCreated(line=line):
            beneficiaries[event.order_id] = line.beneficiary
            yield line.beneficiary, {
                "change": "created", "order_id": event.order_id, "decision_id": event.decision_id,
                "amount_fen": event.amount_fen, "beneficiary": line.beneficiary, "program": line.program,
                "fiscal_year": event.fiscal_year, "subject": line.subject, "ref": line.ref,
                "month": line.month}
        case e.OrderAwaitingBudget():  # recorded with the order's creation, in the same record
            yield beneficiaries.get(event.order_id, NO_SUBJECT), {
                "change": "awaiting_budget", "order_id": event.order_id, "amount_fen": event.amount_fen,
                "reason": event.reason}
        case e.OrderCommitted():
            yield event.beneficiary, {"change": "committed", "order_id": event.order_id,
                                      "amount_fen": event.amount_fen}
        case e.OrderCancelled():
            yield event.beneficiary, {"change": "cancelled", "order_id": event.order_id,
                                      "amount_fen": event.amount_fen, "decision_id": event.decision_id}
        case e.ReceivableOffset():
            yield event.beneficiary, {"change": "offset", "order_id": event.order_id,
                                      "amount_fen": event.amount_fen, "claim_id": event.claim_id}
        case e.BatchCut():
            for entry in event.entries:
                yield entry.beneficiary, {
                    "change": "batched", "order_id": entry.order_id, "amount_fen": entry.amount_fen,
                    "batch_id": event.batch_id, "entry_id": entry.entry_id, "attempt": entry.attempt}
        case e.PaymentConfirmed():
            yield event.beneficiary, {"change": "paid", "order_id": event.order_id,
                                      "amount_fen": event.amount_fen, "entry_id": event.entry_id,
                                      "confirmation": event.confirmation}
        case e.PaymentReturned():
            yield event.beneficiary, {"change": "returned", "order_id": event.order_id,
                                      "amount_fen": event.amount_fen, "entry_id": event.entry_id,
                                      "reason": event.reason}


def order_event_messages(position: int, stored: Any, keys: PartitionKeys) -> list[Outgoing]:
    """The order-events messages of the record at `position` of the log (none for other records)."""
    if not isinstance(stored, PaymentsBookStream.Recorded):
        return []
    out: list[Outgoing] = []
    beneficiaries: dict[str, str] = {}
    for data in stored.events:
        event = decode(data)
        at: datetime = event.at
        for beneficiary, fields in _changes(event, beneficiaries):
            event_id = f"{stored.book}/{position}/{len(out)}"
            body = OrderEventV1(book=stored.book, event_id=event_id, at=at, trace_id=stored.trace_id,
                                **fields)
            cloud_event = CloudEvent(
                id=event_id, source=SOURCE, type=ORDER_EVENT_TYPE, subject=f"{stored.book}/{body.order_id}",
                time=at, traceparent=stored.traceparent, tracestate=stored.tracestate,
            )
            out.append(Outgoing(body=body, key=keys(stored.book, beneficiary), event=cloud_event,
                                book=stored.book))
    return out


class OrderEventRelay:
    def __init__(self, order_events: BookTopics, tracer: trace.Tracer, keys: PartitionKeys) -> None:
        self.order_events = order_events
        self.tracer = tracer
        self.keys = keys

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        outgoing = [message for position, stored in batch
                    for message in order_event_messages(position, stored, self.keys)]
        await self.order_events.publish(self.tracer, outgoing)
