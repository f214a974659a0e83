"""Payments on Kafka: consumes decisions (group `payments`), publishes orders."""

from __future__ import annotations

from typing import Protocol

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.middlewares import AckPolicy

from contracts.decisions import DecisionV1
from contracts.kafka import make_broker, strict_decoder
from contracts.messages import PaymentOrderV1
from contracts.settings import Settings
from contracts.topics import DECISIONS, ORDERS

GROUP = "payments"


class DecisionHandler(Protocol):
    async def on_decision(self, body: DecisionV1, msg: KafkaMessage) -> None: ...


def build_broker(settings: Settings, handler: DecisionHandler | None) -> tuple[KafkaBroker, DefaultPublisher]:
    """The broker with its subscriber and publisher; `handler` None only to generate the AsyncAPI."""
    broker = make_broker(settings, "payments")
    publisher = broker.publisher(
        ORDERS.name, title=ORDERS.name, schema=PaymentOrderV1,
        description=f"{ORDERS.purpose}. Key: <book>/<beneficiary>. CloudEvents binary mode "
                    "(type flexledger.payments.order.v1, ce_id = order_id) with traceparent.",
    )

    # ACK after the handler, which returns only once the effect is committed (never ACK_FIRST).
    @broker.subscriber(
        DECISIONS.name, group_id=GROUP, ack_policy=AckPolicy.ACK, auto_offset_reset="earliest",
        decoder=strict_decoder(DecisionV1),
        title=f"{DECISIONS.name}:{GROUP}",
        description="Every ledger decision; grants become payment orders, clawbacks recoveries, once each.",
    )
    async def on_decision(body: DecisionV1, msg: KafkaMessage) -> None:
        assert handler is not None
        await handler.on_decision(body, msg)

    return broker, publisher
