"""Intake's writer: what HTTP submits is recorded here, one transaction at a time.

The books have one writer at a time (`books_lock`, shared with the agency feed and the writer-lock
watch): a book's `seq` is handed out by this process alone, in order. A bulk request is one batch
(`submit_many`). Single `POST /v1/facts` requests share commits (`submit_one`): each queues its fact
and waits for the writer; whoever gets it records everything queued by then in one transaction
(`IntakeApplication.submit_group`) and answers each request. After a commit, `on_recorded` wakes the
outbox relay (adapters/relay.py), which publishes the new events to Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.intake.adapters import metrics
from services.intake.adapters.store import IntakeStore
from services.intake.application import Incoming, Request, Result
from services.runtime.telemetry import current_carrier

log = logging.getLogger(__name__)


class Busy(Exception):
    """The books' writer was not free in time (HTTP answers 503 with Retry-After)."""


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: each is one request
class _Waiting:
    request: Request
    answer: asyncio.Future[Result]


class GroupCommit:
    def __init__(
        self, store: IntakeStore, books_lock: asyncio.Lock, on_recorded: Callable[[], None],
    ) -> None:
        self.store = store
        self.books_lock = books_lock
        self.on_recorded = on_recorded
        self.waiting: list[_Waiting] = []  # single submissions waiting for the next group commit
        self._recording: asyncio.Task[None] | None = None  # the group commit running, if any

    async def submit_many(
        self, book: str, items: Sequence[Incoming], *, wait_s: float | None = None
    ) -> list[Result]:
        """Record a batch in one transaction; Busy when the writer is not free within `wait_s`."""
        await self._acquire_writer(wait_s)
        try:
            results = await asyncio.to_thread(self.store.app.submit_many, book, items, current_carrier())
        finally:
            self.books_lock.release()
        self._recorded(results)
        return results

    async def submit_one(self, book: str, item: Incoming, *, wait_s: float | None = None) -> Result:
        """Record one fact, in a group commit with the single submissions waiting with it.

        Every request queues its fact, then waits for the writer; whoever gets the writer records
        everything queued by then in one transaction (`submit_group`) and answers each request, which
        then finds its answer ready. So requests that arrive while a commit runs share the next one,
        each answered only once its fact is recorded. Busy when the writer is not free within `wait_s`
        and the fact was not taken into a group."""
        waiting = _Waiting(Request(book, item, current_carrier()), asyncio.get_running_loop().create_future())
        self.waiting.append(waiting)
        try:
            await self._acquire_writer(wait_s)
        except Busy:
            if waiting in self.waiting:  # not taken by a group: nothing of it will be recorded
                self.waiting.remove(waiting)
                raise
        else:
            if waiting.answer.done():  # recorded by the group of an earlier request
                self.books_lock.release()
            else:
                group, self.waiting = self.waiting, []
                # A task, so that the group is recorded (and the writer released only after it) even
                # if this request is cancelled.
                self._recording = asyncio.create_task(self._record_group(group))
                self._recording.add_done_callback(lambda _: self.books_lock.release())
        return await asyncio.shield(waiting.answer)

    async def _record_group(self, group: list[_Waiting]) -> None:
        """Record a group in one transaction; if that fails, each on its own (so that a bad one fails
        alone), each request getting its result or its own exception."""
        try:
            results = await asyncio.to_thread(self.store.app.submit_group, [w.request for w in group])
        except Exception:
            if len(group) > 1:
                log.warning("a group commit of %d submissions failed; recording each on its own", len(group),
                            exc_info=True)
            for waiting in group:
                try:
                    result = (await asyncio.to_thread(self.store.app.submit_group, [waiting.request]))[0]
                except Exception as exc:
                    waiting.answer.set_exception(exc)
                else:
                    waiting.answer.set_result(result)
                    self._recorded([result])
            return
        for waiting, result in zip(group, results, strict=True):
            waiting.answer.set_result(result)
        self._recorded(results)

    async def _acquire_writer(self, wait_s: float | None) -> None:
        try:
            async with asyncio.timeout(wait_s):
                await self.books_lock.acquire()
        except TimeoutError:
            raise Busy(f"intake is busy with other submissions for more than {wait_s:.0f}s") from None

    def _recorded(self, results: Sequence[Result]) -> None:
        metrics.count_http(results)
        if any(not (r.replayed or r.refused) for r in results):  # neither recorded anything to publish
            self.on_recorded()
