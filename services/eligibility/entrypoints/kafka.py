"""Eligibility on Kafka: consumes the facts topic (group `eligibility`), publishes decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.middlewares import AckPolicy

from contracts.decisions import DecisionV1
from contracts.messages import FactMessageV1
from contracts.topics import DECISIONS, ELIGIBILITY_DEAD_LETTERS, FACTS
from services.runtime.kafka import DeadLetters, make_broker, static_member, strict_batch_decoder
from services.runtime.settings import Settings

GROUP = "eligibility"


# Facts are consumed in batches (at most this many records, across the partitions held): one
# transaction and one wake-up of the relays per batch. A batch is whatever is already fetched, so a
# lone fact is not held back waiting for others.
BATCH_MAX_RECORDS = 500


class FactHandler(Protocol):
    async def on_facts(self, batch: Sequence[tuple[Any, FactMessageV1]]) -> None: ...


def build_broker(settings: Settings, handler: FactHandler | None) -> tuple[KafkaBroker, DefaultPublisher]:
    """The broker with its subscriber and publisher; `handler` None only to generate the AsyncAPI."""
    broker = make_broker(settings, "eligibility")
    publisher = broker.publisher(
        DECISIONS.name, title=DECISIONS.name, schema=DecisionV1,
        description=f"{DECISIONS.purpose}. Key: <book>/<beneficiary, else subject>. CloudEvents binary "
                    "mode (type flexledger.eligibility.decision.v1, ce_id = decision_id) with traceparent.",
    )

    # A message that is not the topic's model goes to the dead-letter topic with the reason, then is
    # committed past (services.runtime.kafka.DeadLetters).
    dead_letters = DeadLetters(broker, ELIGIBILITY_DEAD_LETTERS.name, GROUP)

    # ACK: the offset is committed after the handler returns, and it returns only once the effect is
    # committed in PostgreSQL (never ACK_FIRST). New groups start from the earliest fact.
    @broker.subscriber(
        FACTS.name, group_id=GROUP, group_instance_id=static_member(settings, GROUP),
        ack_policy=AckPolicy.ACK, auto_offset_reset="earliest",
        batch=True, max_records=BATCH_MAX_RECORDS,
        decoder=strict_batch_decoder(FactMessageV1, dead_letters=dead_letters),
        title=f"{FACTS.name}:{GROUP}",
        description="Every fact intake recorded, accepted or rejected; processed once per (book, seq), "
                    "in batches of consecutive messages (each message is one FactMessageV1).",
    )
    async def on_facts(bodies: list[FactMessageV1 | None], msg: KafkaMessage) -> None:
        assert handler is not None
        records = msg.raw_message
        batch = [(record, body) for record, body in zip(records, bodies, strict=True) if body is not None]
        if batch:  # a batch of poison only: dead-lettered by the decoder, nothing to record
            await handler.on_facts(batch)

    return broker, publisher
