"""The payments service, wired: stores, Kafka consumers, the batching loop, the order, disbursement and
dead-letter relays, the read-side projection and the HTTP API, on the shared service runtime.

Start-up (in this order, before anything consumes): open the stores; as one of an active and standby
pair (`settings.standby`), take the writer lock (services/runtime/writer_lock.py); rebuild every book
from the event store (one pass over the notification log, which also rebuilds the projection's copy up
to its recorded position); register the log followers, which need the open stores.
"""

from __future__ import annotations

import logging
from typing import Final

from opentelemetry.trace import TracerProvider

from contracts.topics import DISBURSEMENTS, ORDER_EVENTS, ORDERS, PAYMENTS_DEAD_LETTERS
from services.payments.adapters import projection
from services.payments.adapters.batching_loop import BatchingLoop
from services.payments.adapters.metrics import PaymentsMetrics
from services.payments.adapters.order_events import OrderEventRelay
from services.payments.adapters.relay import DisbursementRelay, OrderRelay
from services.payments.adapters.stores import payments_stores, rebuild_books
from services.payments.config import PaymentsConfig
from services.payments.entrypoints.http import create_http
from services.payments.entrypoints.kafka import (
    GROUP,
    SETTLEMENTS_GROUP,
    KafkaConsumers,
    build_broker,
    decision_taker,
    settlement_taker,
)
from services.runtime.access.gate import AccessGate
from services.runtime.consuming import DeadLetters
from services.runtime.dead_letters import DeadLetterRelay
from services.runtime.health import HealthLimits
from services.runtime.keys import decisions_mac_key, partition_key_secret
from services.runtime.metrics import serve_metrics
from services.runtime.outbox import LogFollower, NotificationReader
from services.runtime.publishing import PartitionKeys
from services.runtime.redrive import DeadLetterRedrive
from services.runtime.service import ServiceRuntime
from services.runtime.settings import Settings
from services.runtime.telemetry import get_tracer
from services.runtime.writer_lock import Seat, WriterLock

log = logging.getLogger(__name__)
NAME: Final = "payments"
# The writer lock of an active and standby pair; any constant no other advisory lock in the database uses.
LOCK_KEY: Final = 0x466C_7850_6179  # "FlxPay"


def bootstrap(settings: Settings, tracer_provider: TracerProvider | None = None) -> ServiceRuntime:
    config = PaymentsConfig.from_settings(settings)  # refuse bad settings before anything starts
    log.info("payments: batching %s; default appropriations: %s", config.batch_policy,
             config.default_appropriations or "none")
    tracer = get_tracer(tracer_provider, NAME)
    stores = payments_stores(settings, tracer_provider, config)
    view = projection.PaymentsProjection(PaymentsMetrics(settings.production_book_set),
                                         lambda name: stores.app.new_book(name, "view"))

    def changed() -> None:
        """Something was recorded: publish it, and it may make a batch due. (`runtime` and `batching`
        are built below, from the broker this is handed to; it is called only once they run.)"""
        runtime.wake_followers()
        batching.wake()

    def dead_letters(group: str) -> DeadLetters:  # a consumer's poison: kept in the store, then relayed
        return DeadLetters(stores, group, lambda: runtime.wake_followers())

    consumers = KafkaConsumers(stores, tracer, changed)
    broker = build_broker(settings, consumers, decisions_mac_key(settings), dead_letters)
    runtime = ServiceRuntime(NAME, broker.broker, HealthLimits.from_settings(settings))
    batching = BatchingLoop(stores, tracer, runtime.wake_followers)

    async def follow_the_log() -> None:  # a follower needs the open stores
        reader = NotificationReader(stores.app)  # the followers read each event once
        keys = PartitionKeys(partition_key_secret(settings))
        for name, handler in (
            (f"kafka:{ORDERS.name}", OrderRelay(broker.orders, tracer, keys)),
            (f"kafka:{DISBURSEMENTS.name}", DisbursementRelay(broker.disbursements, tracer)),
            (f"kafka:{ORDER_EVENTS.name}", OrderEventRelay(broker.order_events, tracer, keys)),
            (f"kafka:{PAYMENTS_DEAD_LETTERS.name}", DeadLetterRelay(broker.dead_letters, tracer, NAME)),
            (view.name, view),
        ):
            runtime.follow(LogFollower(name, stores.app, stores.pool, handler, reader=reader))

    gate = AccessGate(NAME, settings, tracer_provider)  # who may call what (docs/design/http-auth.md)
    runtime.on_start(stores.open)
    runtime.on_start(gate.open)  # reads only: a standby has it ready when it takes over
    if settings.standby:  # one of a pair: the books are read, and Kafka joined, only once it is active
        seat = Seat(WriterLock(settings.pg_dsn(), LOCK_KEY, NAME), lambda: stores.app.process_recorder,
                    standby=True)
        runtime.on_start(seat.take)
        runtime.background("writer-lock", seat.watch_or_stop)
        runtime.on_stop(seat.lock.release)
        runtime.role = lambda: seat.role
    runtime.on_start(lambda: rebuild_books(stores, view))
    runtime.on_start(follow_the_log)
    runtime.background("batching", batching.run)
    runtime.background("key-ring", gate.follow)
    runtime.on_stop(stores.close)
    runtime.on_stop(gate.close)
    runtime.reports("projection", lambda: {"position": view.folded})
    runtime.reports("keys", gate.count)
    runtime.reports("books", lambda: stores.app.memory() if runtime.ready else {})
    takers = {GROUP: decision_taker(stores, decisions_mac_key(settings)),  # operators: re-drive after a fix
              SETTLEMENTS_GROUP: settlement_taker(stores, settings.production_book_set)}
    redrive = DeadLetterRedrive(lambda: stores.app, takers, changed)
    runtime.http = create_http(stores, tracer, changed, runtime.health, gate, redrive)
    serve_metrics(runtime.http, NAME, count_requests=bool(settings.metrics_http))
    return runtime
