"""Payments on the real stack: the three services as processes on the real broker and database, a
simulated bank on the settlement topics, one sandbox book per test.

Decisions come in two ways: facts POSTed to intake (through eligibility, as in production), and
`DecisionV1` messages published straight onto the decisions topic with aiokafka, for precise
control of amounts, lines and times. After every test, each book it used is balanced on the read side
(trial balance 0) and the live book reconciles (no problems).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.partitioner import DefaultPartitioner

from contracts.cloudevents import CloudEvent
from contracts.decisions import DecisionV1
from contracts.topics import DECISIONS, SANDBOX_DECISIONS, SANDBOX_SETTLEMENTS, topic_for
from flexledger.bank_simulator import BankSimulator
from flexledger.devstack.credentials import client_args
from flexledger.pipeline import run_pipeline
from flexledger.scenario_file import load_scenario
from services.payments.domain import BankRule
from services.runtime.keys import decisions_mac_key, partition_key_secret
from services.runtime.message_auth import tag_header
from services.runtime.publishing import PartitionKeys
from services.runtime.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

CST = timezone(timedelta(hours=8))
VECTORS = sorted((Path(__file__).resolve().parents[1] / "vectors").glob("*.yaml"))
TIMEOUT_S = 60.0
RULE_SET = "wuxi-2021-26/1"
ENTERPRISE = "91320213MA1XY0001L"
WORKER = "320213197804121019"
OTHER_WORKER = "320205199907043032"
Record = ConsumerRecord[bytes, bytes]


# ---- helpers ---------------------------------------------------------------------------------------


async def eventually(what: str, probe: Callable[[], Awaitable[Any]], timeout_s: float = TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while True:
        last = await probe()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


class Payments:
    """The payments service's HTTP API and the decisions topics, for one test. Its books are sandbox
    books: their decisions, orders, disbursements and settlements are on the `sandbox.` twins."""

    def __init__(self, settings: Settings, client: httpx.AsyncClient, books: list[str]) -> None:
        self.settings = settings
        self.client = client
        self.books = books
        self.base = f"http://127.0.0.1:{settings.payments_port}"

    def book(self) -> str:
        name = f"pay-{uuid.uuid4().hex[:16]}"
        self.books.append(name)
        return name

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(self.base + path, params=params or None)
        assert response.status_code == 200, response.text
        return response.json()

    async def appropriate(self, book: str, program: str, year: int, amount_fen: int) -> httpx.Response:
        body = {"program": program, "fiscal_year": year, "amount_fen": amount_fen}
        return await self.client.post(f"{self.base}/v1/books/{book}/appropriations", json=body)

    async def publish(self, *decisions: DecisionV1) -> list[tuple[int, int]]:
        """Publish decisions as eligibility's relay does; their (partition, offset)."""
        producer = AIOKafkaProducer(**client_args(self.settings, "eligibility"), acks="all",
                                    enable_idempotence=True)
        keys, mac_key = PartitionKeys(partition_key_secret(self.settings)), decisions_mac_key(self.settings)
        await producer.start()
        try:
            sent = []
            for d in decisions:
                topic = topic_for(DECISIONS, d.book, self.settings.production_book_set).name
                event = CloudEvent(id=d.decision_id, source="/flexledger/eligibility",
                                   type="flexledger.eligibility.decision.v1",
                                   subject=f"{d.book}/{d.decision_id}", time=d.recorded_at)
                value = d.model_dump_json().encode()
                sent.append(await producer.send(
                    topic, value, key=keys(d.book, d.beneficiary or "-").encode(),
                    headers=[*((k, v.encode()) for k, v in event.headers().items()),
                             tag_header(mac_key, topic, value)],
                ))
            return [((meta := await future).partition, meta.offset) for future in sent]
        finally:
            await producer.stop()

    async def orders(self, book: str) -> dict[str, dict[str, Any]]:
        return {o["order_id"]: o for o in (await self.get(f"/v1/books/{book}/orders"))["orders"]}

    async def entries(self, book: str) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = (await self.get(f"/v1/books/{book}/entries"))["entries"]
        return entries

    async def totals(self, book: str, year: int | None = None) -> dict[str, dict[str, Any]]:
        found = await self.get(f"/v1/books/{book}/totals", **({"fiscal_year": year} if year else {}))
        return {row["program"]: row for row in found["programmes"]}

    async def balance(self, book: str, beneficiary: str) -> dict[str, Any]:
        found: dict[str, Any] = await self.get(f"/v1/books/{book}/balances/{beneficiary}")
        return found

    async def caught_up(self, book: str) -> dict[str, Any]:
        """Once the read side shows every record of the live book: the book's reconciliation."""

        async def probe() -> dict[str, Any] | None:
            live = await self.get(f"/v1/books/{book}/reconciliation")
            view = await self.get(f"/v1/books/{book}/progress")
            return live if live["stream_version"] == view["stream_version"] else None

        found: dict[str, Any] = await eventually(f"the read side of {book}", probe)
        return found

    async def until_order(self, book: str, order_id: str, state: str) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            order = (await self.orders(book)).get(order_id)
            return order if order is not None and order["state"] == state else None

        found: dict[str, Any] = await eventually(f"order {order_id[:8]} {state}", probe)
        await self.caught_up(book)
        return found

    async def snapshot(self, book: str) -> dict[str, Any]:
        """Everything the book shows, once the read side has caught up."""
        live = await self.caught_up(book)
        return {
            "live": live,
            "progress": await self.get(f"/v1/books/{book}/progress"),
            "orders": await self.orders(book),
            "entries": await self.entries(book),
            "totals": await self.get(f"/v1/books/{book}/totals"),
            "trial": await self.get(f"/v1/books/{book}/trial-balance"),
        }


