"""Wiring of the intake service: application, writer lock, key ring, outbox relay, Kafka and HTTP."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace

from contracts.topics import FACTS
from services.intake.adapters.operator_key import ensure_operator_key
from services.intake.adapters.relay import FactRelay
from services.intake.adapters.writer_lock import WriterLock
from services.intake.application import Incoming, IntakeApplication, Request, Result, Source
from services.intake.domain.credentials import (
    KeyIssued,
    KeyRing,
    authenticate,
    bearer_token,
    parse_api_key,
    secret_hash,
)
from services.intake.domain.feed import AGENCY_HEADER, NotTaken, read_agency_message
from services.intake.domain.limits import Limits, RateDecision, RateLimiter
from services.intake.domain.principals import Principal
from services.intake.entrypoints.http import Busy, create_http
from services.intake.entrypoints.kafka import GROUP, build_broker
from services.runtime.kafka import consuming
from services.runtime.outbox import LogFollower, create_positions_table
from services.runtime.process import until_done
from services.runtime.settings import Settings
from services.runtime.telemetry import current_carrier, get_tracer

log = logging.getLogger(__name__)
LOCK_CHECK_INTERVAL_S = 1.0
KEY_REFRESH_INTERVAL_S = 1.0  # a revoked key stops working within about this long
# An unknown key id re-reads the ring (it may have just been issued), at most this often.
KEY_MISS_REFRESH_BURST, KEY_MISS_REFRESH_PER_S = 50, 20.0
# Events the relay publishes per step (one read of the log, one wait for the broker, one position
# write): large enough that a bulk request goes out in a few steps, as a few large record batches.
RELAY_BATCH = 2000


def limits_from(settings: Settings) -> Limits:
    return Limits(
        max_bulk_rows=settings.intake_max_bulk_rows, max_bulk_bytes=settings.intake_max_bulk_bytes,
        rate_burst_facts=settings.intake_rate_burst, rate_facts_per_s=float(settings.intake_rate_per_s),
        request_timeout_s=float(settings.intake_request_timeout_s),
    )


class IntakeService:
    name = "intake"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.settings = settings
        self.limits = limits_from(settings)
        self.tracer_provider = tracer_provider
        self.tracer = get_tracer(tracer_provider, self.name)
        self.broker, self.publisher, self.dead_letter_publisher = build_broker(settings, self)
        self.writer_lock = WriterLock(settings.pg_dsn())
        self.lock = asyncio.Lock()  # one submission at a time: the book's sequence has one writer
        self._queue: list[_Waiting] = []  # single submissions waiting for the next group commit
        self._recording: asyncio.Task[None] | None = None  # the group commit running, if any
        self.rate = RateLimiter(self.limits.rate_burst_facts, self.limits.rate_facts_per_s)
        self.ring = KeyRing()
        self.ring_version = 0
        self._keys_lock = asyncio.Lock()
        self._refresh_started_s = 0.0
        self._miss_refreshes = RateLimiter(KEY_MISS_REFRESH_BURST, KEY_MISS_REFRESH_PER_S)
        self.app: IntakeApplication | None = None
        self.pool: asyncpg.Pool | None = None
        self.relay: LogFollower | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.ready = False
        self.http = create_http(self, self.tracer)

    async def start(self) -> None:
        await self.writer_lock.acquire()
        self.app = await asyncio.to_thread(
            IntakeApplication, self.settings, self.tracer_provider,
            dead_letter_max_bytes=self.limits.max_fact_bytes,
        )
        await asyncio.to_thread(self.app.rebuild)
        self._bootstrap_operator()
        await self.refresh_keys()
        self.pool = await asyncpg.create_pool(self.settings.pg_dsn(), min_size=1, max_size=4)
        await create_positions_table(self.pool, self.app.name)
        relay = FactRelay(self.publisher, self.tracer, self.dead_letter_publisher)
        self.relay = LogFollower(f"kafka:{FACTS.name}", self.app, self.pool, relay, batch_limit=RELAY_BATCH)
        await self.broker.start()
        self.tasks = [
            asyncio.create_task(self.relay.run(), name="intake-relay"),
            asyncio.create_task(self._keep_writer_lock(), name="intake-writer-lock"),
            asyncio.create_task(self._follow_keys(), name="intake-keys"),
        ]
        self.ready = True
        log.info("intake ready: %d books, %d keys", len(self.app.books), len(self.ring.records))

    async def stop(self) -> None:
        self.ready = False
        await self.broker.stop()  # first: no agency message is half-handled when the rest stops
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
        if self.app is not None:
            self.app.close()
        await self.writer_lock.release()

    async def _keep_writer_lock(self) -> None:
        """Watch the writer lock; when its session dies, stop submissions until it is held again."""
        assert self.app is not None
        app = self.app
        while True:
            await asyncio.sleep(LOCK_CHECK_INTERVAL_S)
            if await self.writer_lock.alive():
                continue
            self.ready = False
            log.warning("intake lost its writer lock; submissions paused until it is re-acquired")
            await until_done("re-acquiring the writer lock", self.writer_lock.acquire)
            async with self.lock:  # no submission runs while the books are re-read
                await until_done("rebuilding the books", lambda: asyncio.to_thread(app.rebuild))
            self.ready = True
            log.info("intake holds the writer lock again")

    # ---- keys -----------------------------------------------------------------------------------

    def _bootstrap_operator(self) -> None:
        key = ensure_operator_key(self.settings)
        if key is None:
            log.info("no bootstrap operator key (operator_key=off)")
            return
        self.ring.apply(KeyIssued(key.key_id, "operator", None, secret_hash(key.key_id, key.secret),
                                  datetime.now(UTC), "bootstrap operator key (settings)"))
        log.info("bootstrap operator key %s accepted", key.key_id)

    async def refresh_keys(self, *, unless_since: float | None = None) -> int:
        """Fold the key ring's changes stored since the last refresh; how many there were. With
        `unless_since` (a monotonic time), skip if a refresh started after it (it saw what we want)."""
        assert self.app is not None
        app = self.app
        async with self._keys_lock:
            if unless_since is not None and self._refresh_started_s > unless_since:
                return 0
            self._refresh_started_s = time.monotonic()
            changes = await asyncio.to_thread(app.key_changes, self.ring_version)
            for version, event in changes:
                self.ring.apply(event)
                self.ring_version = version
        return len(changes)

    async def _follow_keys(self) -> None:
        while True:
            await asyncio.sleep(KEY_REFRESH_INTERVAL_S)
            try:
                await self.refresh_keys()
            except Exception:
                log.exception("reading the key ring failed; retrying")
            self.rate.prune(now_s=time.monotonic())

    async def authenticate(self, authorization: str | None) -> Principal | None:
        token = bearer_token(authorization)
        parsed = parse_api_key(token) if token is not None else None
        if parsed is not None and parsed.key_id not in self.ring.records:
            # Maybe issued a moment ago: read the ring now (bounded: unknown ids cannot flood the store).
            arrived_s = time.monotonic()
            if self._miss_refreshes.take("miss", now_s=arrived_s).allowed:
                try:
                    await self.refresh_keys(unless_since=arrived_s)
                except Exception:
                    log.exception("reading the key ring failed")
        return authenticate(self.ring, token, now=datetime.now(UTC))

    def take_rate(self, principal: Principal, cost: int) -> RateDecision:
        cost = min(cost, self.limits.max_bulk_rows)
        return self.rate.take(principal.key_id, now_s=time.monotonic(), cost=cost)

    # ---- submissions ----------------------------------------------------------------------------

    async def submit(self, book: str, raw: Any) -> Result:
        return (await self.submit_many(book, [Incoming(raw)]))[0]

    async def submit_many(
        self, book: str, items: Sequence[Incoming], *, wait_s: float | None = None
    ) -> list[Result]:
        """Record a batch in one transaction; Busy when the writer is not free within `wait_s`."""
        assert self.app is not None
        app = self.app
        await self._acquire_writer(wait_s)
        try:
            results = await asyncio.to_thread(app.submit_many, book, items, current_carrier())
        finally:
            self.lock.release()
        self._wake_relay(results)
        return results

    async def submit_one(self, book: str, item: Incoming, *, wait_s: float | None = None) -> Result:
        """Record one fact, in a group commit with the single submissions waiting with it.

        Every request queues its fact, then waits for the writer; whoever gets the writer records
        everything queued by then in one transaction (`submit_group`) and answers each request, which
        then finds its answer ready. So requests that arrive while a commit runs share the next one,
        each answered only once its fact is recorded. Busy when the writer is not free within `wait_s`
        and the fact was not taken into a group."""
        waiting = _Waiting(Request(book, item, current_carrier()), asyncio.get_running_loop().create_future())
        self._queue.append(waiting)
        try:
            await self._acquire_writer(wait_s)
        except Busy:
            if waiting in self._queue:  # not taken by a group: nothing of it will be recorded
                self._queue.remove(waiting)
                raise
        else:
            if waiting.answer.done():  # recorded by the group of an earlier request
                self.lock.release()
            else:
                group, self._queue = self._queue, []
                # A task, so that the group is recorded (and the writer released only after it) even
                # if this request is cancelled.
                self._recording = asyncio.create_task(self._record_group(group))
                self._recording.add_done_callback(lambda _: self.lock.release())
        return await asyncio.shield(waiting.answer)

    async def _record_group(self, group: list[_Waiting]) -> None:
        """Record a group in one transaction; if that fails, each on its own (so that a bad one fails
        alone), each request getting its result or its own exception."""
        assert self.app is not None
        app = self.app
        try:
            results = await asyncio.to_thread(app.submit_group, [w.request for w in group])
        except Exception:
            if len(group) > 1:
                log.warning("a group commit of %d submissions failed; recording each on its own", len(group),
                            exc_info=True)
            for waiting in group:
                try:
                    result = (await asyncio.to_thread(app.submit_group, [waiting.request]))[0]
                except Exception as exc:
                    waiting.answer.set_exception(exc)
                else:
                    waiting.answer.set_result(result)
                    self._wake_relay([result])
            return
        for waiting, result in zip(group, results, strict=True):
            waiting.answer.set_result(result)
        self._wake_relay(results)

    async def _acquire_writer(self, wait_s: float | None) -> None:
        try:
            async with asyncio.timeout(wait_s):
                await self.lock.acquire()
        except TimeoutError:
            raise Busy(f"intake is busy with other submissions for more than {wait_s:.0f}s") from None

    def _wake_relay(self, results: Sequence[Result]) -> None:
        if self.relay is not None and any(not r.replayed for r in results):
            self.relay.wake()

    async def on_agency_fact(self, msg: KafkaMessage) -> None:
        """One agency message: recorded as a fact (and dead-lettered if rejected) or dead-lettered, with
        its position, in one transaction; retried until committed, so the handler never raises."""
        assert self.app is not None and self.relay is not None
        app = self.app
        record = msg.raw_message
        assert not isinstance(record, tuple), "batch consumption is not used"
        body = bytes(record.value or b"")
        headers = list(record.headers or ())
        with consuming(self.tracer, msg, GROUP) as span:
            try:
                verdict = read_agency_message(headers, body, self.limits)
            except Exception:  # a bug must not lose the message: keep it with the reason
                log.exception("reading an agency message failed")
                verdict = NotTaken(500, "intake could not read this message (internal error); "
                                        "the operators have its log")
            agency = verdict.principal.role if not isinstance(verdict, NotTaken) else verdict.agency
            source = Source(record.topic, record.partition, record.offset, body,
                            agency if agency is not None else _header_text(headers))
            carrier = current_carrier()
            span.set_attribute("flexledger.agency", source.agency or "-")

            def consume() -> str:
                if app.already_consumed(source):
                    return "redelivered"
                if isinstance(verdict, NotTaken):
                    kept = app.dead_letter(
                        source, book=verdict.book, fact_id=verdict.fact_id, status=verdict.status,
                        reason=verdict.reason, trace_carrier=carrier,
                    )
                    return "dead-lettered" if kept else "redelivered"
                item = Incoming(verdict.raw, verdict.problem)
                results = app.submit_many(verdict.book, [item], carrier, tracking=source.tracking,
                                          source=source)
                result = results[0]
                return "duplicate" if result.replayed else result.outcome

            async def attempt() -> str:
                async with self.lock:
                    return await asyncio.to_thread(consume)

            where = f"{record.topic}[{record.partition}]@{record.offset}"
            outcome = await until_done(f"taking in {where}", attempt)
            span.set_attribute("flexledger.result", outcome)
        if outcome not in ("redelivered", "duplicate"):
            self.relay.wake()

    # ---- reads ----------------------------------------------------------------------------------

    def last_seq(self, book: str) -> int:
        return self.app.last_seq(book) if self.app else 0

    def health(self) -> dict[str, Any]:
        alive = {task.get_name(): not task.done() for task in self.tasks}
        ok = self.ready and self.writer_lock.held and bool(alive) and all(alive.values())
        return {
            "status": "ok" if ok else "degraded" if alive else "starting",
            "service": self.name, "writer_lock": self.writer_lock.held, "tasks": alive,
            "relayed_position": self.relay.position if self.relay else 0, "keys": len(self.ring.records),
        }


@dataclass(frozen=True, slots=True, eq=False)  # compared by identity: each is one request
class _Waiting:
    request: Request
    answer: asyncio.Future[Result]


def _header_text(headers: Sequence[tuple[str, bytes | None]]) -> str | None:
    """The agency header as it came, for a dead letter, when it could be read at all."""
    for name, value in headers:
        if name.lower() == AGENCY_HEADER and value is not None:
            text = value.decode("utf-8", "replace")[:40]
            return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return None
