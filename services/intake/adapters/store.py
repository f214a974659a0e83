"""Intake's PostgreSQL (`services.runtime.store`): the event store (submissions, dead letters, the key
ring, the Kafka positions of the agency feed) and a pool for the relay's position."""

from __future__ import annotations

from opentelemetry import trace

from services.intake.application import IntakeApplication
from services.runtime.settings import Settings
from services.runtime.store import ServiceStore

POOL_CONNECTIONS_MAX = 4  # the relay's steps
IntakeStore = ServiceStore[IntakeApplication]


def intake_store(
    settings: Settings, tracer_provider: trace.TracerProvider | None, *, dead_letter_max_bytes: int
) -> IntakeStore:
    return ServiceStore(
        lambda: IntakeApplication(settings, tracer_provider, dead_letter_max_bytes=dead_letter_max_bytes),
        settings.pg_dsn(), pool_size_max=POOL_CONNECTIONS_MAX,
    )
