"""Wiring of the payments service: application, decision and settlement consumers, the batching loop,
the order and disbursement relays, the read-side projection and the HTTP API.

Start-up: the books are rebuilt from the event store (one pass over the notification log, which also
rebuilds the projection's copy up to its recorded position); only then do the consumers start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import asyncpg
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import Span

from contracts.decisions import MONEY_KINDS, DecisionV1
from contracts.identifiers import mask_identifiers
from contracts.messages import SettlementV1
from contracts.topics import DISBURSEMENTS, ORDERS
from services.payments.adapters import projection
from services.payments.adapters.relay import DisbursementRelay, OrderRelay
from services.payments.application import DecisionItem, Outcome, PaymentsApplication, Step
from services.payments.config import PaymentsConfig
from services.payments.entrypoints.http import create_http
from services.payments.entrypoints.kafka import GROUP, SETTLEMENTS_GROUP, build_broker
from services.runtime.eventstore import kafka_tracking
from services.runtime.kafka import consuming, consuming_record
from services.runtime.outbox import LogFollower, NotificationReader, create_positions_table
from services.runtime.process import until_done
from services.runtime.settings import Settings
from services.runtime.telemetry import current_carrier, get_tracer, trace_id_hex

log = logging.getLogger(__name__)
RETRY_BACKOFF_MAX_S = 5.0


def _recorded_at(body: DecisionV1, record: Any) -> datetime:
    """When eligibility recorded the decision: the message's field, else its ce_time, else the Kafka
    record's timestamp (decisions published before the field existed). `record`: aiokafka's."""
    if body.recorded_at is not None:
        return body.recorded_at
    raw = dict(record.headers or ()).get("ce_time")
    if isinstance(raw, bytes):
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(raw.decode("utf-8", "replace").replace("Z", "+00:00"))
            if moment.tzinfo is not None:
                return moment
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


class PaymentsService:
    name = "payments"

    def __init__(self, settings: Settings, tracer_provider: trace.TracerProvider | None = None) -> None:
        self.settings = settings
        self.config = PaymentsConfig.from_settings(settings)  # refuse bad settings before anything starts
        self.tracer_provider = tracer_provider
        self.tracer = get_tracer(tracer_provider, self.name)
        self.broker, self.orders_publisher, self.disbursements_publisher = build_broker(settings, self)
        self.app: PaymentsApplication | None = None
        self.pool: asyncpg.Pool | None = None
        self.projection = projection.PaymentsProjection()
        self.followers: list[LogFollower] = []
        self.tasks: list[asyncio.Task[None]] = []
        self._batch_wake = asyncio.Event()
        self.ready = False
        self.http = create_http(self, self.tracer)

    async def start(self) -> None:
        self.app = app = await asyncio.to_thread(
            PaymentsApplication, self.settings, self.tracer_provider, self.config
        )
        self.pool = await asyncpg.create_pool(self.settings.pg_dsn(), min_size=1, max_size=6)
        await create_positions_table(self.pool, app.name)
        await projection.create_tables(self.pool)
        reader = NotificationReader(app)  # the three followers below read each event once
        view = LogFollower(projection.NAME, app, self.pool, self.projection, reader=reader)
        position = await self.pool.fetchval(
            f'SELECT position FROM "{app.name}".follower_positions WHERE name = $1', projection.NAME
        )
        self.projection.start_at(int(position or 0))
        t0 = asyncio.get_running_loop().time()
        last = await asyncio.to_thread(app.rebuild, self.projection.observe)
        log.info("payments: %d books rebuilt from the event store (up to notification %d) in %.2fs",
                 len(app.books()), last, asyncio.get_running_loop().time() - t0)
        self.followers = [
            LogFollower(f"kafka:{ORDERS.name}", app, self.pool,
                        OrderRelay(self.orders_publisher, self.tracer), reader=reader),
            LogFollower(f"kafka:{DISBURSEMENTS.name}", app, self.pool,
                        DisbursementRelay(self.disbursements_publisher, self.tracer), reader=reader),
            view,
        ]
        await self.broker.start()
        self.tasks = [asyncio.create_task(f.run(), name=f.name) for f in self.followers]
        self.tasks.append(asyncio.create_task(self._batching(), name="batching"))
        self.ready = True
        log.info("payments ready (batching: %s; default appropriations: %s)", self.config.batch_policy,
                 self.config.default_appropriations or "none")

    async def stop(self) -> None:
        self.ready = False
        await self.broker.stop()  # first: no message is half-handled when the relays stop
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pool is not None:
            await self.pool.close()
        if self.app is not None:
            self.app.close()

    def _changed(self) -> None:
        for follower in self.followers:
            follower.wake()
        self._batch_wake.set()

    # ---- Kafka --------------------------------------------------------------------------------------

    async def on_decisions(self, batch: Sequence[tuple[Any, DecisionV1]]) -> None:
        """Consecutive decisions, as (Kafka record, decision) pairs: recorded in one transaction (retried
        until committed), then the relays and the batching loop are woken once. Each decision keeps its
        own CONSUMER span, so its trace continues; each money decision's trace gets its commit span."""
        app = self.app
        assert app is not None and batch
        with ExitStack() as stack:
            spans: list[Span] = []
            items: list[DecisionItem] = []
            for record, body in batch:
                span = stack.enter_context(consuming_record(self.tracer, record, GROUP))
                span.set_attributes({"flexledger.book": body.book, "flexledger.decision_id": body.decision_id,
                                     "flexledger.kind": body.kind})
                spans.append(span)
                position = kafka_tracking(record.topic, record.partition, record.offset)
                money = body.kind in MONEY_KINDS  # only a money decision is stored, with its trace
                items.append(DecisionItem(body, position, _recorded_at(body, record),
                                          trace_id_hex(span) if money else None,
                                          current_carrier() if money else {}))
            # The commit span of the last trace is the current one; earlier money decisions get their own.
            commits = [
                self.tracer.start_span(
                    f"{app.name} db commit", context=trace.set_span_in_context(span),
                    attributes={"db.system": "postgresql", "db.namespace": app.name,
                                "flexledger.batch": len(items)},
                )
                for span, item in zip(spans[:-1], items, strict=False) if item.decision.kind in MONEY_KINDS
            ]
            try:
                outcomes = await until_done(
                    f"recording {len(items)} decisions from {items[0].decision.decision_id}",
                    lambda: asyncio.to_thread(app.record_decisions, items),
                )
            finally:
                for commit in commits:
                    commit.end()
            for span, outcome in zip(spans, outcomes, strict=True):
                span.set_attribute("flexledger.result", outcome.value)
        if any(outcome in (Outcome.RECORDED, Outcome.REFUSED) for outcome in outcomes):
            self._changed()

    async def on_settlement(self, body: SettlementV1, msg: KafkaMessage) -> None:
        """The bank's results for a batch: confirmations and returns, each applied once."""
        app = self.app
        assert app is not None
        record = msg.raw_message
        assert not isinstance(record, tuple)
        position = kafka_tracking(record.topic, record.partition, record.offset)
        with consuming(self.tracer, msg, SETTLEMENTS_GROUP) as span:
            span.set_attributes({"flexledger.book": body.book, "flexledger.batch_id": body.batch_id,
                                 "flexledger.results": len(body.results)})
            trace_id, carrier = trace_id_hex(span), current_carrier()
            outcome = await until_done(
                f"recording settlement {body.settlement_id}",
                lambda: asyncio.to_thread(app.record_settlement, body, position, trace_id, carrier),
            )
            span.set_attribute("flexledger.result", outcome.value)
        if outcome in (Outcome.RECORDED, Outcome.REFUSED):
            self._changed()

    # ---- the batching loop --------------------------------------------------------------------------

    async def _batching(self) -> None:
        """Cut disbursement batches as the policy makes them due. It sleeps until the next batch falls
        due by time, or until a change wakes it (a change may fill a batch, or make a first order ready);
        with nothing ready it sleeps until a change. The instructions go out through the outbox relay."""
        backoff_s = 0.1
        while True:
            self._batch_wake.clear()
            try:
                next_at = await self._cut_due()
                backoff_s = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("payments batching failed (%s); retrying in %.1fs", mask_identifiers(repr(exc)),
                          backoff_s)
                await asyncio.sleep(backoff_s)
                backoff_s = min(backoff_s * 2, RETRY_BACKOFF_MAX_S)
                continue
            wait_s = None if next_at is None else max(0.0, (next_at - datetime.now(UTC)).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._batch_wake.wait(), wait_s)

    async def _cut_due(self) -> datetime | None:
        """Cut the batches due now; when to look again (None: not before a change)."""
        app = self.app
        assert app is not None
        now = datetime.now(UTC)
        due, next_at = await asyncio.to_thread(app.due_books, now)
        if not due:
            return next_at
        with self.tracer.start_as_current_span(
            "payments batch cut", attributes={"flexledger.books": len(due)}
        ) as span:
            trace_id, carrier = trace_id_hex(span), current_carrier()
            cut = await asyncio.to_thread(app.cut_batches, now, trace_id, carrier, due)
            span.set_attribute("flexledger.batches", len(cut))
        if not cut:
            return next_at
        log.info("payments: %d disbursement batch(es) cut", len(cut))
        for follower in self.followers:
            follower.wake()
        return now  # at once: what is left in the books just cut falls due later

    # ---- HTTP ---------------------------------------------------------------------------------------

    async def appropriate(
        self, book: str, program: str, fiscal_year: int, amount_fen: int, reference: str | None
    ) -> tuple[str, dict[str, Any]]:
        return await self._operator_command(
            lambda app, trace_id, carrier: app.set_appropriation(
                book, program, fiscal_year, amount_fen, reference=reference, trace_id=trace_id,
                carrier=carrier,
            )
        )

    async def repay(
        self, book: str, beneficiary: str, amount_fen: int, reference: str
    ) -> tuple[str, dict[str, Any]]:
        return await self._operator_command(
            lambda app, trace_id, carrier: app.record_repayment(
                book, beneficiary, amount_fen, reference, trace_id=trace_id, carrier=carrier
            )
        )

    async def _operator_command(
        self, command: Callable[[PaymentsApplication, str | None, dict[str, str]], Step]
    ) -> tuple[str, dict[str, Any]]:
        """Run an operator command in the request's trace; wake the rest when it recorded something."""
        app = self.app
        assert app is not None
        trace_id, carrier = trace_id_hex(), current_carrier()
        result = await asyncio.to_thread(command, app, trace_id, carrier)
        if result.outcome is Outcome.RECORDED:
            self._changed()
        return result.outcome.value, result.detail

    async def orders(self, book: str, limit: int) -> list[dict[str, Any]]:
        assert self.pool is not None
        return await projection.orders(self.pool, book, limit)

    async def entries(self, book: str, limit: int) -> list[dict[str, Any]]:
        assert self.pool is not None
        return await projection.entries(self.pool, book, limit)

    async def totals(self, book: str, fiscal_year: int | None) -> dict[str, Any]:
        assert self.pool is not None
        rows = await projection.totals(self.pool, book, fiscal_year)
        ledger = await projection.trial_balance(self.pool, book)
        return {"book": book, "fiscal_year": fiscal_year, "programmes": rows,
                "trial_balance_fen": ledger["trial_balance_fen"]}

    async def balance(self, book: str, beneficiary: str) -> dict[str, Any] | None:
        assert self.pool is not None
        return await projection.balance(self.pool, book, beneficiary)

    async def trial_balance(self, book: str) -> dict[str, Any]:
        assert self.pool is not None
        return await projection.trial_balance(self.pool, book)

    async def progress(self, book: str) -> dict[str, Any]:
        assert self.pool is not None
        found = await projection.book_progress(self.pool, book)
        found["refusals"] = [
            {**r, "reason": mask_identifiers(r["reason"]), "cause_id": mask_identifiers(r["cause_id"])}
            for r in found["refusals"]
        ]
        return found

    async def reconciliation(self, book: str) -> dict[str, Any]:
        app = self.app
        assert app is not None
        return await asyncio.to_thread(app.reconciliation, book)

    def health(self) -> dict[str, Any]:
        alive = {task.get_name(): not task.done() for task in self.tasks}
        ok = self.ready and bool(alive) and all(alive.values())
        return {"status": "ok" if ok else "starting" if not self.ready else "degraded",
                "service": self.name, "followers": alive}
