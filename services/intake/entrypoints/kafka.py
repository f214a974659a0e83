"""Intake on Kafka: publishes the facts topic (production books; sandbox books on its `sandbox.` twin)
and the dead-letter topic from its outbox (see adapters/relay.py), and consumes the agencies' feeds
(`flexledger.intake.agency-facts.v1.<agency>`, one per agency, writable only by that agency's principal)
with `AgencyFeed`.

An agency message is one fact as JSON (the same bytes a `POST /v1/facts` body holds), with the
optional header `flexledger-book` (default `main`). The feed names the agency. See
docs/design/intake-auth.md and docs/design/kafka-trust.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.middlewares import AckPolicy
from opentelemetry import trace

from contracts.identifiers import mask_identifiers
from contracts.messages import BOOK_KAFKA_HEADER, FactMessageV1
from contracts.topics import AGENCY_FEED_PREFIX, AGENCY_FEEDS, DEAD_LETTERS, FACTS
from services.intake.adapters import metrics
from services.intake.adapters.store import IntakeStore
from services.intake.aggregates import AGENCY_FEED_GROUP
from services.intake.application import Source
from services.intake.domain.feed import AgencyFact, NotTaken, read_agency_message
from services.intake.domain.limits import Limits
from services.runtime.consuming import consuming
from services.runtime.dead_letters import KeptRecord, Witness, dead_letter_publisher
from services.runtime.kafka import make_broker, static_member
from services.runtime.process import until_done
from services.runtime.publishing import BookTopics
from services.runtime.redrive import Taker
from services.runtime.settings import Settings
from services.runtime.telemetry import current_carrier

log = logging.getLogger(__name__)
GROUP = AGENCY_FEED_GROUP


class AgencyFeed:
    """Takes in agency messages: each one becomes a recorded fact or a dead letter, with its position,
    in one transaction (`IntakeApplication.take_in_agency_message`), under the books' writer lock."""

    def __init__(
        self, store: IntakeStore, books_lock: asyncio.Lock, limits: Limits, tracer: trace.Tracer,
        on_recorded: Callable[[], None],
    ) -> None:
        self.store = store
        self.books_lock = books_lock
        self.limits = limits
        self.tracer = tracer
        self.on_recorded = on_recorded  # wakes the outbox relay

    async def on_agency_fact(self, msg: KafkaMessage) -> None:
        """One agency message, retried until committed, so the handler never raises."""
        record = msg.raw_message
        assert not isinstance(record, tuple), "batch consumption is not used"
        body = bytes(record.value or b"")
        headers = list(record.headers or ())
        with consuming(self.tracer, msg, GROUP) as span:
            agency = record.topic.removeprefix(AGENCY_FEED_PREFIX)  # the broker's ACLs vouch for it
            try:
                message = read_agency_message(agency, headers, body, self.limits, datetime.now(UTC))
            except Exception:  # a bug must not lose the message: keep it with the reason
                log.exception("reading an agency message failed")
                message = NotTaken(500, "intake could not read this message (internal error); "
                                        "the operators have its log")
            source = Source(record.topic, record.partition, record.offset, body, agency, tuple(headers))
            carrier = current_carrier()
            span.set_attribute("flexledger.agency", source.agency or "-")

            async def attempt() -> str:
                app = self.store.app
                async with self.books_lock:
                    return await asyncio.to_thread(app.take_in_agency_message, source, message, carrier)

            where = f"{record.topic}[{record.partition}]@{record.offset}"
            outcome = await until_done(f"taking in {where}", attempt)
            span.set_attribute("flexledger.result", outcome)
        metrics.count_agency_message(record.topic, outcome)
        if outcome not in ("redelivered", "duplicate"):
            self.on_recorded()


class NotWriting(Exception):
    """This intake is not the books' writer now (a standby, or re-reading the books)."""


def agency_taker(store: IntakeStore, limits: Limits, writing: Callable[[], bool]) -> Taker[AgencyFact]:
    """How the agency feed's dead letters are re-driven (services.runtime.redrive): the consumer's own
    reading (`read_agency_message`, at the re-drive's time), then `IntakeApplication.redrive_agency_message`
    in the re-drive request's trace. The re-drive holds the books' writer lock (bootstrap.py)."""

    def check(record: KeptRecord) -> AgencyFact | str:
        agency = record.topic.removeprefix(AGENCY_FEED_PREFIX)
        message = read_agency_message(agency, record.headers, record.value, limits, datetime.now(UTC))
        return mask_identifiers(message.reason) if isinstance(message, NotTaken) else message

    def take(message: AgencyFact, record: KeptRecord, witness: Witness) -> None:
        if not writing():
            raise NotWriting("intake is not the books' writer now: nothing re-driven")
        store.app.redrive_agency_message(message, current_carrier(), witness)

    return Taker(check, take)


async def _raw_body(msg: KafkaMessage) -> bytes:
    """No decoding here: the handler reads the bytes itself (parse_json_body), so that no message can
    fail before it and be committed without its dead letter."""
    return bytes(msg.body or b"")


def build_broker(settings: Settings) -> tuple[KafkaBroker, BookTopics, DefaultPublisher]:
    """The broker with the facts publishers (production and sandbox books) and the dead-letter
    publisher (the outbox relay publishes with them)."""
    broker = make_broker(settings, "intake")
    facts = BookTopics.declare(
        broker, FACTS, settings.production_book_set, schema=FactMessageV1,
        description=f"{FACTS.purpose}. Key: <book>/<keyed pseudonym of the worker, else enterprise or "
                    "park>. CloudEvents binary mode (ce_* headers, type flexledger.intake.fact.v1) with W3C "
                    "traceparent, and a flexledger_mac tag (bound to the topic) that eligibility checks.",
    )
    return broker, facts, dead_letter_publisher(broker, DEAD_LETTERS)


def subscribe_agency_feed(broker: KafkaBroker, settings: Settings, feed: AgencyFeed | None) -> None:
    """The agency feed's subscriber, handled by `feed` (None only to describe it in the AsyncAPI document)."""

    # ACK: committed after the handler returns, and it returns only once the message's effect (a
    # recorded fact, or a dead letter) is committed in PostgreSQL together with its position.
    @broker.subscriber(
        *(feed.name for feed in AGENCY_FEEDS), group_id=GROUP,
        group_instance_id=static_member(settings, GROUP),
        ack_policy=AckPolicy.ACK, auto_offset_reset="earliest", decoder=_raw_body,
        title=f"{AGENCY_FEED_PREFIX}<agency>:{GROUP}",
        description="One fact per message, as JSON (a scenarios/FORMAT.md fact), on the feed of the agency "
                    "that sends it (only that agency's principal may write it: the feed names the agency), "
                    f"optionally with the header {BOOK_KAFKA_HEADER} (default main). Validated and recorded "
                    "exactly like POST /v1/facts; what is not taken in goes to the dead-letter topic.",
    )
    async def on_agency_fact(body: bytes, msg: KafkaMessage) -> None:
        assert feed is not None
        await feed.on_agency_fact(msg)


def documented_broker(settings: Settings) -> KafkaBroker:
    """Intake's broker as the AsyncAPI document describes it: publishers and subscriber, handling nothing."""
    broker = build_broker(settings)[0]
    subscribe_agency_feed(broker, settings, None)
    return broker