def decision(
    book: str, kind: str, amount_fen: int, *, beneficiary: str = WORKER, program: str = "social_insurance",
    subject: str | None = WORKER, ref: str | None = None, month: str | None = "2024-01",
    recorded_at: datetime | None = None, decision_id: str | None = None,
) -> DecisionV1:
    return DecisionV1(
        book=book, decision_id=decision_id or str(uuid.uuid4()), rule_set=RULE_SET, after="f-test",
        kind=kind, program=program, beneficiary=beneficiary, subject=subject, ref=ref, month=month,
        amount_fen=amount_fen, recorded_at=recorded_at or datetime.now(UTC),
    )


@contextlib.asynccontextmanager
async def bank(settings: Settings, *books: str, rule: BankRule | None = None) -> AsyncIterator[BankSimulator]:
    """The simulated bank of the sandbox books, settling these books' instructions while the block runs."""
    simulator = BankSimulator(settings, rule, books=books, sandbox=True,
                              group_id=f"sandbox_finance.bank-test-{uuid.uuid4().hex}")
    stop = asyncio.Event()
    task = asyncio.create_task(simulator.run(stop=stop))
    try:
        yield simulator
    finally:
        stop.set()
        await task


@pytest.fixture(scope="module")
def payments_log_start(services: Settings) -> int:
    """Where the payments log stood when this module's services started (the log is appended to)."""
    from flexledger.devstack.paths import log_file

    path = log_file(services, "payments")
    return path.stat().st_size if path.exists() else 0


@pytest.fixture
async def pay(services: Settings, payments_log_start: int) -> AsyncIterator[Payments]:
    """The API for one test; afterwards every book it used balances and reconciles."""
    books: list[str] = []
    from flexledger.submit import operator_key  # the operator may call every endpoint

    auth = {"Authorization": f"Bearer {operator_key(services)}"}
    async with httpx.AsyncClient(timeout=30, headers=auth) as client:
        payments = Payments(services, client, books)
        yield payments
        for book in books:
            live = await payments.caught_up(book)
            assert live["trial_balance_fen"] == 0 and live["problems"] == [], live
            trial = await payments.get(f"/v1/books/{book}/trial-balance")
            assert trial["balanced"] and trial["trial_balance_fen"] == 0, trial
            assert (await payments.get(f"/v1/books/{book}/progress"))["refusals"] == []


