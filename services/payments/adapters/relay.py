"""The outbox relay: payment orders and clawbacks, published to the orders topic."""

from __future__ import annotations

from datetime import UTC
from typing import Any, Literal

from faststream.kafka.publisher.usecase import DefaultPublisher
from opentelemetry import trace

from contracts.cloudevents import CloudEvent
from contracts.kafka import Outgoing, publish_batch
from contracts.messages import PaymentOrderV1
from contracts.outbox import Batch, Connection
from services.payments.aggregates import Clawback, PaymentOrder

EVENT_TYPE = "flexledger.payments.order.v1"
SOURCE = "/flexledger/payments"


def to_message(stored: Any) -> Outgoing | None:
    kind: Literal["order_created", "clawback_recorded"]
    if isinstance(stored, PaymentOrder.PaymentOrderCreated):
        kind = "order_created"
    elif isinstance(stored, Clawback.ClawbackRecorded):
        kind = "clawback_recorded"
    else:
        return None
    recorded_at = stored.timestamp.astimezone(UTC)
    body = PaymentOrderV1(
        book=stored.book, order_id=str(stored.originator_id), event=kind, decision_id=stored.decision_id,
        program=stored.program, beneficiary=stored.beneficiary, subject=stored.subject, ref=stored.ref,
        month=stored.month, amount_fen=stored.amount_fen, rule_set=stored.rule_set, trace_id=stored.trace_id,
        recorded_at=recorded_at,
    )
    event = CloudEvent(
        id=body.order_id, source=SOURCE, type=EVENT_TYPE, subject=f"{stored.book}/{body.order_id}",
        time=recorded_at, traceparent=stored.traceparent, tracestate=stored.tracestate,
    )
    return Outgoing(body=body, key=body.key(), event=event)


class OrderRelay:
    def __init__(self, publisher: DefaultPublisher, tracer: trace.Tracer) -> None:
        self.publisher = publisher
        self.tracer = tracer

    async def __call__(self, conn: Connection, batch: Batch) -> None:
        outgoing = [m for _, stored in batch if (m := to_message(stored)) is not None]
        await publish_batch(self.tracer, self.publisher, outgoing)
