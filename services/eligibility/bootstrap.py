"""Wiring of the eligibility service: application, fact consumer, decision relay, projection, HTTP."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import asyncpg
from opentelemetry import trace
from opentelemetry.trace import Span

from contracts.eventstore import kafka_tracking
from contracts.kafka import consuming_record
from contracts.keys import statistics_key
from contracts.messages import FactMessageV1
from contracts.outbox import LogFollower, create_positions_table
from contracts.runtime import until_done
from contracts.settings import Settings
from contracts.telemetry import current_carrier, get_tracer, trace_id_hex
from contracts.topics import CHECKPOINTS, DECISIONS, STATISTICS
from services.eligibility.adapters import projection
from services.eligibility.adapters.checkpoints import Checkpointer, CheckpointRelay
from services.eligibility.adapters.relay import DecisionRelay
from services.eligibility.adapters.statistics import StatisticsRelay
from services.eligibility.application import BatchItem, EligibilityApplication, Outcome
from services.eligibility.entrypoints.audit import add_audit_publishers
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
        self.followers = [
            LogFollower(f"kafka:{DECISIONS.name}", self.app, self.pool, relay),
            LogFollower("projection:eligibility_decisions", self.app, self.pool, view),
        ]
        # Audit (docs/design/audit.md): pseudonymised statistics, and signed checkpoints of the ledger,
        # recorded as events and published from the notification log like the decisions.
        statistics = StatisticsRelay(
            self.audit_publishers.statistics, self.tracer, statistics_key(self.settings)
        )
        checkpoints = CheckpointRelay(self.audit_publishers.checkpoints, self.tracer)
        checkpoint_follower = LogFollower(f"kafka:{CHECKPOINTS.name}", self.app, self.pool, checkpoints)
        self.followers += [
            LogFollower(f"kafka:{STATISTICS.name}", self.app, self.pool, statistics), checkpoint_follower,
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
        transaction (retried until committed), then the relays are woken once. Each fact keeps its own
        CONSUMER span and trace; each trace gets its `eligibility db commit` span."""
        app = self.app
        assert app is not None and batch
        items: list[BatchItem] = []
        with ExitStack() as stack:
            spans: list[Span] = []
            for record, body in batch:
                span = stack.enter_context(consuming_record(self.tracer, record, GROUP))
                span.set_attributes({"flexledger.book": body.book, "flexledger.seq": body.seq,
                                     "flexledger.outcome": body.outcome})
                spans.append(span)
                position = kafka_tracking(record.topic, record.partition, record.offset)
                items.append((body, position, trace_id_hex(span), current_carrier()))
            # The commit's own span is a child of the current (last) span; the other traces get theirs.
            commits = [self.tracer.start_span(
                f"{app.name} db commit", context=trace.set_span_in_context(span),
                attributes={"db.system": "postgresql", "db.namespace": app.name,
                            "flexledger.batch": len(items)},
            ) for span in spans[:-1]]
            try:
                results = await until_done(
                    f"processing {len(items)} facts from {batch[0][1].book}/{batch[0][1].seq}",
                    lambda: asyncio.to_thread(app.process_batch, items),
                )
            finally:
                for commit in commits:
                    commit.end()
            for span, (outcome, decisions) in zip(spans, results, strict=True):
                span.set_attributes({"flexledger.result": outcome.value,
                                     "flexledger.decisions": len(decisions)})
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
