"""Wiring of the payments service: application, decision consumer, order relay, projection, HTTP."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace

from contracts.decisions import DecisionV1
from contracts.eventstore import kafka_tracking
from contracts.kafka import consuming
from contracts.outbox import LogFollower, create_positions_table
from contracts.runtime import until_done
from contracts.settings import Settings
from contracts.telemetry import current_carrier, get_tracer, trace_id_hex
from contracts.topics import ORDERS
from services.payments.adapters import projection
from services.payments.adapters.relay import OrderRelay
from services.payments.application import Outcome, PaymentsApplication
from services.payments.entrypoints.http import create_http
from services.payments.entrypoints.kafka import GROUP, build_broker

log = logging.getLogger(__name__)


class PaymentsService:
    name = "payments"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.tracer = get_tracer(tracer_provider, self.name)
        self.broker, self.publisher = build_broker(settings, self)
        self.app: PaymentsApplication | None = None
        self.pool: asyncpg.Pool | None = None
        self.followers: list[LogFollower] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = False
        self.http = create_http(self, self.tracer)

    async def start(self) -> None:
        self.app = await asyncio.to_thread(PaymentsApplication, self.settings, self.tracer_provider)
        self.pool = await asyncpg.create_pool(self.settings.pg_dsn(), min_size=1, max_size=4)
        await create_positions_table(self.pool, self.app.name)
        await projection.create_tables(self.pool)
        self.followers = [
            LogFollower(f"kafka:{ORDERS.name}", self.app, self.pool, OrderRelay(self.publisher, self.tracer)),
            LogFollower("projection:payments_orders", self.app, self.pool, projection.OrdersProjection()),
        ]
        await self.broker.start()
        self.tasks = [asyncio.create_task(f.run(), name=f.name) for f in self.followers]
        self.ready = True
        log.info("payments ready")

    async def stop(self) -> None:
        self.ready = False
        await self.broker.stop()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
        if self.app is not None:
            self.app.close()

    async def on_decision(self, body: DecisionV1, msg: KafkaMessage) -> None:
        """One decision: record its order or clawback (retrying until committed), then wake the relays."""
        app = self.app
        assert app is not None
        record = msg.raw_message
        assert not isinstance(record, tuple)
        position = kafka_tracking(record.topic, record.partition, record.offset)
        with consuming(self.tracer, msg, GROUP) as span:
            span.set_attributes({"flexledger.book": body.book, "flexledger.decision_id": body.decision_id,
                                 "flexledger.kind": body.kind})
            trace_id, carrier = trace_id_hex(span), current_carrier()
            outcome = await until_done(
                f"recording decision {body.decision_id}",
                lambda: asyncio.to_thread(app.record_decision, body, position, trace_id, carrier),
            )
            span.set_attribute("flexledger.result", outcome.value)
        if outcome is Outcome.RECORDED:
            for follower in self.followers:
                follower.wake()

    async def orders(self, book: str, limit: int) -> list[dict[str, Any]]:
        assert self.pool is not None
        return await projection.orders(self.pool, book, limit)

    def health(self) -> dict[str, Any]:
        alive = {task.get_name(): not task.done() for task in self.tasks}
        ok = self.ready and bool(alive) and all(alive.values())
        return {"status": "ok" if ok else "starting" if not self.ready else "degraded",
                "service": self.name, "followers": alive}