async def _find(settings: Settings, topic: str, key: str, match: Callable[[Record], bool]) -> list[Record]:
    """The messages with `key` on its partition that `match`."""
    producer = AIOKafkaProducer(**client_args(settings, "admin"))
    await producer.start()
    try:
        partitions = sorted(await producer.partitions_for(topic))
    finally:
        await producer.stop()
    tp = TopicPartition(topic, DefaultPartitioner()(key.encode(), partitions, partitions))
    consumer = AIOKafkaConsumer(**client_args(settings, "admin"), enable_auto_commit=False)
    await consumer.start()
    found = []
    try:
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        while await consumer.position(tp) < end:
            for record in (await consumer.getmany(tp, timeout_ms=1000)).get(tp, []):
                if record.key == key.encode() and match(record):
                    found.append(record)
    finally:
        await consumer.stop()
    return found


async def _republish(settings: Settings, records: list[Record]) -> list[tuple[int, int]]:
    producer = AIOKafkaProducer(**client_args(settings, "admin"), acks="all")
    await producer.start()
    try:
        out = []
        for record in records:
            meta = await producer.send_and_wait(record.topic, record.value, key=record.key,
                                                partition=record.partition, headers=list(record.headers))
            out.append((record.partition, meta.offset))
        return out
    finally:
        await producer.stop()


async def _tracked(settings: Settings, topic: str, partition: int) -> int:
    conn = await asyncpg.connect(settings.pg_dsn())
    try:
        value = await conn.fetchval(
            "SELECT notification_id FROM payments.payments_tracking WHERE application_name = $1",
            f"kafka:{topic}:{partition}",
        )
        return -1 if value is None else int(value)
    finally:
        await conn.close()


def _header(record: Record, name: str) -> str | None:
    value = dict(record.headers).get(name)
    return value.decode() if value is not None else None


# ---- grant to order to batch to settlement ---------------------------------------------------------


async def test_a_grant_through_intake_becomes_an_order_a_batch_entry_and_a_payment(pay: Payments) -> None:
    facts = load_scenario(next(v for v in VECTORS if v.name.startswith("01-")))["facts"]
    book = pay.book()
    year = datetime.now(CST).year  # a line without a month is charged to the year eligibility decided it
    assert (await pay.appropriate(book, "employment_service", year, 1_000_000)).status_code == 200
    async with bank(pay.settings, book):
        decisions = await asyncio.to_thread(run_pipeline, facts, pay.settings, book=book)
        [grant] = [d for d in decisions if d["kind"] == "grant"]
        order = await pay.until_order(book, grant["decision_id"], "paid")
    assert (order["beneficiary"], order["program"], order["fiscal_year"], order["amount_fen"]) == (
        ENTERPRISE, "employment_service", year, 100_000)
    assert order["trace_id"] == grant["trace_id"] and order["rule_set"] == RULE_SET
    [entry] = await pay.entries(book)
    assert (entry["order_id"], entry["amount_fen"], entry["attempt"], entry["outcome"]) == (
        grant["decision_id"], 100_000, 1, "paid")
    assert entry["confirmation"] == f"SIM-{entry['entry_id']}" and entry["batch_id"] == f"{book}-B000001"
    totals = (await pay.totals(book))["employment_service"]
    assert {k: totals[k] for k in ("appropriated_fen", "committed_fen", "paid_fen", "paid_by_bank_fen",
                                   "available_fen", "awaiting_budget_fen")} == {
        "appropriated_fen": 1_000_000, "committed_fen": 0, "paid_fen": 100_000, "paid_by_bank_fen": 100_000,
        "available_fen": 900_000, "awaiting_budget_fen": 0}
    balance = await pay.balance(book, ENTERPRISE)
    assert (balance["paid_by_bank_fen"], balance["payable_fen"], balance["net_due_fen"]) == (100_000, 0, 0)
    # an auditor holding the bank's confirmation or the entry finds the decision (`audit lookup`)
    for given in (entry["confirmation"], entry["entry_id"]):
        found = await asyncio.to_thread(_audit_lookup, pay.settings, given)
        kinds = [step["kind"] for step in found["steps"]]
        assert kinds == ["disbursement entry", "payment order", "decision"]
        assert found["decision_id"] == grant["decision_id"] and found["steps"][0]["id"] == entry["entry_id"]


