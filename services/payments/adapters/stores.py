"""Where payments keeps its state: the event store (`PaymentsApplication`, which holds every book in
memory) and a PostgreSQL pool for the query tables and the log followers' positions.

Both are opened by the service's first start step, not at bootstrap: opening does I/O (the schema,
the database pools) and the pool belongs to the running event loop. The parts wired at bootstrap —
the Kafka consumers, the HTTP API, the batching loop — reach them through `app` and `pool`, and
none of those parts runs before the service has started.

Start-up, in order: `open`, then `rebuild_books` — every book from the event store, in one pass over the
notification log that also rebuilds the projection's copy up to its recorded position — and only then
does anything consume.
"""

from __future__ import annotations

import asyncio
import logging

import asyncpg
from opentelemetry import trace

from services.payments.adapters import projection
from services.payments.application import PaymentsApplication
from services.payments.config import PaymentsConfig
from services.runtime.outbox import create_positions_table, follower_position
from services.runtime.settings import Settings

log = logging.getLogger(__name__)
POOL_SIZE_MAX = 6  # the followers' steps and the HTTP reads


class PaymentsStores:
    def __init__(
        self, settings: Settings, tracer_provider: trace.TracerProvider | None, config: PaymentsConfig
    ) -> None:
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.config = config
        self._app: PaymentsApplication | None = None
        self._pool: asyncpg.Pool | None = None

    @property
    def app(self) -> PaymentsApplication:
        if self._app is None:
            raise RuntimeError("the payments event store is not open (the service has not started)")
        return self._app

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the payments database pool is not open (the service has not started)")
        return self._pool

    async def open(self) -> None:
        """The event store, the pool, and the tables of the followers' positions and of the projection."""
        self._app = await asyncio.to_thread(
            PaymentsApplication, self.settings, self.tracer_provider, self.config
        )
        self._pool = await asyncpg.create_pool(self.settings.pg_dsn(), min_size=1, max_size=POOL_SIZE_MAX)
        await create_positions_table(self._pool, self._app.name)
        await projection.create_tables(self._pool)
        log.info("payments: batching %s; default appropriations: %s", self.config.batch_policy,
                 self.config.default_appropriations or "none")

    async def rebuild_books(self, view: projection.PaymentsProjection) -> None:
        """Every book from the event store, and `view`'s copy of each up to the projection's position."""
        app = self.app
        view.start_at(await follower_position(self.pool, app.name, view.name))
        t0 = asyncio.get_running_loop().time()
        last = await asyncio.to_thread(app.rebuild, view.observe)
        log.info("payments: %d books rebuilt from the event store (up to notification %d) in %.2fs",
                 len(app.books()), last, asyncio.get_running_loop().time() - t0)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._app is not None:
            self._app.close()
