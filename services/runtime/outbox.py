"""Following an application's notification log from a durably recorded position.

The notification log is each service's transactional outbox: relays publish it to Kafka, projections
fold it into query tables. A follower reads a batch after its position, hands it to its handler, and
records the new position in the same asyncpg transaction as the handler's own writes — so a
projection applies every event exactly once, and a relay publishes at least once (a crash between
publishing and committing the position republishes the batch; consumers de-duplicate).

PostgreSQL NOTIFY (sent by eventsourcing on every insert) wakes the follower; a poll interval backs
it up. The events table's lock makes commit order equal id order, so reading past a gap never skips
an event committed later.

Followers of one application share a `NotificationReader`: each event is read and decrypted once,
however many relays and projections handle it.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import threading
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from eventsourcing.domain import DomainEventProtocol

from services.runtime import metrics
from services.runtime.eventstore import Committed, ServiceApplication

log = logging.getLogger(__name__)

Batch = Sequence[tuple[int, DomainEventProtocol[uuid.UUID]]]
Connection = PoolConnectionProxy  # a pooled connection, in the follower's transaction
Handler = Callable[[Connection, Batch], Awaitable[None]]

BATCH_LIMIT = 500
POLL_INTERVAL_S = 1.0
RETRY_BACKOFF_MAX_S = 5.0
RELEASE_TIMEOUT_S = 5.0
READER_CAPACITY = 20_000  # decrypted events kept for followers that have not handled them yet


async def create_positions_table(pool: asyncpg.Pool, schema: str) -> None:
    await pool.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".follower_positions '
        "(name text PRIMARY KEY, position bigint NOT NULL)"
    )


async def follower_position(
    db: asyncpg.Pool | Connection, schema: str, name: str, *, lock: bool = False
) -> int:
    """The notification id follower `name` has handled up to (0 before its first batch). `lock`: inside
    a transaction, lock its row until the transaction ends (`FOR UPDATE`)."""
    statement = f'SELECT position FROM "{schema}".follower_positions WHERE name = $1'
    value = await db.fetchval(statement + (" FOR UPDATE" if lock else ""), name)
    return int(value or 0)


class NotificationReader:
    """The notification log of one application, read once for all its followers.

    It keeps the decrypted events of a window (low, high] of notification ids. The window is complete:
    commit order is id order (module docstring), so once id `high` has been read no event with a lower
    id can still appear. A follower reading from inside the window is served from it, and the window
    is extended from the database when the follower reaches its end; events every follower has passed
    are dropped. A follower behind the window (after a restart, say) restarts the window at its own
    position: correct, only not shared until the others catch up with it."""

    def __init__(self, app: ServiceApplication, capacity: int = READER_CAPACITY) -> None:
        self.app = app
        self.capacity = capacity
        self._low = self._high = 0
        self._events: list[tuple[int, DomainEventProtocol[uuid.UUID]]] = []
        self._positions: dict[str, int] = {}
        self._lock = asyncio.Lock()
        # This process's own commits, by notification id, handed over by the committing thread.
        self._committed: dict[int, DomainEventProtocol[uuid.UUID]] = {}
        self._committed_lock = threading.Lock()
        app.on_recorded(self._take_committed)

    def register(self, follower: str) -> None:
        """A follower that will read: nothing it has not passed is dropped, even before its first read."""
        self._positions.setdefault(follower, 0)

    async def read(self, follower: str, after: int, limit: int) -> Batch:
        """Up to `limit` events after notification id `after`, for the follower named `follower`."""
        async with self._lock:
            self._positions[follower] = after
            if not self._low <= after <= self._high:
                self._low = self._high = after
                self._events = []
            start = bisect.bisect_right(self._events, after, key=lambda item: item[0])
            served = self._events[start:start + limit]
            if len(served) < limit:
                more = self._committed_after(self._high, limit)
                if len(more) < limit:  # what follows may be in the log only: read it as before
                    after = more[-1][0] if more else self._high
                    more = [*more, *await asyncio.to_thread(self.app.notifications, after, limit - len(more))]
                if more:
                    self._events.extend(more)
                    self._high = more[-1][0]
                    served = self._events[start:start + limit]
            self._forget_passed()
            return served

    def _take_committed(self, committed: Committed) -> None:
        """Keep this process's newly committed events, at most `capacity` (the oldest go: the database
        still has them)."""
        with self._committed_lock:
            self._committed.update(committed)
            while len(self._committed) > self.capacity:
                del self._committed[next(iter(self._committed))]

    def _committed_after(self, after: int, limit: int) -> Batch:
        """The events this process committed with ids after+1, after+2, ... without a gap, up to `limit`:
        those are exactly the log's next rows (commit order is id order, so nothing else can still
        appear among them). It stops at an id not kept here (another process's event, an id a
        rolled-back transaction used, one dropped here, or not handed over yet): the caller reads the
        log from there."""
        found: list[tuple[int, DomainEventProtocol[uuid.UUID]]] = []
        with self._committed_lock:
            while self._committed and next(iter(self._committed)) <= after:  # passed: kept in id order
                del self._committed[next(iter(self._committed))]
            while len(found) < limit and (after + len(found) + 1) in self._committed:
                notification_id = after + len(found) + 1
                found.append((notification_id, self._committed.pop(notification_id)))
        return found

    def _forget_passed(self) -> None:
        """Drop what every follower has passed, and the oldest events beyond the capacity."""
        floor = min(self._positions.values())
        cut = bisect.bisect_right(self._events, floor, key=lambda item: item[0])
        cut = max(cut, len(self._events) - self.capacity)
        if cut > 0:
            self._low = self._events[cut - 1][0]
            del self._events[:cut]


class LogFollower:
    def __init__(
        self, name: str, app: ServiceApplication, pool: asyncpg.Pool, handler: Handler,
        *, batch_limit: int = BATCH_LIMIT, poll_interval_s: float = POLL_INTERVAL_S,
        reader: NotificationReader | None = None,
    ) -> None:
        self.name = name
        self.app = app
        self.pool = pool
        self.handler = handler
        self.reader = reader or NotificationReader(app)
        self.reader.register(name)
        self.batch_limit = batch_limit
        self.poll_interval_s = poll_interval_s
        self.schema = app.name
        self._wake = asyncio.Event()
        self.position = 0
        self._batch_sizes = metrics.OUTBOX_BATCH.labels(name)
        self._failures = metrics.OUTBOX_FAILURES.labels(name)

    def wake(self, *_: Any) -> None:
        self._wake.set()

    async def step(self) -> int:
        """Handle one batch after the recorded position; return how many events it held."""
        after = await follower_position(self.pool, self.schema, self.name)
        batch = await self.reader.read(self.name, after, self.batch_limit)
        if not batch:
            self.position = after
            return 0
        async with self.pool.acquire() as conn, conn.transaction():
            # Lock the position row: two followers of one name never handle the same batch twice.
            # (No row yet reads as 0, as it did before the batch: rows are never deleted.)
            if await follower_position(conn, self.schema, self.name, lock=True) != after:
                return 0  # someone else moved it; re-read
            await self.handler(conn, batch)
            last = batch[-1][0]
            await conn.execute(
                f'INSERT INTO "{self.schema}".follower_positions (name, position) VALUES ($1, $2) '
                "ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position",
                self.name, last,
            )
        self.position = last
        self._batch_sizes.observe(len(batch))
        return len(batch)

    async def run(self) -> None:
        """Follow forever: drain, then wait for a NOTIFY or the poll interval. Errors back off."""
        channel = f"{self.app.name}_events"
        listener: Connection | None = None
        backoff_s = 0.1
        try:
            while True:
                try:
                    if listener is not None and not _listening(listener):
                        await self._release(listener, channel)
                        listener = None
                    if listener is None:
                        listener = await self.pool.acquire()
                        await listener.add_listener(channel, self.wake)
                    self._wake.clear()
                    while await self.step() >= self.batch_limit:
                        pass
                    backoff_s = 0.1
                except asyncio.CancelledError:
                    raise
                except Exception:
                    self._failures.inc()
                    log.exception("%s: step failed; retrying in %.1fs", self.name, backoff_s)
                    if listener is not None:
                        await self._release(listener, channel)
                        listener = None
                    await asyncio.sleep(backoff_s)
                    backoff_s = min(backoff_s * 2, RETRY_BACKOFF_MAX_S)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
        finally:
            if listener is not None:
                await self._release(listener, channel)

    async def _release(self, conn: Connection, channel: str) -> None:
        """Give the LISTEN connection back to the pool, also when it is broken: a connection not given
        back stays checked out for good, and after a few database restarts the pool has none left
        (every read of the service then waits forever)."""
        try:
            await conn.remove_listener(channel, self.wake)
        except Exception:  # a broken connection: the pool closes it on release and opens another
            log.debug("%s: listener connection dropped", self.name, exc_info=True)
        try:
            await self.pool.release(conn, timeout=RELEASE_TIMEOUT_S)
        except Exception:  # already taken back by the pool, or its reset failed: it was terminated
            log.debug("%s: listener connection not released", self.name, exc_info=True)


def _listening(conn: Connection) -> bool:
    """Whether the LISTEN connection still works. When its server connection drops, asyncpg's pool takes
    it back and detaches it: it then answers every call with InterfaceError, not `is_closed()`."""
    try:
        return not conn.is_closed()
    except asyncpg.InterfaceError:
        return False
