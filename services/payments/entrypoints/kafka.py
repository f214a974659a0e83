"""Payments on Kafka: consumes decisions (group `payments`) and settlements (group
`payments-settlements`), publishes orders and disbursement instructions (from the outbox). Each topic
has a sandbox twin (contracts.topics.topic_for): production books' messages on the `flexledger.` topic,
every other book's on `sandbox.` + its name; payments reads and writes both.

A decision's path: the batch subscriber below hands the batch to `KafkaConsumers.on_decisions`, which
records it through the application (`PaymentsApplication.record_decisions`: one transaction, with the
Kafka position), then wakes the relays — `OrderRelay` (services/payments/adapters/relay.py) publishes
the order from the notification log — and the batching loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.middlewares import AckPolicy
from opentelemetry import trace
from pydantic import BaseModel

from contracts.decisions import MONEY_KINDS, DecisionV1
from contracts.messages import DisbursementInstructionV1, OrderEventV1, PaymentOrderV1, SettlementV1
from contracts.topics import (
    DECISIONS,
    DISBURSEMENTS,
    ORDER_EVENTS,
    ORDERS,
    PAYMENTS_DEAD_LETTERS,
    SANDBOX_DECISIONS,
    SANDBOX_SETTLEMENTS,
    SETTLEMENTS,
    topic_for,
)
from services.payments.adapters.stores import PaymentsStores
from services.payments.application import DecisionItem, RecordOutcome
from services.runtime.batch_spans import ConsumedBatch, TraceGroup
from services.runtime.consuming import (
    DeadLetters,
    PoisonMessage,
    consuming,
    model_of,
    strict_batch_decoder,
    strict_decoder,
    tagged_record_checker,
)
from services.runtime.dead_letters import Witness, dead_letter_publisher
from services.runtime.eventstore import kafka_tracking
from services.runtime.kafka import make_broker, static_member
from services.runtime.process import until_done
from services.runtime.publishing import BookTopics
from services.runtime.redrive import Taker
from services.runtime.settings import Settings
from services.runtime.telemetry import current_carrier, trace_id_hex

GROUP = "payments"
SETTLEMENTS_GROUP = "payments-settlements"

# Decisions are consumed in batches (at most this many records, across the partitions held): one
# transaction and one wake-up of the relays per batch. A batch is whatever is already fetched, so a lone
# decision is not held back waiting for others.
BATCH_MAX_RECORDS = 500


class PaymentsBroker(NamedTuple):
    broker: KafkaBroker
    orders: BookTopics
    disbursements: BookTopics
    order_events: BookTopics
    dead_letters: DefaultPublisher


def build_broker(
    settings: Settings, handler: KafkaConsumers | None, decisions_mac_key: bytes,
    dead_letters: Callable[[str], DeadLetters] | None = None,
) -> PaymentsBroker:
    """The broker with its subscribers and publishers; `handler` and `dead_letters` (a consumer group's
    dead letters) None only to generate the AsyncAPI. Only decisions tagged under `decisions_mac_key`
    are believed: eligibility's (services.runtime.message_auth)."""
    broker = make_broker(settings, "payments")
    production_books = settings.production_book_set
    orders = BookTopics.declare(
        broker, ORDERS, production_books, schema=PaymentOrderV1,
        description=f"{ORDERS.purpose}. Key: <book>/<keyed pseudonym of the beneficiary>. CloudEvents "
                    "binary mode (type flexledger.payments.order.v1, ce_id = order_id) with traceparent.",
    )
    order_events = BookTopics.declare(
        broker, ORDER_EVENTS, production_books, schema=OrderEventV1,
        description=f"{ORDER_EVENTS.purpose}. Key: <book>/<keyed pseudonym of the beneficiary>. "
                    "CloudEvents binary mode (type flexledger.payments.order-event.v1, ce_id = event_id) "
                    "with traceparent.",
    )
    disbursements = BookTopics.declare(
        broker, DISBURSEMENTS, production_books, schema=DisbursementInstructionV1,
        description=f"{DISBURSEMENTS.purpose}: one message per batch cut by the batching policy. Key: the "
                    "batch id. CloudEvents binary mode (type flexledger.payments.disbursement.v1, ce_id = "
                    "batch_id) with traceparent. Entries carry beneficiaries in clear (Finance pays them).",
    )

    # A message that is not the topic's model is kept as a dead letter with the reason, then committed
    # past (services.runtime.consuming.DeadLetters).
    decision_poison = dead_letters(GROUP) if dead_letters is not None else None
    settlement_poison = dead_letters(SETTLEMENTS_GROUP) if dead_letters is not None else None

    # ACK after the handler, which returns only once the effect is committed (never ACK_FIRST).
    @broker.subscriber(
        DECISIONS.name, SANDBOX_DECISIONS.name, group_id=GROUP,
        group_instance_id=static_member(settings, GROUP),
        ack_policy=AckPolicy.ACK, auto_offset_reset="earliest",
        batch=True, max_records=BATCH_MAX_RECORDS,
        decoder=strict_batch_decoder(DecisionV1, mac_key=decisions_mac_key, dead_letters=decision_poison),
        title=GROUP,  # a channel per topic: payments:<topic>
        description="Every ledger decision; grants become payment orders, clawbacks recoveries, once each. "
                    f"Production books' decisions on {DECISIONS.name}, every other book's on "
                    f"{SANDBOX_DECISIONS.name}.",
    )
    async def on_decisions(bodies: list[DecisionV1 | None], msg: KafkaMessage) -> None:
        assert handler is not None
        records = msg.raw_message
        batch = [(record, body) for record, body in zip(records, bodies, strict=True) if body is not None]
        if batch:  # a batch of poison only: dead-lettered by the decoder, nothing to record
            await handler.on_decisions(batch)

    @broker.subscriber(
        SETTLEMENTS.name, SANDBOX_SETTLEMENTS.name, group_id=SETTLEMENTS_GROUP,
        group_instance_id=static_member(settings, SETTLEMENTS_GROUP),
        ack_policy=AckPolicy.ACK, auto_offset_reset="earliest",
        decoder=settlement_decoder(production_books, settlement_poison),
        title=SETTLEMENTS_GROUP,  # a channel per topic: payments-settlements:<topic>
        description="The bank's confirmations and returns; a returned payment is re-queued with its reason. "
                    "Each entry's result is applied once. Production books' settlements only on "
                    f"{SETTLEMENTS.name} (written by Finance), every other book's only on "
                    f"{SANDBOX_SETTLEMENTS.name} (written by the sandbox bank): one on the other's topic is "
                    "dead-lettered, never applied.",
    )
    async def on_settlement(body: SettlementV1, msg: KafkaMessage) -> None:
        assert handler is not None
        await handler.on_settlement(body, msg)

    return PaymentsBroker(broker, orders, disbursements, order_events,
                          dead_letter_publisher(broker, PAYMENTS_DEAD_LETTERS))


