"""Intake is the single writer of each book's sequence: one process at a time holds this lock.

A PostgreSQL session-level advisory lock, held on a dedicated connection for the life of the process.
A second intake process waits for it (a restart overlapping its predecessor) and gives up after the
timeout, rather than handing out sequence numbers the first one also hands out. The lock dies with its
session (e.g. PostgreSQL restarts): `alive()` notices, and the service stops taking submissions
until it holds the lock again and has re-read the books (another process may have written meanwhile).
"""

from __future__ import annotations

import asyncio
import time

import asyncpg

# Any constant works, as long as nothing else in the database uses it as an advisory lock key.
LOCK_KEY = 0x466C_7849_6E74  # "FlxInt"
WAIT_TIMEOUT_S = 30.0


class WriterLockTimeout(RuntimeError):
    pass


class WriterLock:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def acquire(self, timeout_s: float = WAIT_TIMEOUT_S) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            deadline = time.monotonic() + timeout_s
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY):
                if time.monotonic() >= deadline:
                    raise WriterLockTimeout(
                        f"another intake process still holds the lock after {timeout_s:.0f}s")
                await asyncio.sleep(0.5)
        except BaseException:
            conn.terminate()  # a session left open could hold the lock with no one to use it
            raise
        self._conn = conn

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def alive(self, timeout_s: float = 5.0) -> bool:
        """Ask the session holding the lock; a dead session has lost it."""
        if self._conn is None or self._conn.is_closed():
            return False
        try:
            await asyncio.wait_for(self._conn.fetchval("SELECT 1"), timeout_s)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
            self._conn.terminate()
            self._conn = None
            return False
        return True

    async def release(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # closing the session releases the lock
            self._conn = None
