"""Wiring of the intake service: application, writer lock, outbox relay, Kafka and HTTP."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from opentelemetry import trace

from contracts.outbox import LogFollower, create_positions_table
from contracts.runtime import until_done
from contracts.settings import Settings
from contracts.telemetry import current_carrier, get_tracer
from contracts.topics import FACTS
from services.intake.adapters.relay import FactRelay
from services.intake.adapters.writer_lock import WriterLock
from services.intake.application import IntakeApplication, Result
from services.intake.entrypoints.http import create_http
from services.intake.entrypoints.kafka import build_broker

log = logging.getLogger(__name__)
LOCK_CHECK_INTERVAL_S = 1.0


class IntakeService:
    name = "intake"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.tracer = get_tracer(tracer_provider, self.name)
        self.broker, self.publisher = build_broker(settings)
        self.writer_lock = WriterLock(settings.pg_dsn())
        self.lock = asyncio.Lock()  # one submission at a time: the book's sequence has one writer
        self.app: IntakeApplication | None = None
        self.pool: asyncpg.Pool | None = None
        self.relay: LogFollower | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = False
        self.http = create_http(self, self.tracer)

    async def start(self) -> None:
        await self.writer_lock.acquire()
        self.app = await asyncio.to_thread(IntakeApplication, self.settings, self.tracer_provider)
        await asyncio.to_thread(self.app.rebuild)
        self.pool = await asyncpg.create_pool(self.settings.pg_dsn(), min_size=1, max_size=4)
        await create_positions_table(self.pool, self.app.name)
        await self.broker.start()
        relay = FactRelay(self.publisher, self.tracer)
        self.relay = LogFollower(f"kafka:{FACTS.name}", self.app, self.pool, relay)
        self.tasks = [
            asyncio.create_task(self.relay.run(), name="intake-relay"),
            asyncio.create_task(self._keep_writer_lock(), name="intake-writer-lock"),
        ]
        self.ready = True
        log.info("intake ready: %d books", len(self.app.books))

    async def stop(self) -> None:
        self.ready = False
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.broker.stop()
        if self.pool is not None:
            await self.pool.close()
        if self.app is not None:
            self.app.close()
        await self.writer_lock.release()

    async def _keep_writer_lock(self) -> None:
        """Watch the writer lock; when its session dies, stop submissions until it is held again."""
        assert self.app is not None
        app = self.app
        while True:
            await asyncio.sleep(LOCK_CHECK_INTERVAL_S)
            if await self.writer_lock.alive():
                continue
            self.ready = False
            log.warning("intake lost its writer lock; submissions paused until it is re-acquired")
            await until_done("re-acquiring the writer lock", self.writer_lock.acquire)
            async with self.lock:  # no submission runs while the books are re-read
                await until_done("rebuilding the books", lambda: asyncio.to_thread(app.rebuild))
            self.ready = True
            log.info("intake holds the writer lock again")

    async def submit(self, book: str, raw: Any) -> Result:
        assert self.app is not None and self.relay is not None
        async with self.lock:
            result = await asyncio.to_thread(self.app.submit, book, raw, current_carrier())
        if not result.replayed:
            self.relay.wake()
        return result

    def last_seq(self, book: str) -> int:
        return self.app.last_seq(book) if self.app else 0

    def health(self) -> dict[str, Any]:
        alive = {task.get_name(): not task.done() for task in self.tasks}
        ok = self.ready and self.writer_lock.held and bool(alive) and all(alive.values())
        return {
            "status": "ok" if ok else "degraded" if alive else "starting",
            "service": self.name, "writer_lock": self.writer_lock.held, "tasks": alive,
            "relayed_position": self.relay.position if self.relay else 0,
        }
