"""Intake on Kafka: publishes the facts topic and the dead-letter topic from its outbox (see
adapters/relay.py), and consumes the agency feed (flexledger.intake.agency-facts.v1).

An agency message is one fact as JSON (the same bytes a `POST /v1/facts` body holds), with headers:
`flexledger-agency` (required: `hr_bureau`, `social_insurance_agency`, `talent_office` or
`park_authority`) and `flexledger-book` (optional, default `main`). See docs/design/intake-auth.md.
"""

from __future__ import annotations

from typing import Protocol

from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.publisher.usecase import DefaultPublisher
from faststream.middlewares import AckPolicy

from contracts.messages import BOOK_KAFKA_HEADER, FactMessageV1, IntakeDeadLetterV1
from contracts.topics import AGENCY_FACTS, DEAD_LETTERS, FACTS
from services.runtime.kafka import make_broker, static_member
from services.runtime.settings import Settings

GROUP = "intake"
AGENCY_HEADER = "flexledger-agency"


class AgencyHandler(Protocol):
    async def on_agency_fact(self, msg: KafkaMessage) -> None: ...


async def _raw_body(msg: KafkaMessage) -> bytes:
    """No decoding here: the handler reads the bytes itself (parse_json_body), so that no message can
    fail before it and be committed without its dead letter."""
    return bytes(msg.body or b"")


def build_broker(
    settings: Settings, handler: AgencyHandler | None = None,
) -> tuple[KafkaBroker, DefaultPublisher, DefaultPublisher]:
    """The broker with the facts and dead-letter publishers, and (with `handler`) the agency-feed
    subscriber; `handler` None only to generate the AsyncAPI document."""
    broker = make_broker(settings, "intake")
    publisher = broker.publisher(
        FACTS.name, title=FACTS.name, schema=FactMessageV1,
        description=f"{FACTS.purpose}. Key: <book>/<worker, else enterprise or park>. CloudEvents "
                    "binary mode (ce_* headers, type flexledger.intake.fact.v1) with W3C traceparent.",
    )
    dead_letters = broker.publisher(
        DEAD_LETTERS.name, title=DEAD_LETTERS.name, schema=IntakeDeadLetterV1,
        description=f"{DEAD_LETTERS.purpose}. Key: <source topic>/<partition>/<offset>. CloudEvents binary "
                    "mode (type flexledger.intake.dead-letter.v1, ce_id = dead_letter_id). Published from "
                    "intake's outbox, at least once; dead_letter_id identifies repeats.",
    )

    # ACK: committed after the handler returns, and it returns only once the message's effect (a
    # recorded fact, or a dead letter) is committed in PostgreSQL together with its position.
    @broker.subscriber(
        AGENCY_FACTS.name, group_id=GROUP, group_instance_id=static_member(settings, GROUP),
        ack_policy=AckPolicy.ACK, auto_offset_reset="earliest", decoder=_raw_body,
        title=f"{AGENCY_FACTS.name}:{GROUP}",
        description="One fact per message, as JSON (a scenarios/FORMAT.md fact), with the headers "
                    f"{AGENCY_HEADER} (hr_bureau | social_insurance_agency | talent_office | "
                    f"park_authority) and optionally {BOOK_KAFKA_HEADER} (default main). "
                    "Validated and recorded exactly like POST /v1/facts; what is not taken in goes to the "
                    "dead-letter topic.",
    )
    async def on_agency_fact(body: bytes, msg: KafkaMessage) -> None:
        assert handler is not None
        await handler.on_agency_fact(msg)

    return broker, publisher, dead_letters
