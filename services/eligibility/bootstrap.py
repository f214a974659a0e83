"""Wiring of the eligibility service: application, fact consumer, decision relay, projection, HTTP."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace

from contracts.eventstore import kafka_tracking
from contracts.kafka import consuming
from contracts.messages import FactMessageV1
from contracts.outbox import LogFollower, create_positions_table
from contracts.runtime import until_done
from contracts.settings import Settings
from contracts.telemetry import current_carrier, get_tracer, trace_id_hex
from contracts.topics import DECISIONS
from services.eligibility.adapters import projection
from services.eligibility.adapters.relay import DecisionRelay
from services.eligibility.application import EligibilityApplication, Outcome
from services.eligibility.entrypoints.http import create_http
from services.eligibility.entrypoints.kafka import GROUP, build_broker

log = logging.getLogger(__name__)


class EligibilityService:
    name = "eligibility"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.tracer = get_tracer(tracer_provider, self.name)
        self.broker, self.publisher = build_broker(settings, self)
        self.app: EligibilityApplication | None = None
        self.pool: asyncpg.Pool | None = None
        self.followers: list[LogFollower] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = False
        self.http = create_http(self, self.tracer)

    async def start(self) -> None:
        self.app = await asyncio.to_thread(EligibilityApplication, self.settings, self.tracer_provider)
        self.pool = await asyncpg.create_pool(self.settings.pg_dsn(), min_size=1, max_size=6)
        await create_positions_table(self.pool, self.app.name)
        await projection.create_tables(self.pool)
        relay, view = DecisionRelay(self.publisher, self.tracer), projection.DecisionsProjection()
        self.followers = [
            LogFollower(f"kafka:{DECISIONS.name}", self.app, self.pool, relay),
            LogFollower("projection:eligibility_decisions", self.app, self.pool, view),
        ]
        await self.broker.start()
        self.tasks = [asyncio.create_task(f.run(), name=f.name) for f in self.followers]
        self.ready = True
        log.info("eligibility ready")

    async def stop(self) -> None:
        self.ready = False
        await self.broker.stop()  # first: no fact is half-handled when the relays stop
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
        if self.app is not None:
            self.app.close()

    async def on_fact(self, body: FactMessageV1, msg: KafkaMessage) -> None:
        """One fact from intake: decide and record it (retrying until committed), then wake the relays."""
        app = self.app
        assert app is not None
        record = msg.raw_message
        assert not isinstance(record, tuple)
        position = kafka_tracking(record.topic, record.partition, record.offset)
        with consuming(self.tracer, msg, GROUP) as span:
            span.set_attributes({"flexledger.book": body.book, "flexledger.seq": body.seq,
                                 "flexledger.outcome": body.outcome})
            trace_id, carrier = trace_id_hex(span), current_carrier()
            outcome, decisions = await until_done(
                f"processing fact {body.book}/{body.seq}",
                lambda: asyncio.to_thread(app.process_fact, body, position, trace_id, carrier),
            )
            span.set_attributes({"flexledger.result": outcome.value, "flexledger.decisions": len(decisions)})
        if outcome is Outcome.PROCESSED:
            for follower in self.followers:
                follower.wake()

    async def decisions(self, book: str, after_seq: int, limit: int) -> list[dict[str, Any]]:
        assert self.pool is not None
        return await projection.decisions(self.pool, book, after_seq, limit)

    async def progress(self, book: str) -> int:
        assert self.pool is not None
        return await projection.progress(self.pool, book)

    def health(self) -> dict[str, Any]:
        alive = {task.get_name(): not task.done() for task in self.tasks}
        ok = self.ready and bool(alive) and all(alive.values())
        return {"status": "ok" if ok else "starting" if not self.ready else "degraded",
                "service": self.name, "followers": alive}
