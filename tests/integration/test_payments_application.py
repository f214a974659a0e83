"""The payments application on the real PostgreSQL, without Kafka in between: positions recorded with
the events, the default appropriation, rebuilding books from the store, two writers on one book, a
batch of decisions in one transaction, and a clawback before the batch is cut (the clock passed in)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from eventsourcing.persistence import Tracking
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from contracts.decisions import DecisionV1
from contracts.messages import SettlementResultV1, SettlementV1
from services.payments.application import DecisionItem, PaymentsApplication, RecordOutcome
from services.payments.config import PaymentsConfig
from services.payments.domain import BatchPolicy, OrderState
from services.runtime.settings import Settings

pytestmark = pytest.mark.integration

CST = timezone(timedelta(hours=8))
AT = datetime(2024, 3, 5, 10, tzinfo=CST)
WORKER = "320213197804121019"
AT_ONCE = BatchPolicy(max_entries=100, max_wait=timedelta(0))


def grant(book: str, amount_fen: int, *, program: str = "social_insurance", month: str | None = "2024-02",
          kind: str = "grant", decision_id: str | None = None) -> DecisionV1:
    return DecisionV1(book=book, decision_id=decision_id or str(uuid.uuid4()), rule_set="wuxi-2021-26/1",
                      after="f1", kind=kind, program=program, beneficiary=WORKER, subject=WORKER, month=month,
                      amount_fen=amount_fen, recorded_at=AT)


class Source:
    """A stand-in Kafka partition: consecutive positions."""

    def __init__(self) -> None:
        self.name = f"kafka:test-{uuid.uuid4().hex}:0"
        self.offset = 0

    def next(self) -> Tracking:
        self.offset += 1
        return Tracking(self.name, self.offset)

    def same(self) -> Tracking:
        return Tracking(self.name, self.offset)


def test_the_default_appropriation_funds_a_fresh_budget_unless_finance_decided_it(infra: Settings) -> None:
    config = PaymentsConfig(default_appropriations={"social_insurance": 100_000}, batch_policy=AT_ONCE)
    app = PaymentsApplication(infra, config=config)
    source = Source()
    book, decided = f"pay-{uuid.uuid4().hex[:16]}", f"pay-{uuid.uuid4().hex[:16]}"
    try:
        first, second = grant(book, 60_000), grant(book, 60_000, month="2024-03")
        assert app.record_decision(first, source.next(), AT) is RecordOutcome.RECORDED
        assert app.record_decision(second, source.next(), AT) is RecordOutcome.RECORDED
        state = app._books[book]
        assert state.book.budget("social_insurance", 2024).appropriated_fen == 100_000
        assert state.book.order(first.decision_id).state is OrderState.READY
        assert state.book.order(second.decision_id).state is OrderState.AWAITING_BUDGET  # default is a cap
        # Another year: its own default. A programme without one: no appropriation at all.
        december = grant(book, 10, month="2023-12")
        assert app.record_decision(december, source.next(), AT) is RecordOutcome.RECORDED
        training = grant(book, 10, program="training", month=None)
        assert app.record_decision(training, source.next(), AT) is RecordOutcome.RECORDED
        assert state.book.budget("social_insurance", 2023).appropriated_fen == 100_000
        assert state.book.order(training.decision_id).state is OrderState.AWAITING_BUDGET

        # Finance set 0 for 2024 in the other book before any grant: the default never applies there.
        assert app.set_appropriation(decided, "social_insurance", 2024, 0).outcome is RecordOutcome.RECORDED
        held = grant(decided, 5)
        assert app.record_decision(held, source.next(), AT) is RecordOutcome.RECORDED
        assert app._books[decided].book.order(held.decision_id).state is OrderState.AWAITING_BUDGET

        # Rebuilt from the store, in a fresh process: the same books.
        again = PaymentsApplication(infra, config=config)
        try:
            again.rebuild()
            for name in (book, decided):
                assert again._books[name].book.snapshot() == app._books[name].book.snapshot()
                assert again._books[name].budgets_decided == app._books[name].budgets_decided
                assert again._load(name).book.snapshot() == app._books[name].book.snapshot()
        finally:
            again.close()
    finally:
        app.close()


def test_a_redelivered_position_is_told_apart_from_a_version_conflict(infra: Settings) -> None:
    """Two payments processes on one book, without Kafka in between."""
    config = PaymentsConfig(batch_policy=AT_ONCE)
    a, b = PaymentsApplication(infra, config=config), PaymentsApplication(infra, config=config)
    source = Source()
    book = f"pay-{uuid.uuid4().hex[:16]}"
    try:
        appropriated = a.set_appropriation(book, "social_insurance", 2024, 1_000_000)
        assert appropriated.outcome is RecordOutcome.RECORDED
        g1, g2 = grant(book, 1_000), grant(book, 2_000, month="2024-03")
        g3 = grant(book, 3_000, month="2024-04")
        assert a.record_decision(g1, source.next(), AT) is RecordOutcome.RECORDED
        # The same position again, even carrying another decision: a redelivery, nothing recorded.
        assert a.record_decision(g2, source.same(), AT) is RecordOutcome.REDELIVERED
        assert b.record_decision(g2, source.next(), AT) is RecordOutcome.RECORDED
        # `a` still holds the book before g2: its save conflicts, it reloads the stream and succeeds.
        assert a.record_decision(g3, source.next(), AT) is RecordOutcome.RECORDED
        # g3 again from a later position (a relay publishing twice): only the position is recorded.
        assert b.record_decision(g3, source.next(), AT) is RecordOutcome.REPUBLISHED
        folded = a._books[book].book
        assert sorted(folded.orders) == sorted([g1.decision_id, g2.decision_id, g3.decision_id])

        # The batch, then its settlement twice (a new position each time): paid once.
        assert len(a.cut_batches(datetime.now(CST))) == 1
        [entry] = list(a._books[book].book.entries.values())[:1]
        results = [SettlementResultV1(entry_id=e.entry_id, outcome="paid", confirmation=f"C-{e.entry_id}")
                   for e in a._books[book].book.entries.values()]
        settlement = SettlementV1(book=book, batch_id=entry.batch_id, settlement_id="S1",
                                  settled_at=datetime.now(CST), results=results)
        assert a.record_settlement(settlement, source.next()) is RecordOutcome.RECORDED
        assert b.record_settlement(settlement, source.next()) is RecordOutcome.REPUBLISHED
        assert a.record_settlement(settlement, source.same()) is RecordOutcome.REDELIVERED
        report = a.reconciliation(book)
        assert (report["trial_balance_fen"], report["problems"], report["batches"]) == (0, [], 1)
        assert all(o.state is OrderState.PAID for o in a._books[book].book.orders.values())
        # A settlement for an entry this book never instructed is refused and recorded once.
        unknown = [SettlementResultV1(entry_id="nope-1", outcome="paid", confirmation="x")]
        bogus = SettlementV1(book=book, batch_id="nope", settlement_id="S2", settled_at=datetime.now(CST),
                             results=unknown)
        assert a.record_settlement(bogus, source.next()) is RecordOutcome.REFUSED
        assert a.record_settlement(bogus, source.next()) is RecordOutcome.REPUBLISHED
        assert a.reconciliation(book)["problems"] == []
    finally:
        a.close()
        b.close()


def statistic(book: str) -> DecisionV1:
    return DecisionV1(book=book, decision_id=str(uuid.uuid4()), rule_set="wuxi-2021-26/1", after="f1",
                      kind="statistic", subject=WORKER, month="2024-02", amount_fen=0, recorded_at=AT)


def test_a_batch_of_decisions_is_recorded_in_one_transaction_and_applied_once(infra: Settings) -> None:
    """Decisions of several books, non-money ones, a refusal and a repeat, consumed as one Kafka batch;
    then the same batch redelivered, then republished at new offsets, then after another writer."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    config = PaymentsConfig(batch_policy=AT_ONCE)
    app, other = PaymentsApplication(infra, provider, config), PaymentsApplication(infra, config=config)
    source = Source()
    book, second = f"pay-{uuid.uuid4().hex[:16]}", f"pay-{uuid.uuid4().hex[:16]}"
    try:
        appropriated = app.set_appropriation(book, "social_insurance", 2024, 1_000_000)
        assert appropriated.outcome is RecordOutcome.RECORDED
        g1, g2 = grant(book, 60_000), grant(second, 5_000)
        clawback = grant(book, 20_000, kind="clawback", decision_id=f"c-{g1.decision_id}")
        too_much = grant(book, 50_000, kind="clawback")  # 40,000 left on the line: refused
        decisions = [statistic(book), g1, g2, g1, clawback, too_much, statistic(second)]

        def batch(*ds: DecisionV1) -> list[DecisionItem]:
            return [DecisionItem(d, source.next(), AT, None, {}) for d in ds]

        def commits(items: list[DecisionItem]) -> tuple[list[RecordOutcome], int]:
            """The outcomes, and how many transactions were committed (their spans, in a consumer's span)."""
            exporter.clear()
            with provider.get_tracer("test").start_as_current_span("consumer"):
                outcomes = app.record_decisions(items)
            return outcomes, [s.name for s in exporter.get_finished_spans()].count("payments db commit")

        first = batch(*decisions)
        assert commits(first) == ([
            RecordOutcome.NO_MONEY, RecordOutcome.RECORDED, RecordOutcome.RECORDED, RecordOutcome.REPUBLISHED,
            RecordOutcome.RECORDED, RecordOutcome.REFUSED, RecordOutcome.NO_MONEY], 1)
        assert app.process_recorder.max_tracking_id(source.name) == first[-1].position.notification_id
        folded = app._books[book].book
        assert folded.order(g1.decision_id).amount_fen == 40_000
        assert app._books[book].refused == {too_much.decision_id}
        assert app._books[second].book.order(g2.decision_id).state is OrderState.AWAITING_BUDGET
        books = {name: app._books[name].book.snapshot() for name in (book, second)}
        versions = {name: app._books[name].stream.version for name in (book, second)}

        # Redelivered (the same offsets): nothing written, told apart one by one.
        assert app.record_decisions(first) == [RecordOutcome.REDELIVERED] * len(first)
        # Republished at new offsets: nothing applied again, the refusal not recorded again; one commit.
        assert commits(batch(*decisions)) == ([
            RecordOutcome.NO_MONEY, RecordOutcome.REPUBLISHED, RecordOutcome.REPUBLISHED,
            RecordOutcome.REPUBLISHED, RecordOutcome.REPUBLISHED, RecordOutcome.REPUBLISHED,
            RecordOutcome.NO_MONEY], 1)
        assert {name: app._books[name].book.snapshot() for name in (book, second)} == books
        assert {name: app._books[name].stream.version for name in (book, second)} == versions

        # Another writer appended to the book: the batch conflicts, then each decision is recorded.
        g3, g4 = grant(book, 1_000, month="2024-03"), grant(book, 2_000, month="2024-04")
        assert other.record_decision(g3, source.next(), AT) is RecordOutcome.RECORDED
        assert app.record_decisions(batch(g3, g4)) == [RecordOutcome.REPUBLISHED, RecordOutcome.RECORDED]

        again = PaymentsApplication(infra, config=config)
        try:
            again.rebuild()
            for name in (book, second):
                assert again._books[name].book.snapshot() == app._books[name].book.snapshot()
                assert again._books[name].refused == app._books[name].refused
        finally:
            again.close()
        assert app.reconciliation(book)["problems"] == []
    finally:
        app.close()
        other.close()