def _audit_lookup(settings: Settings, given: str) -> Any:
    from typer.testing import CliRunner

    from flexledger.audit import cli as audit_cli

    result = CliRunner().invoke(audit_cli.app, ["lookup", given, "--json"], env=settings.as_env())
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ---- clawbacks ----------------------------------------------------------------------------------------


async def test_a_clawback_before_payment_cancels_what_is_unpaid(pay: Payments) -> None:
    """The clawback comes before any batch because the grant cannot be batched until Finance funds it,
    after the clawback is in: no race with the batching timer. (A committed order clawed back before
    its batch is cut, with the clock passed in: test_payments_application.)"""
    book = pay.book()
    grant = decision(book, "grant", 60_000)
    clawback = decision(book, "clawback", 20_000)  # the same line
    waiting = decision(book, "grant", 37_000, program="training", ref="first-aid", month=None,
                       recorded_at=datetime(2024, 5, 2, 10, tzinfo=CST))  # no training budget: waits
    waiting_back = decision(book, "clawback", 37_000, program="training", ref="first-aid", month=None,
                            recorded_at=datetime(2024, 5, 3, 10, tzinfo=CST))
    await pay.publish(grant, clawback, waiting, waiting_back)

    async def clawed_back() -> dict[str, Any] | None:
        order = (await pay.orders(book)).get(grant.decision_id)
        return order if order is not None and order["cancelled_fen"] == 20_000 else None

    held = await eventually("the clawback on the waiting order", clawed_back)
    assert (held["state"], held["amount_fen"]) == ("awaiting_budget", 40_000)
    cancelled = await pay.until_order(book, waiting.decision_id, "cancelled")
    async with bank(pay.settings, book):
        assert (await pay.appropriate(book, "social_insurance", 2024, 500_000)).status_code == 200
        order = await pay.until_order(book, grant.decision_id, "paid")
    assert (order["granted_fen"], order["cancelled_fen"], order["amount_fen"], order["paid_fen"]) == (
        60_000, 20_000, 40_000, 40_000)
    assert (cancelled["granted_fen"], cancelled["amount_fen"]) == (37_000, 0)
    [entry] = await pay.entries(book)  # only what was left of the order went to the bank
    assert (entry["order_id"], entry["amount_fen"]) == (grant.decision_id, 40_000)
    balance = await pay.balance(book, WORKER)
    assert (balance["receivable_fen"], balance["paid_by_bank_fen"], balance["awaiting_budget_fen"]) == (
        0, 40_000, 0)
    totals = await pay.totals(book, 2024)
    assert (totals["social_insurance"]["paid_fen"], totals["social_insurance"]["available_fen"]) == (
        40_000, 460_000)
    assert (totals["training"]["awaiting_budget_orders"], totals["training"]["awaiting_budget_fen"]) == (0, 0)


async def test_a_clawback_after_payment_is_a_receivable_offset_against_a_later_grant_of_another_programme(
    pay: Payments,
) -> None:
    book = pay.book()
    for program in ("social_insurance", "training"):
        assert (await pay.appropriate(book, program, 2024, 1_000_000)).status_code == 200
    grant = decision(book, "grant", 60_000)
    async with bank(pay.settings, book):
        await pay.publish(grant)
        await pay.until_order(book, grant.decision_id, "paid")
        await pay.publish(decision(book, "clawback", 60_000))
        owed = await eventually("the receivable", lambda: _balance_where(pay, book, receivable_fen=60_000))
        assert (owed["net_due_fen"], owed["recovered_fen"]) == (-60_000, 0)
        totals = (await pay.totals(book))["social_insurance"]
        assert (totals["receivables_outstanding_fen"], totals["paid_fen"]) == (60_000, 60_000)

        later = decision(book, "grant", 100_000, program="training", ref="safe-riding-101", month=None,
                         recorded_at=datetime(2024, 6, 1, 9, tzinfo=CST))
        await pay.publish(later)
        offset = await pay.until_order(book, later.decision_id, "paid")
    assert (offset["offset_fen"], offset["paid_fen"]) == (60_000, 40_000)  # 60,000 kept, the rest paid
    balance = await pay.balance(book, WORKER)
    assert (balance["receivable_fen"], balance["recovered_fen"], balance["paid_by_offset_fen"],
            balance["paid_by_bank_fen"], balance["net_due_fen"]) == (0, 60_000, 60_000, 100_000, 0)
    totals = await pay.totals(book)
    social, training = totals["social_insurance"], totals["training"]
    assert (social["recovered_fen"], social["receivables_outstanding_fen"], training["paid_by_offset_fen"],
            training["paid_by_bank_fen"]) == (60_000, 0, 60_000, 40_000)
    entries = await pay.entries(book)
    assert sorted(e["amount_fen"] for e in entries) == [40_000, 60_000]  # the offset never went to the bank


