"""Holding the writer lock (adapters/writer_lock.py) for the life of the process, and reading the books
only while holding it.

At start the lock is taken, then the books are rebuilt from the event store. Every
`LOCK_CHECK_INTERVAL_S` the session holding it is asked whether it is alive; when it has died (e.g.
PostgreSQL restarted), intake is not ready (HTTP answers 503) until it holds the lock again and has
re-read the books, which another process may have written meanwhile. No submission runs while they
are re-read: the watch takes `books_lock`, the writer's own lock (adapters/group_commit.py).
"""

from __future__ import annotations

import asyncio
import logging

from services.intake.adapters.store import IntakeStore
from services.intake.adapters.writer_lock import WriterLock
from services.runtime.process import until_done

log = logging.getLogger(__name__)
LOCK_CHECK_INTERVAL_S = 1.0


class WriterLockWatch:
    def __init__(self, lock: WriterLock, store: IntakeStore, books_lock: asyncio.Lock) -> None:
        self.lock = lock
        self.store = store
        self.books_lock = books_lock
        self._books_read = False  # read since the lock was last taken

    def held(self) -> bool:
        return self.lock.held

    def writing(self) -> bool:
        """Intake may write: it holds the lock and has read the books since taking it."""
        return self._books_read and self.lock.held

    async def acquire(self) -> None:
        """Take the lock (waiting for a predecessor to let go of it), then read the books. Retried at
        start while the database is unreachable: a lock already held is kept."""
        if not self.lock.held:
            await self.lock.acquire()
        await asyncio.to_thread(self.store.app.rebuild)
        self._books_read = True

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(LOCK_CHECK_INTERVAL_S)
            if await self.lock.alive():
                continue
            self._books_read = False
            log.warning("intake lost its writer lock; submissions paused until it is re-acquired")
            await until_done("re-acquiring the writer lock", self.lock.acquire)
            async with self.books_lock:  # no submission runs while the books are re-read
                await until_done("rebuilding the books", lambda: asyncio.to_thread(self.store.app.rebuild))
            self._books_read = True
            log.info("intake holds the writer lock again")

    async def release(self) -> None:
        self._books_read = False
        await self.lock.release()
