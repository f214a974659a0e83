"""Intake's composition root: builds the adapters, hands them to the handlers, registers both on a
`ServiceRuntime` (start, stop, loops, health) and returns it. Nothing here handles anything.

Where a fact goes: `POST /v1/facts` (entrypoints/http.py) or an agency message (entrypoints/kafka.py)
→ the books' one writer (adapters/group_commit.py, or `AgencyFeed` under the same `books_lock`) →
`IntakeApplication` (application.py) commits it → `runtime.wake_followers` → the outbox relay
(adapters/relay.py) publishes it to Kafka.
"""

from __future__ import annotations

import asyncio
from typing import Final

from opentelemetry.trace import TracerProvider

from services.intake.adapters.group_commit import GroupCommit
from services.intake.adapters.relay import FactRelay, Outbox
from services.intake.adapters.store import intake_store
from services.intake.adapters.submitter_keys import SubmitterKeys
from services.intake.adapters.writer_lock_watch import LOCK_KEY, WriterLockWatch
from services.intake.config import limits_from
from services.intake.entrypoints.http import Ports, create_http
from services.intake.entrypoints.kafka import (
    GROUP,
    AgencyFeed,
    agency_taker,
    build_broker,
    subscribe_agency_feed,
)
from services.runtime.access.gate import AccessGate
from services.runtime.health import HealthLimits
from services.runtime.keys import facts_mac_key, partition_key_secret
from services.runtime.metrics import serve_metrics
from services.runtime.publishing import PartitionKeys
from services.runtime.redrive import DeadLetterRedrive
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings
from services.runtime.telemetry import get_tracer
from services.runtime.writer_lock import Seat, WriterLock

NAME: Final = "intake"


def bootstrap(settings: Settings, tracer_provider: TracerProvider | None = None) -> ServiceRuntime:
    limits = limits_from(settings)
    tracer = get_tracer(tracer_provider, NAME)
    broker, facts_topics, dead_letters_publisher = build_broker(settings)
    runtime = ServiceRuntime(NAME, broker, HealthLimits.from_settings(settings))

    # The event store, opened at start; its books are read once the writer lock is held.
    store = intake_store(settings, tracer_provider, dead_letter_max_bytes=limits.max_fact_bytes)
    books_lock = asyncio.Lock()  # the books have one writer at a time: a request, a message or a rebuild
    seat = Seat(WriterLock(settings.pg_dsn(), LOCK_KEY, NAME), lambda: store.app.process_recorder,
                standby=bool(settings.standby))
    writer_lock = WriterLockWatch(seat, store, books_lock)
    gate = AccessGate(NAME, settings, tracer_provider)  # API keys (docs/design/http-auth.md)
    keys = SubmitterKeys(gate, limits)
    relay = FactRelay(facts_topics, tracer, PartitionKeys(partition_key_secret(settings)),
                      facts_mac_key(settings), dead_letters_publisher)
    outbox = Outbox(runtime, store, relay)
    writer = GroupCommit(store, books_lock, on_recorded=runtime.wake_followers)
    feed = AgencyFeed(store, books_lock, limits, tracer, on_recorded=runtime.wake_followers)
    subscribe_agency_feed(broker, settings, feed)
    # Operators: an agency message taken in after a fix, under the books' lock like the feed's.
    redrive = DeadLetterRedrive(lambda: store.app, {GROUP: agency_taker(store, limits, writer_lock.writing)},
                                runtime.wake_followers, lock=books_lock)

    runtime.on_start(store.open)
    runtime.on_start(writer_lock.acquire)  # then the books, read only by their one writer
    runtime.on_start(gate.open)
    runtime.on_start(outbox.open)  # follows the log with the relay
    runtime.background("writer-lock", writer_lock.watch)
    runtime.background("key-ring", gate.follow)
    runtime.background("rate-limits", keys.forget_idle)
    runtime.on_stop(store.close)  # closed in reverse: the lock, then the store
    runtime.on_stop(writer_lock.release)
    runtime.on_stop(gate.close)

    runtime.ready_when(writer_lock.writing)
    runtime.role = lambda: seat.role
    runtime.reports("writer_lock", writer_lock.held)
    runtime.reports("relayed_position", outbox.position)
    runtime.reports("keys", gate.count)
    ports = Ports(ready=runtime.serving, limits=limits, keys=keys, writer=writer,
                  last_seq=lambda book: store.app.last_seq(book))
    runtime.http = create_http(ports, runtime.health, tracer, gate, redrive)
    serve_metrics(runtime.http, NAME, count_requests=bool(settings.metrics_http))
    return runtime