async def _balance_where(pay: Payments, book: str, **expected: int) -> dict[str, Any] | None:
    response = await pay.client.get(f"{pay.base}/v1/books/{book}/balances/{WORKER}")
    if response.status_code != 200:
        return None
    found: dict[str, Any] = response.json()
    return found if all(found[k] == v for k, v in expected.items()) else None


# ---- budgets ----------------------------------------------------------------------------------------


async def test_orders_beyond_the_appropriation_wait_and_are_released_in_order_when_it_is_raised(
    pay: Payments,
) -> None:
    book = pay.book()
    at = datetime(2024, 5, 6, 10, tzinfo=CST)
    assert (await pay.appropriate(book, "job_standard", 2024, 150_000)).status_code == 200
    first, second, third = (
        decision(book, "grant", amount, beneficiary=ENTERPRISE, program="job_standard", subject=None,
                 ref=ref, month=None, recorded_at=at)
        for amount, ref in ((100_000, "网约配送员"), (100_000, "外卖骑手"), (30_000, "家政服务员"))
    )
    async with bank(pay.settings, book):
        await pay.publish(first, second, third)
        await pay.until_order(book, first.decision_id, "paid")
        waiting = await pay.until_order(book, third.decision_id, "awaiting_budget")
        orders = await pay.orders(book)
        assert "50000 fen of 150000 fen left" in orders[second.decision_id]["awaiting_reason"]
        assert "earlier order(s) await budget" in waiting["awaiting_reason"]  # first in, first out
        totals = (await pay.totals(book, 2024))["job_standard"]
        assert (totals["awaiting_budget_fen"], totals["awaiting_budget_orders"], totals["available_fen"]) == (
            130_000, 2, 50_000)

        lowered = await pay.appropriate(book, "job_standard", 2024, 90_000)  # below the 100,000 paid
        assert lowered.status_code == 409 and "AppropriationBelowUsed" in lowered.json()["reason"]
        raised = await pay.appropriate(book, "job_standard", 2024, 230_000)
        assert raised.status_code == 200
        body = raised.json()
        assert (body["outcome"], body["released_orders"], body["previous_fen"]) == ("recorded", 2, 150_000)
        again = await pay.appropriate(book, "job_standard", 2024, 230_000)
        assert again.json()["outcome"] == "unchanged"
        await pay.until_order(book, second.decision_id, "paid")
        await pay.until_order(book, third.decision_id, "paid")
    totals = (await pay.totals(book, 2024))["job_standard"]
    assert (totals["appropriated_fen"], totals["paid_fen"], totals["available_fen"],
            totals["awaiting_budget_orders"]) == (230_000, 230_000, 0, 0)


