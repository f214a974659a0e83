"""The order-events topic is enough to mirror every payment order: a subscriber that reads only
`sandbox.flexledger.payments.order-events.v1` (validating each record and its CloudEvents headers,
de-duplicating by ce_id) rebuilds exactly the orders payments' own read side holds — through every
state: awaiting budget, committed, batched, returned, paid, cancelled and offset.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from contracts.cloudevents import from_headers
from contracts.messages import OrderEventV1
from contracts.topics import ORDER_EVENTS, sandbox_twin
from flexledger.devstack.credentials import client_args
from flexledger.subscribe import Refused, subscribe
from services.payments.domain import BankRule
from services.runtime.settings import Settings
from tests.integration.test_payments import (  # noqa: F401  (pay, payments_log_start: fixtures)
    CST,
    OTHER_WORKER,
    WORKER,
    Payments,
    bank,
    decision,
    eventually,
    pay,
    payments_log_start,
)

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

COMPARED = ("decision_id", "program", "fiscal_year", "beneficiary", "subject", "ref", "month", "granted_fen",
            "amount_fen", "cancelled_fen", "offset_fen", "paid_fen", "in_transit_fen", "unpaid_fen", "state",
            "awaiting_reason", "attempts", "last_return_reason")


@dataclass
class MirroredOrder:
    """One order as a subscriber folds it from its changes (docs/design/contracts.md)."""

    decision_id: str
    program: str
    fiscal_year: int
    beneficiary: str
    subject: str | None
    ref: str | None
    month: str | None
    granted_fen: int
    amount_fen: int
    committed: bool = False
    cancelled_fen: int = 0
    offset_fen: int = 0
    paid_fen: int = 0
    in_transit_fen: int = 0
    awaiting_reason: str | None = None
    attempts: int = 0
    last_return_reason: str | None = None

    @property
    def unpaid_fen(self) -> int:
        return self.amount_fen - self.offset_fen - self.paid_fen - self.in_transit_fen

    @property
    def state(self) -> str:
        if self.amount_fen == 0:
            return "cancelled"
        if not self.committed:
            return "awaiting_budget"
        if self.in_transit_fen:
            return "in_transit"
        return "ready" if self.unpaid_fen else "paid"

    def apply(self, change: OrderEventV1) -> None:
        amount = change.amount_fen
        match change.change:
            case "awaiting_budget":
                self.awaiting_reason = change.reason
            case "committed":
                self.committed, self.awaiting_reason = True, None
            case "cancelled":
                self.amount_fen -= amount
                self.cancelled_fen += amount
            case "offset":
                self.offset_fen += amount
            case "batched":
                self.in_transit_fen += amount
                self.attempts = change.attempt or self.attempts
            case "paid":
                self.in_transit_fen -= amount
                self.paid_fen += amount
            case "returned":
                self.in_transit_fen -= amount
                self.last_return_reason = change.reason


def mirror(changes: list[OrderEventV1]) -> dict[str, MirroredOrder]:
    orders: dict[str, MirroredOrder] = {}
    for change in changes:
        if change.change == "created":
            assert change.program and change.beneficiary and change.fiscal_year and change.decision_id
            orders[change.order_id] = MirroredOrder(
                decision_id=change.decision_id, program=change.program, fiscal_year=change.fiscal_year,
                beneficiary=change.beneficiary, subject=change.subject, ref=change.ref, month=change.month,
                granted_fen=change.amount_fen, amount_fen=change.amount_fen,
            )
        else:
            orders[change.order_id].apply(change)
    return orders


async def _topic_alone(settings: Settings, book: str) -> list[OrderEventV1]:
    """The book's changes, read from the beginning of the topic as a subscriber would: each record
    validated, its CloudEvents headers read, repeats (the same ce_id) dropped."""
    topic = sandbox_twin(ORDER_EVENTS)
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
    await consumer.start()
    seen: set[str] = set()
    changes: list[OrderEventV1] = []
    try:
        partitions = [TopicPartition(topic.name, p) for p in range(topic.partitions)]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(*partitions, timeout_ms=1000)).values():
                for record in records:
                    event = from_headers(list(record.headers))
                    assert record.value is not None
                    body = OrderEventV1.model_validate_json(record.value)
                    assert event.id == body.event_id and event.type == "flexledger.payments.order-event.v1"
                    if body.book == book and event.id not in seen:
                        seen.add(event.id)
                        changes.append(body)
    finally:
        await consumer.stop()
    return changes


async def _read_side(settings: Settings, book: str) -> dict[str, dict[str, Any]]:
    conn = await asyncpg.connect(settings.pg_dsn())
    try:
        rows = await conn.fetch("SELECT * FROM payments.payments_book_orders WHERE book = $1", book)
    finally:
        await conn.close()
    return {row["order_id"]: {name: row[name] for name in COMPARED} for row in rows}


async def test_a_subscriber_mirrors_every_order_from_the_order_events_alone(pay: Payments) -> None:  # noqa: F811
    book = pay.book()
    assert (await pay.appropriate(book, "social_insurance", 2024, 1_000_000)).status_code == 200
    first = decision(book, "grant", 60_000)
    returned_once = decision(book, "grant", 66_667, beneficiary=OTHER_WORKER, subject=OTHER_WORKER)
    unfunded = decision(book, "grant", 37_000, program="training", ref="first-aid", month=None,
                        recorded_at=datetime(2024, 5, 2, 10, tzinfo=CST))  # no training budget yet
    rule = BankRule(suffixes=("3032",), returned_attempts=1, reason="account frozen (simulated)")
    async with bank(pay.settings, book, rule=rule):
        await pay.publish(first, returned_once, unfunded)
        await pay.until_order(book, first.decision_id, "paid")
        await pay.until_order(book, returned_once.decision_id, "paid")
        await pay.until_order(book, unfunded.decision_id, "awaiting_budget")
        # after payment: a receivable; before budget: a cancellation
        await pay.publish(decision(book, "clawback", 60_000),
                          decision(book, "clawback", 37_000, program="training", ref="first-aid", month=None,
                                   recorded_at=datetime(2024, 5, 3, 10, tzinfo=CST)))
        await pay.until_order(book, unfunded.decision_id, "cancelled")
        assert (await pay.appropriate(book, "training", 2024, 1_000_000)).status_code == 200
        later = decision(book, "grant", 100_000, program="training", ref="safe-riding-101", month=None,
                         recorded_at=datetime(2024, 6, 1, 9, tzinfo=CST))
        await pay.publish(later)
        await pay.until_order(book, later.decision_id, "paid")  # 60,000 of it settles the receivable
    await pay.caught_up(book)
    expected = await _read_side(pay.settings, book)

    async def mirrored() -> dict[str, dict[str, Any]] | None:
        changes = await _topic_alone(pay.settings, book)
        found = {order_id: {name: getattr(order, name) for name in COMPARED}
                 for order_id, order in mirror(changes).items()}
        return found if found == expected else None

    assert await eventually("the mirror to match payments' read side", mirrored) == expected
    kinds = {change.change for change in await _topic_alone(pay.settings, book)}
    assert kinds == {"created", "awaiting_budget", "committed", "cancelled", "offset", "batched", "paid",
                     "returned"}
    assert asdict(mirror(await _topic_alone(pay.settings, book))[later.decision_id])["offset_fen"] == 60_000

    # `flexledger subscribe` prints the same changes, once each, as the sandbox books' bank reads them
    out = io.StringIO()
    twin = sandbox_twin(ORDER_EVENTS).name
    await subscribe(client_args(pay.settings, "sandbox_finance"), twin, out, from_beginning=True, book=book,
                    stop_at_end=True)
    printed = [json.loads(line) for line in out.getvalue().splitlines()]
    read_alone = sorted(await _topic_alone(pay.settings, book), key=lambda change: change.event_id)
    assert sorted((OrderEventV1.model_validate(line["data"]) for line in printed),
                  key=lambda change: change.event_id) == read_alone
    with pytest.raises(Refused, match="may not read it"):  # an outside subscriber never sees a sandbox book
        await subscribe(client_args(pay.settings, "subscriber"), twin, io.StringIO(), stop_at_end=True)
