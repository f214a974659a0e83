"""Eligibility's PostgreSQL (`services.runtime.store`): the event store (the decision chains, the
checkpoints, the Kafka positions) and a pool for the read side and the followers' positions."""

from __future__ import annotations

from opentelemetry import trace

from services.eligibility.adapters import projection
from services.eligibility.application import EligibilityApplication
from services.runtime.settings import Settings
from services.runtime.store import ServiceStore

# Each of the five followers holds one (its NOTIFY listener); their steps and the HTTP reads share the rest.
POOL_CONNECTIONS_MAX = 7
Store = ServiceStore[EligibilityApplication]


def eligibility_store(settings: Settings, tracer_provider: trace.TracerProvider | None) -> Store:
    return ServiceStore(
        lambda: EligibilityApplication(settings, tracer_provider), settings.pg_dsn(),
        pool_size_max=POOL_CONNECTIONS_MAX, tables=[projection.create_tables],
    )