def test_a_clawback_before_the_batch_is_cut_cancels_the_unpaid_order(infra: Settings) -> None:
    """A committed order not yet batched: the clawback cancels from it, and only the rest is batched."""
    config = PaymentsConfig(batch_policy=BatchPolicy(max_entries=100, max_wait=timedelta(seconds=2)))
    app = PaymentsApplication(infra, config=config)
    source = Source()
    book = f"pay-{uuid.uuid4().hex[:16]}"
    try:
        appropriated = app.set_appropriation(book, "social_insurance", 2024, 500_000)
        assert appropriated.outcome is RecordOutcome.RECORDED
        granted = grant(book, 60_000)
        assert app.record_decision(granted, source.next(), AT) is RecordOutcome.RECORDED
        assert app.due_books(AT + timedelta(seconds=1)) == ([], AT + timedelta(seconds=2))  # not yet due
        clawback = grant(book, 20_000, kind="clawback")
        assert app.record_decision(clawback, source.next(), AT) is RecordOutcome.RECORDED
        order = app._books[book].book.order(granted.decision_id)
        assert (order.state, order.amount_fen, order.cancelled_fen) == (OrderState.READY, 40_000, 20_000)
        assert app.due_books(AT + timedelta(seconds=2)) == ([book], None)
        [batch_id] = app.cut_batches(AT + timedelta(seconds=2))
        [entry] = app._books[book].book.entries.values()
        assert (entry.batch_id, entry.order_id, entry.amount_fen) == (batch_id, granted.decision_id, 40_000)
        assert app.due_books(AT + timedelta(days=1)) == ([], None)  # nothing ready: nothing to wake for
        assert app.reconciliation(book)["problems"] == []
    finally:
        app.close()


