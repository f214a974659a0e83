"""Holding intake's writer lock (services/runtime/writer_lock.py) for the life of the process, and reading
the books only while holding it.

Intake is the single writer of each book's seq: one process at a time holds the lock. At start the lock
is taken (by a standby: when the active instance's session ends), then the books are rebuilt from the
event store. Every `LOCK_CHECK_INTERVAL_S` the session holding it is asked whether it is alive. When it
has died (e.g. PostgreSQL restarted), a lone intake is not ready (HTTP answers 503) until it holds the
lock again and has re-read the books, which another process may have written meanwhile; one of an
active and standby pair stops instead (`Seat.watch_or_stop`). No submission runs while the books are
re-read: the watch takes `books_lock`, the writer's own lock (adapters/group_commit.py).
"""

from __future__ import annotations

import asyncio
import logging

from services.intake.adapters.store import IntakeStore
from services.runtime.process import until_done
from services.runtime.writer_lock import LOCK_CHECK_INTERVAL_S, Seat

log = logging.getLogger(__name__)
# Any constant works, as long as nothing else in the database uses it as an advisory lock key.
LOCK_KEY = 0x466C_7849_6E74  # "FlxInt"


class WriterLockWatch:
    def __init__(self, seat: Seat, store: IntakeStore, books_lock: asyncio.Lock) -> None:
        self.seat = seat
        self.store = store
        self.books_lock = books_lock
        self._books_read = False  # read since the lock was last taken

    def held(self) -> bool:
        return self.seat.lock.held

    def writing(self) -> bool:
        """Intake may write: it holds the lock and has read the books since taking it."""
        return self._books_read and self.seat.lock.held

    async def acquire(self) -> None:
        """Take the lock (waiting for a predecessor, or the active instance, to let go of it), then read
        the books. Retried at start while the database is unreachable: a lock already held is kept."""
        await self.seat.take()
        await asyncio.to_thread(self.store.app.rebuild)
        self._books_read = True

    async def watch(self) -> None:
        if self.seat.standby:
            await self.seat.watch_or_stop()
            return
        while True:
            await asyncio.sleep(LOCK_CHECK_INTERVAL_S)
            if await self.seat.lock.alive():
                continue
            self._books_read = False
            log.warning("intake lost its writer lock; submissions paused until it is re-acquired")
            await until_done("re-acquiring the writer lock", self.seat.take)
            async with self.books_lock:  # no submission runs while the books are re-read
                await until_done("rebuilding the books", lambda: asyncio.to_thread(self.store.app.rebuild))
            self._books_read = True
            log.info("intake holds the writer lock again")

    async def release(self) -> None:
        self._books_read = False
        await self.seat.lock.release()