def settlement_decoder(
    production_books: frozenset[str], dead_letters: DeadLetters | None
) -> Callable[[KafkaMessage], Awaitable[Any]]:
    """`strict_decoder` for settlements that also refuses one on the wrong topic for its book. The two
    settlement topics have different writers (Finance; the sandbox bank, `sandbox_finance`), so the topic
    is what says who settled: a sandbox bank must never settle a production book's batch, nor Finance a
    sandbox's (contracts.topics.topic_for)."""
    decode = strict_decoder(SettlementV1, dead_letters=dead_letters)

    async def decode_on_its_topic(msg: KafkaMessage) -> Any:
        body = await decode(msg)
        record = msg.raw_message
        assert not isinstance(record, tuple), "batch consumption is not used"
        reason = settlement_topic_problem(body["book"], record.topic, production_books)
        if reason is not None:
            if dead_letters is not None:
                await dead_letters.keep(record, reason)
            raise PoisonMessage(f"{record.topic}[{record.partition}]@{record.offset}: {reason}")
        return body

    return decode_on_its_topic


def settlement_topic_problem(book: str, topic: str, production_books: frozenset[str]) -> str | None:
    expected = topic_for(SETTLEMENTS, book, production_books).name
    return None if topic == expected else f"a settlement of book {book} belongs on {expected}, not on {topic}"


# Something was recorded: publish it (wake the relays), and it may make a batch due (wake the loop).
Changed = Callable[[], None]
CHANGES = (RecordOutcome.RECORDED, RecordOutcome.REFUSED)  # the outcomes that recorded events


