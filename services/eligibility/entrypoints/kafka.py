"""Eligibility on Kafka: consumes the facts topic (group `eligibility`), publishes decisions."""

from __future__ import annotations

from typing import Protocol

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.middlewares import AckPolicy

from contracts.decisions import DecisionV1
from contracts.kafka import make_broker, strict_decoder
from contracts.messages import FactMessageV1
from contracts.settings import Settings
from contracts.topics import DECISIONS, FACTS

GROUP = "eligibility"


class FactHandler(Protocol):
    async def on_fact(self, body: FactMessageV1, msg: KafkaMessage) -> None: ...


def build_broker(settings: Settings, handler: FactHandler | None) -> tuple[KafkaBroker, DefaultPublisher]:
    """The broker with its subscriber and publisher; `handler` None only to generate the AsyncAPI."""
    broker = make_broker(settings, "eligibility")
    publisher = broker.publisher(
        DECISIONS.name, title=DECISIONS.name, schema=DecisionV1,
        description=f"{DECISIONS.purpose}. Key: <book>/<beneficiary, else subject>. CloudEvents binary "
                    "mode (type flexledger.eligibility.decision.v1, ce_id = decision_id) with traceparent.",
    )

    # ACK: the offset is committed after the handler returns, and it returns only once the effect is
    # committed in PostgreSQL (never ACK_FIRST). New groups start from the earliest fact.
    @broker.subscriber(
        FACTS.name, group_id=GROUP, ack_policy=AckPolicy.ACK, auto_offset_reset="earliest",
        decoder=strict_decoder(FactMessageV1),
        title=f"{FACTS.name}:{GROUP}",
        description="Every fact intake recorded, accepted or rejected; processed once per (book, seq).",
    )
    async def on_fact(body: FactMessageV1, msg: KafkaMessage) -> None:
        assert handler is not None
        await handler.on_fact(body, msg)

    return broker, publisher
