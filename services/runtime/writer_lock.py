"""One writer of a service's event store at a time: a PostgreSQL session-level advisory lock, and a fence.

Intake (each book's seq) and payments (each book's one stream, kept in memory) must be written by one
process at a time. The process that writes holds this lock on a dedicated connection for its life. A
second one waits for it: a restart overlapping its predecessor gives up after `WAIT_TIMEOUT_S`; a standby
(`settings.standby`) waits without a deadline and takes over when the active one's session ends — a
killed process's session ends with it, and so does its lock.

The fence (docs/design/services.md, "Active and standby"): a process may lose its session (PostgreSQL
restarted, a partition) and not notice for a moment while another takes the lock. So every insert into
its events table checks, inside the insert's transaction and after the table's insert lock
(services/runtime/eventstore.py), that this process's lock session still holds the lock; if not, the
transaction fails and nothing is written. A new holder first takes the table's insert lock once
(`barrier`), so that any insert that passed the check before commits before it reads the store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from psycopg.sql import SQL, Literal

from services.runtime.eventstore import INSERT_LOCK_CLASS

log = logging.getLogger(__name__)
WAIT_TIMEOUT_S = 30.0  # a second process that is not a standby gives up after this long
RETRY_INTERVAL_S = 0.5  # how often a waiting process tries the lock: the takeover's granularity
ALIVE_TIMEOUT_S = 5.0
LOCK_CHECK_INTERVAL_S = 1.0  # how often the holder asks whether its lock session is alive


class WriterLockTimeout(RuntimeError):
    pass


class WriterLock:
    """The lock `key` (a bigint below 2**62), held for `who` (a service's name, for messages)."""

    def __init__(self, dsn: str, key: int, who: str) -> None:
        assert 0 < key < 2**62, key
        self.dsn = dsn
        self.key = key
        self.who = who
        self._conn: asyncpg.Connection | None = None

    async def acquire(self, timeout_s: float | None = WAIT_TIMEOUT_S) -> None:
        """Wait for the lock, trying every `RETRY_INTERVAL_S`; `timeout_s` None: without a deadline."""
        conn = await asyncpg.connect(self.dsn)
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", self.key):
                if deadline is not None and time.monotonic() >= deadline:
                    raise WriterLockTimeout(
                        f"another {self.who} process still holds the lock after {timeout_s:.0f}s")
                await asyncio.sleep(RETRY_INTERVAL_S)
        except BaseException:
            conn.terminate()
            raise
        self._conn = conn

    @property
    def held(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    async def alive(self, timeout_s: float = ALIVE_TIMEOUT_S) -> bool:
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

    async def barrier(self, events_table: str) -> None:
        """Wait for inserts into `events_table` ("schema.table") in flight, e.g. of the previous holder
        that passed the fence just before its session ended: they commit (or fail) before this returns."""
        assert self._conn is not None
        async with self._conn.transaction():
            await self._conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", INSERT_LOCK_CLASS,
                                     events_table)

    def fence(self, recorder: Any) -> None:
        """From now on, every insert of `recorder` (a process recorder with `lock_table_statements`)
        fails unless this lock session still holds the lock. Call after each `acquire`."""
        assert self._conn is not None
        unfenced = getattr(recorder, "unfenced_lock_statements", None)
        if unfenced is None:
            unfenced = recorder.unfenced_lock_statements = list(recorder.lock_table_statements)
        recorder.lock_table_statements = [*unfenced, fence_statement(self.key, self._conn.get_server_pid(),
                                                                     self.who)]

    async def release(self) -> None:
        if self._conn is not None:
            await self._conn.close()  # closing the session releases the lock
            self._conn = None


FENCED = "fenced: "  # how the fence's error begins (`fence_statement`, `is_fenced`)


def is_fenced(error: BaseException) -> bool:
    """Whether a write failed on the fence: this process no longer holds its writer lock."""
    return FENCED in str(error)


def fence_statement(key: int, holder_pid: int, who: str) -> Any:
    """A statement that fails unless the backend `holder_pid` holds the session advisory lock `key`.
    (pg_locks shows a bigint advisory key as its high and low 32 bits, with objsubid 1.)"""
    return SQL(
        "DO $fence$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' "
        "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
        "AND classid = {high}::bigint::oid AND objid = {low}::bigint::oid AND objsubid = 1 "
        "AND pid = {pid} AND granted) THEN "
        "RAISE EXCEPTION {message}, {who}; END IF; END $fence$"
    ).format(message=Literal(FENCED + "this % process no longer holds its writer lock"),
             high=Literal(key >> 32), low=Literal(key & 0xFFFF_FFFF), pid=Literal(holder_pid),
             who=Literal(who))


class Seat:
    """What a service with a writer lock registers as its start step and watch: the lock taken (as a
    standby: without a deadline, its role `standby` meanwhile), in-flight inserts waited for, the
    recorder fenced; then watched. `role` is None for a service not run as active and standby."""

    def __init__(self, lock: WriterLock, recorder: Callable[[], Any], *, standby: bool) -> None:
        self.lock = lock
        self.recorder = recorder  # the process recorder, once the event store is open
        self.standby = standby
        self.role: str | None = "standby" if standby else None

    async def take(self) -> None:
        if not self.lock.held:
            await self.lock.acquire(None if self.standby else WAIT_TIMEOUT_S)
        recorder = self.recorder()
        await self.lock.barrier(f"{recorder.datastore.schema}.{recorder.events_table_name}")
        self.lock.fence(recorder)
        if self.standby:
            self.role = "active"
            log.info("%s holds its writer lock: active", self.lock.who)

    async def watch_or_stop(self) -> None:
        """As the active one of a pair: when the lock's session ends, another instance may take over and
        this one's consumers are fenced out of their groups (they share a static group member name), so
        it stops, and its supervisor starts it again, as a standby."""
        while True:
            await asyncio.sleep(LOCK_CHECK_INTERVAL_S)
            if not await self.lock.alive():
                break
        self.role = "lost"
        log.error("%s lost its writer lock; stopping (its supervisor starts it again as a standby)",
                  self.lock.who)
        os.kill(os.getpid(), signal.SIGTERM)  # uvicorn stops serving, then the service stops