class KafkaConsumers:
    """What the subscribers call: each message recorded through the application, exactly once (its
    Kafka position commits with its events), retried until committed; then `changed`."""

    def __init__(self, stores: PaymentsStores, tracer: trace.Tracer, changed: Changed) -> None:
        self.stores = stores
        self.tracer = tracer
        self.changed = changed

    async def on_decisions(self, batch: Sequence[tuple[Any, DecisionV1]]) -> None:
        """Consecutive decisions, as (Kafka record, decision) pairs: recorded in one transaction, then
        the rest woken once. Each decision gets a CONSUMER span of its own, child of its producer's, so
        its trace continues; each money decision's trace gets the commit's span (the commit-span rule:
        services.runtime.batch_spans)."""
        app = self.stores.app
        spans = ConsumedBatch(self.tracer, GROUP)
        items: list[DecisionItem] = []
        groups: list[TraceGroup] = []  # one per decision
        stored: list[TraceGroup] = []  # those of money decisions: only those are stored, with their trace
        for record, body in batch:
            group = spans.own_group(record)
            group.span.set_attributes({"flexledger.book": body.book, "flexledger.kind": body.kind,
                                       "flexledger.decision_id": body.decision_id})
            position = kafka_tracking(record.topic, record.partition, record.offset)
            money = body.kind in MONEY_KINDS
            items.append(DecisionItem(body, position, recorded_at(body, record),
                                      group.trace_id if money else None, group.carrier if money else {}))
            groups.append(group)
            if money:
                stored.append(group)
        try:
            with spans.child_spans(f"{app.name} db commit", {
                "db.system": "postgresql", "db.namespace": app.name, "flexledger.batch": len(items),
            }, stored):
                outcomes = await until_done(
                    f"recording {len(items)} decisions from {items[0].decision.decision_id}",
                    lambda: asyncio.to_thread(app.record_decisions, items),
                )
            for group, outcome in zip(groups, outcomes, strict=True):
                group.span.set_attribute("flexledger.result", outcome.value)
        finally:
            spans.end()
        if any(outcome in CHANGES for outcome in outcomes):
            self.changed()

    async def on_settlement(self, body: SettlementV1, msg: KafkaMessage) -> None:
        """The bank's results for a batch: confirmations and returns, each applied once. One message in
        its own trace: the event store spans the commit."""
        app = self.stores.app
        record = msg.raw_message
        assert not isinstance(record, tuple)
        position = kafka_tracking(record.topic, record.partition, record.offset)
        with consuming(self.tracer, msg, SETTLEMENTS_GROUP) as span:
            span.set_attributes({"flexledger.book": body.book, "flexledger.batch_id": body.batch_id,
                                 "flexledger.results": len(body.results)})
            trace_id, carrier = trace_id_hex(span), current_carrier()
            outcome = await until_done(
                f"recording settlement {body.settlement_id}",
                lambda: asyncio.to_thread(app.record_settlement, body, position, trace_id, carrier),
            )
            span.set_attribute("flexledger.result", outcome.value)
        if outcome in CHANGES:
            self.changed()


def decision_taker(stores: PaymentsStores, decisions_mac_key: bytes) -> Taker:
    """How the decisions subscriber's dead letters are re-driven (services.runtime.redrive): its
    decoder's checks (tagged by eligibility, a DecisionV1), then `PaymentsApplication.redrive_decision`,
    in the re-drive request's trace."""

    def take(decision: Any, record: Any, witness: Witness) -> None:
        assert isinstance(decision, DecisionV1)
        at = recorded_at(decision, record)
        stores.app.redrive_decision(decision, at, trace_id_hex(), current_carrier(), witness)

    return Taker(tagged_record_checker(DecisionV1, decisions_mac_key), take)


def settlement_taker(stores: PaymentsStores, production_books: frozenset[str]) -> Taker:
    """How the settlements subscriber's dead letters are re-driven: its decoder's checks (a SettlementV1,
    on its book's topic), then `PaymentsApplication.record_settlement` with the re-drive's witness
    instead of a Kafka position; each entry's result is still applied once."""

    def check(record: Any) -> BaseModel | str:
        body = model_of(SettlementV1, record.value)
        if isinstance(body, SettlementV1):
            return settlement_topic_problem(body.book, record.topic, production_books) or body
        return body

    def take(settlement: Any, record: Any, witness: Witness) -> None:
        assert isinstance(settlement, SettlementV1)
        stores.app.record_settlement(settlement, None, trace_id_hex(), current_carrier(), witness=witness)

    return Taker(check, take)


def recorded_at(body: DecisionV1, record: Any) -> datetime:
    """When eligibility recorded the decision: the message's field, else its ce_time, else the Kafka
    record's timestamp (decisions published before the field existed). `record`: aiokafka's."""
    if body.recorded_at is not None:
        return body.recorded_at
    raw = dict(record.headers or ()).get("ce_time")
    if isinstance(raw, bytes):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(raw.decode("utf-8", "replace").replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                return moment
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)
