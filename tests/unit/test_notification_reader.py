"""The shared notification reader (services.runtime.outbox), on an in-memory stand-in log."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any, cast

from services.runtime.eventstore import ServiceApplication
from services.runtime.outbox import NotificationReader


class InMemoryLog:
    """Stand-in for an application's notification log: ids with gaps (rolled-back inserts), and a
    count of the events read from it. `append`: another process's commit; `commit`: this process's,
    which its readers are told of (`ServiceApplication.on_recorded`)."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.events_read = 0
        self.listeners: list[Callable[[list[tuple[int, Any]]], None]] = []

    def on_recorded(self, listener: Callable[[list[tuple[int, Any]]], None]) -> None:
        self.listeners.append(listener)

    def append(self, *ids: int) -> None:
        self.ids.extend(ids)

    def commit(self, *ids: int) -> list[tuple[int, Any]]:
        """This process's commit; returns what its listeners are to be told (the caller tells them,
        possibly late: committing threads run their listeners in any order)."""
        self.append(*ids)
        return [(i, f"event {i}") for i in ids]

    def tell(self, committed: list[tuple[int, Any]]) -> None:
        for listener in self.listeners:
            listener(committed)

    def notifications(self, after: int, limit: int) -> list[tuple[int, Any]]:
        found = [(i, f"event {i}") for i in self.ids if i > after][:limit]
        self.events_read += len(found)
        return found


def reader_of(log: InMemoryLog, capacity: int = 1000) -> NotificationReader:
    return NotificationReader(cast(ServiceApplication, log), capacity=capacity)


async def drain(reader: NotificationReader, name: str, after: int, limit: int) -> list[int]:
    seen: list[int] = []
    while batch := await reader.read(name, after, limit):
        seen += [i for i, _ in batch]
        after = batch[-1][0]
    return seen


def test_every_follower_sees_the_whole_log_in_order_and_each_event_is_read_once() -> None:
    log = InMemoryLog([1, 2, 4, 5, 9, 10, 11, 15])
    reader = reader_of(log)
    reader.register("relay")
    reader.register("projection")

    async def scenario() -> tuple[list[int], list[int]]:
        first = await drain(reader, "relay", 0, 3)
        second = await drain(reader, "projection", 0, 2)
        return first, second

    first, second = asyncio.run(scenario())
    assert first == second == log.ids
    assert log.events_read == len(log.ids)


async def read_as_the_log_says(reader: NotificationReader, log: InMemoryLog, positions: dict[str, int],
                               rng: random.Random) -> tuple[str, list[int]]:
    """One read by a random follower with a random limit; it must be what the log holds after its
    position. Moves the follower on; returns who read and the ids read."""
    name = rng.choice(list(positions))
    limit = rng.choice((1, 3, 10))
    expected = log.notifications(positions[name], limit)
    log.events_read -= len(expected)  # that was the test's own look, not the reader's
    batch = await reader.read(name, positions[name], limit)
    assert batch == expected
    if batch:
        positions[name] = batch[-1][0]
    return name, [i for i, _ in batch]


def test_followers_interleaved_with_appends_match_direct_reads() -> None:
    rng = random.Random(7)
    log = InMemoryLog([])
    reader = reader_of(log, capacity=50)
    positions = {"a": 0, "b": 0, "c": 0}
    seen: dict[str, list[int]] = {name: [] for name in positions}
    next_id = 1

    async def scenario() -> None:
        nonlocal next_id
        for _ in range(400):
            if rng.random() < 0.4:
                next_id += rng.choice((1, 1, 2, 5))  # gaps, as rolled-back inserts leave
                log.append(next_id)
            name, read = await read_as_the_log_says(reader, log, positions, rng)
            seen[name] += read

    asyncio.run(scenario())
    for ids in seen.values():
        assert ids == sorted(set(ids))


def test_a_follower_behind_the_window_is_served_from_the_database() -> None:
    log = InMemoryLog(list(range(1, 101)))
    reader = reader_of(log, capacity=10)

    async def scenario() -> list[int]:
        assert len(await drain(reader, "fast", 0, 25)) == 100
        return await drain(reader, "restarted", 40, 7)

    assert asyncio.run(scenario()) == list(range(41, 101))


def test_the_window_keeps_at_most_its_capacity() -> None:
    log = InMemoryLog(list(range(1, 501)))
    reader = reader_of(log, capacity=30)

    async def scenario() -> None:
        await reader.read("stuck", 0, 1)  # never reads again: its position holds nothing back
        await drain(reader, "busy", 0, 20)

    asyncio.run(scenario())
    assert len(reader._events) <= 30


def test_this_processs_commits_are_served_from_memory_and_the_rest_from_the_log() -> None:
    """Commits of this process and of others, gaps, listeners told late and out of order: every
    follower still reads exactly what the log holds, and this process's own events mostly from memory."""
    rng = random.Random(11)
    log = InMemoryLog([])
    reader = reader_of(log, capacity=40)
    positions = {"relay": 0, "projection": 0}
    untold: list[list[tuple[int, Any]]] = []
    next_id = 0
    ours = 0

    async def scenario() -> None:
        nonlocal next_id, ours
        for _ in range(2000):
            if rng.random() < 0.5:
                count = rng.choice((1, 2, 5))
                ids = list(range(next_id + rng.choice((1, 1, 1, 3)), next_id + 1 + count + 5))[:count]
                next_id = ids[-1]
                if rng.random() < 0.2:
                    log.append(*ids)  # another process's commit
                else:
                    ours += len(ids)
                    untold.append(log.commit(*ids))
            if untold and rng.random() < 0.7:  # told now, or later than a newer commit
                log.tell(untold.pop(rng.randrange(len(untold))))
            await read_as_the_log_says(reader, log, positions, rng)

    asyncio.run(scenario())
    assert log.events_read < ours  # some of this process's own came from memory


def test_a_process_alone_reads_back_nothing_it_committed() -> None:
    log = InMemoryLog([])
    reader = reader_of(log)
    reader.register("relay")

    async def scenario() -> list[int]:
        seen = []
        for first in range(1, 100, 3):
            log.tell(log.commit(first, first + 1, first + 2))
            seen += await drain(reader, "relay", seen[-1] if seen else 0, 500)
        return seen

    assert asyncio.run(scenario()) == list(range(1, 100))
    assert log.events_read == 0
