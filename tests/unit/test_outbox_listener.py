"""A follower gives its LISTEN connection back to the pool after every failed step, also when the
connection is broken: one kept checked out per failure had emptied the pool after two database
restarts, and every read of the service then waited forever."""

from __future__ import annotations

import asyncio
from typing import Any

from asyncpg.exceptions import InternalClientError

from services.runtime.outbox import LogFollower


class _BrokenConnection:
    """What a LISTEN connection looks like when the database died during an operation on it."""

    def is_closed(self) -> bool:
        return False

    async def add_listener(self, channel: str, callback: Any) -> None:
        return None

    async def remove_listener(self, channel: str, callback: Any) -> None:
        raise InternalClientError("cannot switch to state 15; another operation (2) is in progress")


class _Pool:
    def __init__(self) -> None:
        self.checked_out = 0
        self.acquired = 0

    async def acquire(self) -> _BrokenConnection:
        self.checked_out += 1
        self.acquired += 1
        return _BrokenConnection()

    async def release(self, conn: _BrokenConnection, timeout: float | None = None) -> None:
        self.checked_out -= 1


class _Reader:
    def register(self, name: str) -> None:
        return None


class _App:
    name = "test"


async def test_a_broken_listener_connection_is_given_back_after_each_failed_step() -> None:
    pool = _Pool()
    follower = LogFollower("test", _App(), pool, handler=None, reader=_Reader())  # type: ignore[arg-type]

    async def failing_step() -> int:
        raise ConnectionResetError("the database restarted")

    follower.step = failing_step  # type: ignore[method-assign]
    running = asyncio.create_task(follower.run())
    await asyncio.sleep(0.8)  # failures at 0, 0.1, 0.3, 0.7 s (backoff doubling from 0.1 s)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)
    assert pool.acquired >= 3
    assert pool.checked_out == 0
