"""Eligibility's PostgreSQL: the event store (the application: the decision chains, the checkpoints,
the Kafka positions) and an asyncpg pool for the read side and the followers' positions.

Built by bootstrap, opened by the runtime's first start step and closed at stop. What is built before
start (the facts handler, the HTTP reads) holds the `Store` and takes `app` or `pool` when it runs:
the broker consumes, and HTTP reads find data, only after the start steps.
"""

from __future__ import annotations

import asyncio

import asyncpg
from opentelemetry import trace

from services.eligibility.adapters import projection
from services.eligibility.application import EligibilityApplication
from services.runtime.outbox import create_positions_table
from services.runtime.settings import Settings

POOL_CONNECTIONS_MAX = 6  # shared by the four followers and the HTTP reads


class Store:
    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None) -> None:
        self._settings = settings
        self._tracer_provider = tracer_provider
        self._app: EligibilityApplication | None = None
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        # The application connects and creates its tables synchronously: in a thread, off the loop.
        self._app = await asyncio.to_thread(EligibilityApplication, self._settings, self._tracer_provider)
        self._pool = await asyncpg.create_pool(self._settings.pg_dsn(), min_size=1,
                                               max_size=POOL_CONNECTIONS_MAX)
        await create_positions_table(self._pool, self._app.name)
        await projection.create_tables(self._pool)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._app is not None:
            self._app.close()

    @property
    def app(self) -> EligibilityApplication:
        assert self._app is not None, "eligibility's store is not open yet"
        return self._app

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "eligibility's store is not open yet"
        return self._pool
