"""Wiring of the eligibility service: application, fact consumer, decision relay, projection, HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from opentelemetry import trace

from contracts.messages import FactMessageV1
from contracts.topics import CHECKPOINTS, DECISIONS, FACTS, STATISTICS
from services.eligibility.adapters import projection
from services.eligibility.adapters.checkpoints import Checkpointer, CheckpointRelay
from services.eligibility.adapters.relay import DecisionRelay
from services.eligibility.adapters.statistics import StatisticsRelay
from services.eligibility.application import BatchItem, EligibilityApplication, Outcome
from services.eligibility.entrypoints.audit import add_audit_publishers
from services.eligibility.entrypoints.http import create_http
from services.eligibility.entrypoints.kafka import GROUP, build_broker
from services.runtime.batch_spans import ConsumedBatch
from services.runtime.eventstore import kafka_tracking
from services.runtime.keys import statistics_key
from services.runtime.outbox import LogFollower, NotificationReader, create_positions_table
from services.runtime.process import until_done
from services.runtime.settings import Settings
from services.runtime.telemetry import get_tracer

log = logging.getLogger(__name__)


class EligibilityService:
    name = "eligibility"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.tracer = get_tracer(tracer_provider, self.name)
        self.broker, self.publisher = build_broker(settings, self)
        self.audit_publishers = add_audit_publishers(self.broker)  # statistics, checkpoints
        self.checkpointer: Checkpointer | None = None
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
        reader = NotificationReader(self.app)  # the four followers below read each event once
        self.followers = [
            LogFollower(f"kafka:{DECISIONS.name}", self.app, self.pool, relay, reader=reader),
            LogFollower("projection:eligibility_decisions", self.app, self.pool, view, reader=reader),
        ]
        # Audit (docs/design/audit.md): pseudonymised statistics, and signed checkpoints of the ledger,
        # recorded as events and published from the notification log like the decisions.
        statistics = StatisticsRelay(
            self.audit_publishers.statistics, self.tracer, statistics_key(self.settings)
        )
        checkpoints = CheckpointRelay(self.audit_publishers.checkpoints, self.tracer)
        checkpoint_follower = LogFollower(
            f"kafka:{CHECKPOINTS.name}", self.app, self.pool, checkpoints, reader=reader
        )
        self.followers += [
            LogFollower(f"kafka:{STATISTICS.name}", self.app, self.pool, statistics, reader=reader),
            checkpoint_follower,
        ]
        self.checkpointer = Checkpointer(self.app, self.settings)
        await self.broker.start()
        self.tasks = [asyncio.create_task(f.run(), name=f.name) for f in self.followers]
        self.tasks.append(
            asyncio.create_task(self.checkpointer.run(checkpoint_follower.wake), name="checkpointer")
        )
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

    async def on_facts(self, batch: Sequence[tuple[Any, FactMessageV1]]) -> None:
        """Consecutive facts from intake, as (Kafka record, fact) pairs: decided and recorded in one
        transaction (retried until committed), then the relays are woken once. Each trace the facts
        came in gets its CONSUMER span and its `eligibility db commit` span (services.runtime.batch_spans)."""
        app = self.app
        assert app is not None and batch
        spans = ConsumedBatch(self.tracer, FACTS.name, GROUP)
        items: list[BatchItem] = []
        for record, body in batch:
            group = spans.group_of(record)
            position = kafka_tracking(record.topic, record.partition, record.offset)
            items.append((body, position, group.trace_id, group.carrier))
        try:
            with spans.child_spans(f"{app.name} db commit", {
                "db.system": "postgresql", "db.namespace": app.name, "flexledger.batch": len(items),
            }):
                results = await until_done(
                    f"processing {len(items)} facts from {batch[0][1].book}/{batch[0][1].seq}",
                    lambda: asyncio.to_thread(app.process_batch, items),
                )
        finally:
            spans.end()
        if any(outcome is Outcome.PROCESSED for outcome, _ in results):
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
