"""Payments on Kafka: consumes decisions (group `payments`) and settlements (group
`payments-settlements`), publishes orders and disbursement instructions (from the outbox)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.middlewares import AckPolicy

from contracts.decisions import DecisionV1
from contracts.messages import DisbursementInstructionV1, PaymentOrderV1, SettlementV1
from contracts.topics import DECISIONS, DISBURSEMENTS, ORDERS, PAYMENTS_DEAD_LETTERS, SETTLEMENTS
from services.runtime.kafka import (
    DeadLetters,
    make_broker,
    static_member,
    strict_batch_decoder,
    strict_decoder,
)
from services.runtime.settings import Settings

GROUP = "payments"
SETTLEMENTS_GROUP = "payments-settlements"

# Decisions are consumed in batches (at most this many records, across the partitions held): one
# transaction and one wake-up of the relays per batch. A batch is whatever is already fetched, so a lone
# decision is not held back waiting for others.
BATCH_MAX_RECORDS = 500


class MessageHandler(Protocol):
    async def on_decisions(self, batch: Sequence[tuple[Any, DecisionV1]]) -> None: ...

    async def on_settlement(self, body: SettlementV1, msg: KafkaMessage) -> None: ...


class PaymentsBroker(NamedTuple):
    broker: KafkaBroker
    orders: DefaultPublisher
    disbursements: DefaultPublisher


def build_broker(settings: Settings, handler: MessageHandler | None) -> PaymentsBroker:
    """The broker with its subscribers and publishers; `handler` None only to generate the AsyncAPI."""
    broker = make_broker(settings, "payments")
    orders = broker.publisher(
        ORDERS.name, title=ORDERS.name, schema=PaymentOrderV1,
        description=f"{ORDERS.purpose}. Key: <book>/<beneficiary>. CloudEvents binary mode "
                    "(type flexledger.payments.order.v1, ce_id = order_id) with traceparent.",
    )
    disbursements = broker.publisher(
        DISBURSEMENTS.name, title=DISBURSEMENTS.name, schema=DisbursementInstructionV1,
        description=f"{DISBURSEMENTS.purpose}: one message per batch cut by the batching policy. Key: the "
                    "batch id. CloudEvents binary mode (type flexledger.payments.disbursement.v1, ce_id = "
                    "batch_id) with traceparent. Entries carry beneficiaries in clear (Finance pays them).",
    )

    # A message that is not the topic's model goes to the dead-letter topic with the reason, then is
    # committed past (services.runtime.kafka.DeadLetters).
    dead_letters = DeadLetters(broker, PAYMENTS_DEAD_LETTERS.name, GROUP)
    settlement_dead_letters = DeadLetters(broker, PAYMENTS_DEAD_LETTERS.name, SETTLEMENTS_GROUP)

    # ACK after the handler, which returns only once the effect is committed (never ACK_FIRST).
    @broker.subscriber(
        DECISIONS.name, group_id=GROUP, group_instance_id=static_member(settings, GROUP),
        ack_policy=AckPolicy.ACK, auto_offset_reset="earliest",
        batch=True, max_records=BATCH_MAX_RECORDS,
        decoder=strict_batch_decoder(DecisionV1, dead_letters=dead_letters),
        title=f"{DECISIONS.name}:{GROUP}",
        description="Every ledger decision; grants become payment orders, clawbacks recoveries, once each.",
    )
    async def on_decisions(bodies: list[DecisionV1 | None], msg: KafkaMessage) -> None:
        assert handler is not None
        records = msg.raw_message
        batch = [(record, body) for record, body in zip(records, bodies, strict=True) if body is not None]
        if batch:  # a batch of poison only: dead-lettered by the decoder, nothing to record
            await handler.on_decisions(batch)

    @broker.subscriber(
        SETTLEMENTS.name, group_id=SETTLEMENTS_GROUP,
        group_instance_id=static_member(settings, SETTLEMENTS_GROUP),
        ack_policy=AckPolicy.ACK, auto_offset_reset="earliest",
        decoder=strict_decoder(SettlementV1, dead_letters=settlement_dead_letters),
        title=f"{SETTLEMENTS.name}:{SETTLEMENTS_GROUP}",
        description="The bank's confirmations and returns; a returned payment is re-queued with its reason. "
                    "Each entry's result is applied once.",
    )
    async def on_settlement(body: SettlementV1, msg: KafkaMessage) -> None:
        assert handler is not None
        await handler.on_settlement(body, msg)

    return PaymentsBroker(broker, orders, disbursements)
