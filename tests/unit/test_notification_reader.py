"""The shared notification reader (services.runtime.outbox), on an in-memory stand-in log."""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast

from services.runtime.eventstore import ServiceApplication
from services.runtime.outbox import NotificationReader


class InMemoryLog:
    """Stand-in for an application's notification log: ids with gaps (rolled-back inserts), and a
    count of the events read from it."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.events_read = 0

    def append(self, *ids: int) -> None:
        self.ids.extend(ids)

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
            name = rng.choice(list(positions))
            limit = rng.choice((1, 3, 10))
            expected = log.notifications(positions[name], limit)
            log.events_read -= len(expected)  # that was the test's own look, not the reader's
            batch = await reader.read(name, positions[name], limit)
            assert batch == expected
            if batch:
                positions[name] = batch[-1][0]
                seen[name] += [i for i, _ in batch]

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