def test_a_batch_whose_refusal_left_a_default_appropriation_folded_is_recorded_one_by_one(
    infra: Settings,
) -> None:
    """A grant of 0 fen for a fresh budget: the default appropriation is folded before the grant is
    refused, so the book must be reloaded: the batch goes one by one, and the default is not kept."""
    config = PaymentsConfig(default_appropriations={"social_insurance": 100_000}, batch_policy=AT_ONCE)
    app = PaymentsApplication(infra, config=config)
    source = Source()
    book = f"pay-{uuid.uuid4().hex[:16]}"
    try:
        good, empty = grant(book, 1_000), grant(book, 0, month="2023-05")
        items = [DecisionItem(d, source.next(), AT, None, {}) for d in (good, empty, statistic(book))]
        assert app.record_decisions(items) == [
            RecordOutcome.RECORDED, RecordOutcome.REFUSED, RecordOutcome.NO_MONEY]
        state = app._books[book]
        assert state.refused == {empty.decision_id}
        assert state.budgets_decided == {("social_insurance", 2024)}  # 2023's default was not recorded
        assert app.process_recorder.max_tracking_id(source.name) == items[-1].position.notification_id
        again = PaymentsApplication(infra, config=config)
        try:
            assert again._load(book).book.snapshot() == state.book.snapshot()
        finally:
            again.close()
    finally:
        app.close()
