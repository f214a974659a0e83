"""Eligibility's composition root: builds its adapters, injects them, returns its runtime.

The path of a fact: the facts subscriber (`entrypoints.kafka.consume_facts`) hands each batch to
`FactsHandler`, which has `EligibilityApplication.process_batch` decide and record it, then wakes the
followers: the decision relay publishes the decisions, the projection folds them into the read side,
the statistics and checkpoint relays publish what outside parties read (docs/design/audit.md). A fact
the subscriber cannot decode is kept as a dead letter in the store and published by the dead-letter
relay (services/runtime/dead_letters.py).
"""

from __future__ import annotations

from typing import Final

from opentelemetry.trace import TracerProvider

from contracts.topics import CHECKPOINTS, DECISIONS, ELIGIBILITY_DEAD_LETTERS, STATISTICS
from services.eligibility.adapters import projection
from services.eligibility.adapters.checkpoints import Checkpointer, CheckpointRelay
from services.eligibility.adapters.employers import Employers
from services.eligibility.adapters.metrics import CHECKPOINT_AGE
from services.eligibility.adapters.relay import DecisionRelay
from services.eligibility.adapters.statistics import StatisticsRelay
from services.eligibility.adapters.store import eligibility_store
from services.eligibility.entrypoints.audit import add_audit_publishers
from services.eligibility.entrypoints.http import create_http
from services.eligibility.entrypoints.kafka import (
    GROUP,
    FactsHandler,
    build_broker,
    consume_facts,
    fact_taker,
)
from services.runtime.access.gate import AccessGate
from services.runtime.consuming import DeadLetters
from services.runtime.dead_letters import DeadLetterRelay
from services.runtime.health import HealthLimits
from services.runtime.keys import decisions_mac_key, facts_mac_key, partition_key_secret, statistics_key
from services.runtime.metrics import serve_metrics
from services.runtime.outbox import Handler, LogFollower, NotificationReader
from services.runtime.publishing import PartitionKeys
from services.runtime.redrive import DeadLetterRedrive
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings
from services.runtime.telemetry import get_tracer

NAME: Final = "eligibility"


def bootstrap(settings: Settings, tracer_provider: TracerProvider | None = None) -> ServiceRuntime:
    tracer = get_tracer(tracer_provider, NAME)
    store = eligibility_store(settings, tracer_provider)  # the application and the pool, opened at start
    broker, decisions_topics, dead_letters_topic = build_broker(settings)
    runtime = ServiceRuntime(NAME, broker, HealthLimits.from_settings(settings))

    def dead_letters(group: str) -> DeadLetters:  # a consumer's poison: kept in the store, then relayed
        return DeadLetters(store, group, runtime.wake_followers)

    facts = FactsHandler(store, tracer, runtime.wake_followers)
    consume_facts(broker, settings, facts, facts_mac_key(settings), dead_letters)  # only facts intake tagged
    audit_topics = add_audit_publishers(broker, settings.production_book_set)  # statistics, checkpoints
    gate = AccessGate(NAME, settings, tracer_provider)  # who may read what (docs/design/http-auth.md)
    redrive = DeadLetterRedrive(lambda: store.app, {GROUP: fact_taker(store, facts_mac_key(settings))},
                                runtime.wake_followers)  # operators: a dead letter taken in after a fix
    runtime.http = create_http(store, runtime.health, tracer, gate, redrive)
    serve_metrics(runtime.http, NAME, count_requests=bool(settings.metrics_http))

    async def follow_the_log() -> None:
        """The followers and the checkpointer read the open store: built here, in a start step, and
        run by the runtime once the broker consumes."""
        reader = NotificationReader(store.app)  # the five followers read each event once

        def follower(name: str, handler: Handler) -> LogFollower:
            return runtime.follow(LogFollower(name, store.app, store.pool, handler, reader=reader))

        keys = PartitionKeys(partition_key_secret(settings))
        follower(f"kafka:{DECISIONS.name}",
                 DecisionRelay(decisions_topics, tracer, keys, decisions_mac_key(settings),
                               Employers(store.app)))
        follower("projection:eligibility_decisions", projection.DecisionsProjection())
        follower(f"kafka:{STATISTICS.name}",
                 StatisticsRelay(audit_topics.statistics, tracer, statistics_key(settings)))
        checkpoints = follower(f"kafka:{CHECKPOINTS.name}", CheckpointRelay(audit_topics.checkpoints, tracer))
        follower(f"kafka:{ELIGIBILITY_DEAD_LETTERS.name}", DeadLetterRelay(dead_letters_topic, tracer, NAME))
        checkpointer = Checkpointer(store.app, settings)
        runtime.background("checkpointer", lambda: checkpointer.run(checkpoints.wake))
        overdue_s = settings.health_checkpoint_overdue_s or 3 * checkpointer.interval_s
        runtime.check(lambda: checkpointer.overdue(overdue_s))
        CHECKPOINT_AGE.set_function(checkpointer.age_s)
        runtime.reports("subject_cache", store.app.subject_cache_report)  # states held, bytes counted

    runtime.on_start(store.open)
    runtime.on_start(gate.open)
    runtime.on_start(follow_the_log)
    runtime.background("key-ring", gate.follow)
    runtime.on_stop(store.close)
    runtime.on_stop(gate.close)
    runtime.reports("keys", gate.count)
    return runtime