async def test_the_cli_appropriates_and_shows_balances_with_beneficiaries_masked(
    pay: Payments, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from flexledger.payments_cli import app

    book = pay.book()
    grant = decision(book, "grant", 54_000, recorded_at=datetime(2024, 2, 1, tzinfo=CST))
    await pay.publish(grant)
    await pay.until_order(book, grant.decision_id, "awaiting_budget")
    for name, value in pay.settings.as_env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("COLUMNS", "200")  # wide tables: no wrapped words
    runner = CliRunner()

    def cli(*args: str) -> Any:
        return runner.invoke(app, list(args), catch_exceptions=False)

    shown = await asyncio.to_thread(cli, "balance", WORKER, "--book", book)
    assert shown.exit_code == 0 and WORKER not in shown.output and "3202**********1019" in shown.output
    assert "awaiting_budget" in shown.output and "no appropriation" in shown.output
    done = await asyncio.to_thread(cli, "appropriate", "social_insurance", "2024", "54000", "--book", book)
    assert done.exit_code == 0, done.output
    assert "1 order(s) released" in done.output
    await pay.until_order(book, grant.decision_id, "in_transit")  # no bank in this test: it stays there
    totals = await asyncio.to_thread(cli, "balance", "--book", book, "--year", "2024")
    assert totals.exit_code == 0 and "social_insurance" in totals.output and "540.00" in totals.output
    assert "trial balance: 0 fen (balanced)" in totals.output
    refused = await asyncio.to_thread(cli, "appropriate", "social_insurance", "2024", "100", "--book", book)
    assert refused.exit_code == 4  # refused by the book (flexledger/exits.py)
    trial = await asyncio.to_thread(cli, "trial-balance", "--book", book)
    assert trial.exit_code == 0 and "in_transit" in trial.output
    unknown = await asyncio.to_thread(cli, "balance", OTHER_WORKER, "--book", book)
    assert unknown.exit_code == 5 and OTHER_WORKER not in unknown.output  # not found


# ---- bank returns -----------------------------------------------------------------------------------


async def test_a_bank_return_is_requeued_with_its_reason_and_paid_on_the_next_attempt(pay: Payments) -> None:
    book = pay.book()
    assert (await pay.appropriate(book, "social_insurance", 2024, 1_000_000)).status_code == 200
    returned = decision(book, "grant", 66_667, beneficiary=OTHER_WORKER, subject=OTHER_WORKER)
    paid = decision(book, "grant", 54_000)
    rule = BankRule(suffixes=("3032",), returned_attempts=1, reason="account frozen (simulated)")
    async with bank(pay.settings, book, rule=rule) as simulator:
        await pay.publish(returned, paid)
        order = await pay.until_order(book, returned.decision_id, "paid")
        await pay.until_order(book, paid.decision_id, "paid")
    assert simulator.settled_entries == 3
    assert (order["attempts"], order["last_return_reason"], order["paid_fen"]) == (
        2, "account frozen (simulated)", 66_667)
    tries = sorted((e for e in await pay.entries(book) if e["order_id"] == returned.decision_id),
                   key=lambda e: e["attempt"])
    assert [(e["attempt"], e["outcome"], e["return_reason"]) for e in tries] == [
        (1, "returned", "account frozen (simulated)"), (2, "paid", None)]
    assert tries[0]["batch_id"] != tries[1]["batch_id"]  # re-queued, then cut into a later batch
    balance = await pay.balance(book, OTHER_WORKER)
    assert (balance["paid_by_bank_fen"], balance["in_transit_fen"], balance["payable_fen"]) == (66_667, 0, 0)


# ---- exactly once ----------------------------------------------------------------------------------


async def test_redelivered_decisions_and_settlements_change_nothing(pay: Payments) -> None:
    """The same decision and settlement messages again, first at new offsets (a relay publishing
    twice), then at their own offsets (the consumer groups rewound, payments restarted)."""
    from flexledger import devstack

    book = pay.book()
    assert (await pay.appropriate(book, "social_insurance", 2024, 1_000_000)).status_code == 200
    grant = decision(book, "grant", 60_000, beneficiary=OTHER_WORKER, subject=OTHER_WORKER)
    other = decision(book, "grant", 54_000)
    rule = BankRule(suffixes=("3032",), returned_attempts=1)
    async with bank(pay.settings, book, rule=rule):
        await pay.publish(grant, other)
        await pay.until_order(book, grant.decision_id, "paid")
        await pay.until_order(book, other.decision_id, "paid")
    clawback = decision(book, "clawback", 10_000, beneficiary=OTHER_WORKER, subject=OTHER_WORKER)
    await pay.publish(clawback)
    await eventually("the receivable", lambda: _claimed(pay, book, OTHER_WORKER, 10_000))
    before = await pay.snapshot(book)
    assert before["live"]["batches"] >= 2  # both orders (one returned), then the returned one again

    other_key = PartitionKeys(partition_key_secret(pay.settings))(book, OTHER_WORKER)
    decisions = await _find(pay.settings, SANDBOX_DECISIONS.name, other_key,
                            lambda r: _header(r, "ce_id") in (grant.decision_id, clawback.decision_id))
    settlements = [
        record
        for batch in sorted({e["batch_id"] for e in before["entries"]})
        for record in await _find(pay.settings, SANDBOX_SETTLEMENTS.name, batch, lambda r: True)
    ]
    answers = {(e["batch_id"], e["outcome"]) for e in before["entries"]}  # one message per batch and outcome
    assert len(decisions) == 2 and len(settlements) == len(answers) >= 3
    copies = await _republish(pay.settings, decisions + settlements)

    async def consumed() -> bool:
        for (partition, offset), record in zip(copies, decisions + settlements, strict=True):
            if await _tracked(pay.settings, record.topic, partition) < offset:
                return False
        return True

    await eventually("every copy consumed", consumed)
    await asyncio.sleep(1.0)  # a wrongly applied copy would reach the read side within this
    assert await pay.snapshot(book) == before

    # The same offsets again: rewind both consumer groups to this book's first messages, restart.
    devstack.stop_service("payments", pay.settings)
    try:
        await _rewind(pay.settings, "payments", SANDBOX_DECISIONS.name, decisions)
        await _rewind(pay.settings, "payments-settlements", SANDBOX_SETTLEMENTS.name, settlements)
    finally:
        await asyncio.to_thread(devstack.start_service, "payments", pay.settings, timeout=90)
    records = decisions + settlements
    await eventually("the groups to read past their old positions",
                     lambda: _groups_past(pay.settings, copies, records))
    await asyncio.sleep(1.0)
    after = await pay.snapshot(book)  # also: the book was rebuilt from its stream at start-up
    assert after == before


async def _claimed(pay: Payments, book: str, beneficiary: str, fen: int) -> bool:
    response = await pay.client.get(f"{pay.base}/v1/books/{book}/balances/{beneficiary}")
    return response.status_code == 200 and response.json()["receivable_fen"] == fen


async def _rewind(settings: Settings, group: str, topic: str, records: list[Record]) -> None:
    """Move the (stopped) group's committed offsets back to the first of `records` on each partition."""
    first: dict[TopicPartition, int] = {}
    for record in records:
        tp = TopicPartition(topic, record.partition)
        first[tp] = min(first.get(tp, record.offset), record.offset)
    consumer = AIOKafkaConsumer(topic, **client_args(settings, "admin"), group_id=group,
                                enable_auto_commit=False)
    await consumer.start()
    try:
        async def assigned() -> bool:
            await consumer.getmany(timeout_ms=100, max_records=1)
            return set(first) <= consumer.assignment()

        await eventually(f"the {group} assignment", assigned)
        await consumer.commit(first)
    finally:
        await consumer.stop()


async def _groups_past(settings: Settings, copies: list[tuple[int, int]], records: list[Record]) -> bool:
    groups = {SANDBOX_DECISIONS.name: "payments", SANDBOX_SETTLEMENTS.name: "payments-settlements"}
    for (partition, offset), record in zip(copies, records, strict=True):
        consumer = AIOKafkaConsumer(**client_args(settings, "admin"), group_id=groups[record.topic],
                                    enable_auto_commit=False)
        await consumer.start()
        try:
            if (await consumer.committed(TopicPartition(record.topic, partition)) or 0) <= offset:
                return False
        finally:
            await consumer.stop()
    return True


# ---- every vector through the pipeline --------------------------------------------------------------


async def test_every_vector_through_the_pipeline_gives_its_orders_then_pays_them_once_funded(
    pay: Payments,
) -> None:
    """No appropriation (the default): every grant waits for budget, clawbacks cancel waiting orders;
    nothing is refused. Then Finance funds every budget: everything left is paid, once."""
    books = {}
    for vector in VECTORS:
        book = pay.book()
        books[book] = await asyncio.to_thread(run_pipeline, load_scenario(vector)["facts"], pay.settings,
                                              book=book)
    for book, decisions in books.items():
        grants = {d["decision_id"]: d for d in decisions if d["kind"] == "grant"}
        clawed: dict[tuple[Any, ...], int] = {}
        for d in decisions:
            if d["kind"] == "clawback":
                key = (d["program"], d["beneficiary"], d["subject"], d["ref"], d["month"])
                clawed[key] = clawed.get(key, 0) + d["amount_fen"]

        def cancelled(orders: dict[str, Any], key: tuple[Any, ...]) -> int:
            return sum(o["cancelled_fen"] for o in orders.values()
                       if (o["program"], o["beneficiary"], o["subject"], o["ref"], o["month"]) == key)

        async def all_orders(
            book: str = book, grants: dict[str, Any] = grants, clawed: dict[tuple[Any, ...], int] = clawed,
        ) -> list[Any] | None:
            """Every grant an order, every clawback applied: it cancels what is still waiting on its line."""
            found = await pay.orders(book)
            done = set(found) == set(grants) and all(cancelled(found, k) == v for k, v in clawed.items())
            return [found] if done else None  # (a vector may have no grant at all)

        [orders] = await eventually(f"the orders of {book}", all_orders)
        assert all(o["state"] in ("awaiting_budget", "cancelled") for o in orders.values())
        assert all(o["awaiting_reason"] for o in orders.values() if o["state"] == "awaiting_budget")
        assert (await pay.get(f"/v1/books/{book}/progress"))["refusals"] == []

    async with bank(pay.settings, *books):
        for book in books:
            budgets = {(o["program"], o["fiscal_year"]) for o in (await pay.orders(book)).values()}
            for program, year in sorted(budgets):
                assert (await pay.appropriate(book, program, year, 10_000_000_000)).status_code == 200
        for book in books:
            async def settled(book: str = book) -> bool:
                found = await pay.orders(book)
                return all(o["state"] in ("paid", "cancelled") for o in found.values())

            await eventually(f"every order of {book} paid", settled)
            orders = await pay.orders(book)
            entries = await pay.entries(book)
            assert sorted(e["order_id"] for e in entries) == sorted(
                o["order_id"] for o in orders.values() if o["state"] == "paid")  # one entry per order
            for o in orders.values():
                assert o["paid_fen"] == o["amount_fen"] == o["granted_fen"] - o["cancelled_fen"]


# ---- personal data ----------------------------------------------------------------------------------


async def test_beneficiaries_never_appear_in_clear_in_the_payments_log_or_event_store(
    pay: Payments, payments_log_start: int,
) -> None:
    """Everything payments logged while this module ran (every test above included)."""
    from flexledger.devstack.paths import log_file

    book = pay.book()
    unfounded = decision(book, "clawback", 1, beneficiary=OTHER_WORKER, subject=OTHER_WORKER)  # no grant
    await pay.publish(unfounded)
    await eventually("the refusal", lambda: _refused(pay, book))
    with log_file(pay.settings, "payments").open("rb") as log:
        log.seek(payments_log_start)
        text = log.read().decode("utf-8", "replace")
    assert "ClawbackExceedsLine" in text
    for identifier in (WORKER, OTHER_WORKER, ENTERPRISE):
        assert identifier not in text, f"{identifier[:4]}... in the payments log"
    conn = await asyncpg.connect(pay.settings.pg_dsn())
    try:
        for identifier in (WORKER, OTHER_WORKER, ENTERPRISE):
            found = await conn.fetchval(
                "SELECT count(*) FROM payments.payments_events WHERE position($1::bytea IN state) > 0",
                identifier.encode(),
            )
            assert found == 0
    finally:
        await conn.close()
    progress = await pay.get(f"/v1/books/{book}/progress")
    assert OTHER_WORKER not in json.dumps(progress)
    pay.books.remove(book)  # its refusal is the point here; the after-test check wants none


async def _refused(pay: Payments, book: str) -> bool:
    return bool((await pay.get(f"/v1/books/{book}/progress"))["refusals"])

