"""Intake on Kafka: it only publishes, the facts topic, from its outbox (see adapters/relay.py)."""

from __future__ import annotations

from faststream.kafka import KafkaBroker
from faststream.kafka.publisher.usecase import DefaultPublisher

from contracts.kafka import make_broker
from contracts.messages import FactMessageV1
from contracts.settings import Settings
from contracts.topics import FACTS


def build_broker(settings: Settings) -> tuple[KafkaBroker, DefaultPublisher]:
    broker = make_broker(settings, "intake")
    publisher = broker.publisher(
        FACTS.name, title=FACTS.name, schema=FactMessageV1,
        description=f"{FACTS.purpose}. Key: <book>/<worker, else enterprise or park>. CloudEvents "
                    "binary mode (ce_* headers, type flexledger.intake.fact.v1) with W3C traceparent.",
    )
    return broker, publisher
