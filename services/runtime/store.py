"""A service's PostgreSQL: its event store (an eventsourcing application of the service's schema) and an
asyncpg pool for its query tables and its log followers' positions.

Built by the service's bootstrap, opened by its first start step and closed at stop: opening does I/O
(the schema, the tables) and the pool belongs to the running event loop. The parts wired at bootstrap
(handlers, HTTP reads, loops) hold the store and take `app` or `pool` when they run, which is only
after start: the broker consumes and the HTTP server serves once every start step is done.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import asyncpg

from services.runtime.eventstore import ServiceApplication
from services.runtime.outbox import create_positions_table

App = TypeVar("App", bound=ServiceApplication)
CreateTables = Callable[[asyncpg.Pool], Awaitable[None]]


class ServiceStore(Generic[App]):
    def __init__(
        self, open_app: Callable[[], App], dsn: str, *, pool_size_max: int,
        tables: Sequence[CreateTables] = (),
    ) -> None:
        self._open_app = open_app
        self._dsn = dsn
        self._pool_size_max = pool_size_max
        self._tables = tables
        self._app: App | None = None
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        """The event store, the pool, and the tables of the followers' positions and the read side.

        Retried while the database is unreachable (services.runtime.startup): what an earlier attempt
        opened is kept, and the tables are created only if missing."""
        # The application connects and creates its tables synchronously: in a thread, off the loop.
        if self._app is None:
            self._app = await asyncio.to_thread(self._open_app)
        if self._pool is None:
            self._pool = await asyncpg.create_pool(self._dsn, min_size=1, max_size=self._pool_size_max)
        await create_positions_table(self._pool, self._app.name)
        for create_tables in self._tables:
            await create_tables(self._pool)

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
        if self._app is not None:
            self._app.close()

    @property
    def app(self) -> App:
        if self._app is None:
            raise RuntimeError("the event store is not open: the service has not started")
        return self._app

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the database pool is not open: the service has not started")
        return self._pool
