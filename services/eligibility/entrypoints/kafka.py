"""Eligibility on Kafka: consumes the facts topic and its sandbox twin (group `eligibility`), decides on
each batch of facts and records it (`FactsHandler`), publishes decisions (from the log, by the decision
relay: production books on the decisions topic, sandbox books on its twin)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.middlewares import AckPolicy
from opentelemetry import trace

from contracts.decisions import DecisionV1
from contracts.messages import FactMessageV1
from contracts.topics import DECISIONS, ELIGIBILITY_DEAD_LETTERS, FACTS, SANDBOX_FACTS
from services.eligibility.adapters import metrics
from services.eligibility.adapters.store import Store
from services.eligibility.application import BatchItem, FactOutcome
from services.runtime.batch_spans import ConsumedBatch
from services.runtime.consuming import DeadLetters, strict_batch_decoder, tagged_record_checker
from services.runtime.dead_letters import dead_letter_publisher
from services.runtime.eventstore import kafka_tracking
from services.runtime.kafka import make_broker, static_member
from services.runtime.process import until_done
from services.runtime.publishing import BookTopics
from services.runtime.redrive import Taker, Witness
from services.runtime.settings import Settings
from services.runtime.telemetry import current_carrier, trace_id_hex

GROUP = "eligibility"


# Facts are consumed in batches (at most this many records, across the partitions held): one
# transaction and one wake-up of the relays per batch. A batch is whatever is already fetched, so a
# lone fact is not held back waiting for others.
BATCH_MAX_RECORDS = 500


def build_broker(settings: Settings) -> tuple[KafkaBroker, BookTopics, DefaultPublisher]:
    """The broker with its publishers of decisions (production and sandbox books) and of dead letters
    (the decision relay and the dead-letter relay publish through them)."""
    broker = make_broker(settings, "eligibility")
    decisions = BookTopics.declare(
        broker, DECISIONS, settings.production_book_set, schema=DecisionV1,
        description=f"{DECISIONS.purpose}. Key: <book>/<keyed pseudonym of the beneficiary, else subject>. "
                    "CloudEvents binary mode (type flexledger.eligibility.decision.v1, ce_id = decision_id) "
                    "with traceparent, and a flexledger_mac tag (bound to the topic) that payments checks.",
    )
    return broker, decisions, dead_letter_publisher(broker, ELIGIBILITY_DEAD_LETTERS)


def consume_facts(
    broker: KafkaBroker, settings: Settings, handler: FactsHandler | None, mac_key: bytes,
    dead_letters: Callable[[str], DeadLetters] | None = None,
) -> None:
    """The subscriber of the facts topic and its sandbox twin, in one group; `handler` and
    `dead_letters` None only to generate the AsyncAPI. Only facts tagged under `mac_key` for the topic
    they were read from are believed: intake's (services.runtime.message_auth)."""
    # A message that is not the topic's model, or not tagged by intake, is kept as a dead letter with
    # the reason, then committed past (services.runtime.consuming.DeadLetters).
    poison = dead_letters(GROUP) if dead_letters is not None else None

    # ACK: the offset is committed after the handler returns, and it returns only once the effect is
    # committed in PostgreSQL (never ACK_FIRST). New groups start from the earliest fact.
    @broker.subscriber(
        FACTS.name, SANDBOX_FACTS.name, group_id=GROUP, group_instance_id=static_member(settings, GROUP),
        ack_policy=AckPolicy.ACK, auto_offset_reset="earliest",
        batch=True, max_records=BATCH_MAX_RECORDS,
        decoder=strict_batch_decoder(FactMessageV1, mac_key=mac_key, dead_letters=poison),
        title=GROUP,  # a channel per topic: eligibility:<topic>
        description="Every fact intake recorded, accepted or rejected; processed once per (book, seq), "
                    "in batches of consecutive messages (each message is one FactMessageV1). Production "
                    f"books' facts on {FACTS.name}, every other book's on {SANDBOX_FACTS.name}.",
    )
    async def on_facts(bodies: list[FactMessageV1 | None], msg: KafkaMessage) -> None:
        assert handler is not None
        records = msg.raw_message
        batch = [(record, body) for record, body in zip(records, bodies, strict=True) if body is not None]
        if batch:  # a batch of poison only: dead-lettered by the decoder, nothing to record
            await handler.handle(batch)


class FactsHandler:
    """What eligibility does with a batch of facts from intake: decide on them and record them in one
    transaction (`EligibilityApplication.process_batch`), then wake the followers, which publish the
    decisions and fold them into the read side."""

    def __init__(self, store: Store, tracer: trace.Tracer, wake_followers: Callable[[], None]) -> None:
        self.store = store
        self.tracer = tracer
        self.wake_followers = wake_followers

    async def handle(self, batch: Sequence[tuple[Any, FactMessageV1]]) -> None:
        """`batch`: consecutive (Kafka record, fact) pairs. Retried until committed: the subscriber's
        offsets are committed when this returns. Each trace the facts came in gets its CONSUMER span and
        its `eligibility db commit` span (services.runtime.batch_spans)."""
        app = self.store.app
        spans = ConsumedBatch(self.tracer, GROUP)
        items: list[BatchItem] = []
        for record, body in batch:
            group = spans.group_of(record)
            position = kafka_tracking(record.topic, record.partition, record.offset)
            items.append((body, position, group.trace_id, group.carrier))
        try:
            with spans.child_spans(f"{app.name} db commit", {
                "db.system": "postgresql", "db.namespace": app.name, "flexledger.batch": len(items),
            }):
                results = await until_done(
                    f"processing {len(items)} facts from {batch[0][1].book}/{batch[0][1].seq}",
                    lambda: asyncio.to_thread(app.process_batch, items),
                )
        finally:
            spans.end()
        metrics.count_batch([record for record, _ in batch], results)
        if any(outcome is FactOutcome.PROCESSED for outcome, _ in results):
            self.wake_followers()


def fact_taker(store: Store, mac_key: bytes) -> Taker:
    """How the subscriber's dead-lettered facts are re-driven (services.runtime.redrive): its decoder's
    checks (tagged by intake, a FactMessageV1), then `EligibilityApplication.redrive_fact`, in the
    re-drive request's trace."""

    def take(message: Any, record: Any, witness: Witness) -> None:
        assert isinstance(message, FactMessageV1)
        store.app.redrive_fact(message, trace_id_hex(), current_carrier(), witness)

    return Taker(tagged_record_checker(FactMessageV1, mac_key), take)
