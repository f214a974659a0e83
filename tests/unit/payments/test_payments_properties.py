"""Property tests: random sequences of grants, clawbacks, appropriations, batches, settlements, bank
returns, repayments and redeliveries never break the book.

Invariants checked after every step, from the events alone where possible (not the book's own tallies):
- the trial balance is zero and the general ledger agrees with orders, budgets and claims;
- no decision is received twice, however often it is redelivered; redeliveries return no events;
- no budget commits more than its appropriation;
- for every line, paid minus claimed back never exceeds grants minus clawbacks, paid never exceeds
  grants, and a claim is never raised for money that had not gone out;
- replaying the events rebuilds the same book;
- the running programme totals (re-counting only what each step's events touched) equal the report;
- drained (budgets raised, everything batched and paid), every line is paid exactly its net entitlement
  once its claims are counted;
- a twin book that spills every idle line after every step (services/payments/domain/spill.py)
  makes the same events, refuses the same commands, reconciles, and keeps the same running totals.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from contracts.decisions import DecisionKind, DecisionV1
from services.payments.domain import (
    AppropriationBelowUsed,
    BatchPolicy,
    ClawbackExceedsLine,
    Line,
    PaymentsBook,
    PaymentsError,
    RunningTotals,
    SettlementOutcome,
    SettlementResult,
    beneficiary_balance,
    programme_totals,
    reconcile,
)
from services.payments.domain import events as e
from services.payments.domain.batching import ReadyOrder, batches_due
from services.payments.domain.recovery import plan_offsets
from services.payments.domain.spill import MemorySpill

CST = timezone(timedelta(hours=8))
T0 = datetime(2022, 3, 1, 9, 0, tzinfo=CST)
PROGRAMS = ("employment_service", "training")
BENEFICIARIES = ("E1", "E2", "W3")
MONTHS = ("2021-12", "2022-01", "2022-02", None)
LINES = [Line(p, b, "W", None, m) for p in PROGRAMS for b in BENEFICIARIES for m in MONTHS]
BUDGETS = [(p, y) for p in PROGRAMS for y in (2021, 2022)]
DRAIN = BatchPolicy(max_entries=10_000, max_wait=timedelta(0))


def decision(decision_id: str, kind: DecisionKind, line: Line, amount_fen: int) -> DecisionV1:
    return DecisionV1.model_validate(
        {
            "book": "main",
            "decision_id": decision_id,
            "rule_set": "wuxi-2021-26/1",
            "after": None,
            "kind": kind,
            "program": line.program,
            "beneficiary": line.beneficiary,
            "subject": line.subject,
            "ref": line.ref,
            "month": line.month,
            "amount_fen": amount_fen,
        }
    )


class PaymentsMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.book = PaymentsBook()
        self.log: list[e.PaymentsEvent] = []
        self.now = T0
        self.serial = 0
        self.sent: list[DecisionV1] = []
        self.settled_results: list[SettlementResult] = []
        self.repayments: list[tuple[str, int, str]] = []
        # the model: what the decisions said, per line
        self.granted: Counter[Line] = Counter()
        self.clawed: Counter[Line] = Counter()
        self.appropriated: dict[tuple[str, int], int] = {}
        # read off the events
        self.received: Counter[str] = Counter()
        self.order_line: dict[str, Line] = {}
        self.order_budget: dict[str, tuple[str, int]] = {}
        self.committed: Counter[tuple[str, int]] = Counter()
        self.settled: Counter[Line] = Counter()
        self.in_transit: Counter[Line] = Counter()
        self.claimed: Counter[Line] = Counter()
        self.running = RunningTotals(self.book)
        self.twin = PaymentsBook(spill=MemorySpill(), keep_in_memory=0)
        self.twin_running = RunningTotals(self.twin)

    def run(self, command: Callable[[PaymentsBook], list[e.PaymentsEvent]]) -> list[e.PaymentsEvent]:
        """The command on the book and on its spilling twin: the same events, or the same refusal."""
        try:
            events = command(self.book)
        except PaymentsError as exc:
            with pytest.raises(type(exc)):
                command(self.twin)
            raise
        assert command(self.twin) == events
        order_ids, claim_ids = touched(events)
        self.twin_running.refresh(order_ids, claim_ids)
        for part in self.twin.spill_idle():
            self.twin_running.forget([o.order_id for o in part.orders], [c.claim_id for c in part.claims])
        for beneficiary in BENEFICIARIES:  # what the read side shows of each, spilled lines and all
            assert beneficiary_balance(self.twin, beneficiary) == beneficiary_balance(self.book, beneficiary)
        return events

    # ---- bookkeeping from events ------------------------------------------------------------------

    def record(self, events: list[e.PaymentsEvent]) -> None:
        self.running.refresh(*touched(events))
        for event in events:
            self.log.append(event)
            match event:
                case e.DecisionReceived():
                    self.received[event.decision_id] += 1
                case e.OrderCreated():
                    self.order_line[event.order_id] = event.line
                    self.order_budget[event.order_id] = (event.line.program, event.fiscal_year)
                case e.OrderCommitted():
                    self.committed[(event.program, event.fiscal_year)] += event.amount_fen
                case e.OrderCancelled(committed=True):
                    self.committed[(event.program, event.fiscal_year)] -= event.amount_fen
                case e.BatchCut():
                    for entry in event.entries:
                        self.in_transit[self.order_line[entry.order_id]] += entry.amount_fen
                case e.PaymentConfirmed():
                    line = self.order_line[event.order_id]
                    self.in_transit[line] -= event.amount_fen
                    self.settled[line] += event.amount_fen
                case e.PaymentReturned():
                    self.in_transit[self.order_line[event.order_id]] -= event.amount_fen
                case e.ReceivableOffset():
                    self.settled[self.order_line[event.order_id]] += event.amount_fen
                case e.ReceivableRaised():
                    self.claimed[event.line] += event.amount_fen
                    out_fen = self.settled[event.line] + self.in_transit[event.line]
                    assert self.claimed[event.line] <= out_fen, "claimed money that never went out"
                case e.AppropriationSet():
                    self.appropriated[(event.program, event.fiscal_year)] = event.amount_fen

    def next_id(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    # ---- rules ------------------------------------------------------------------------------------

    @initialize(amounts=st.lists(st.integers(0, 400_000), min_size=len(BUDGETS), max_size=len(BUDGETS)))
    def fund(self, amounts: list[int]) -> None:
        for key, amount_fen in zip(BUDGETS, amounts, strict=True):
            self.record(self.run(lambda book, k=key, a=amount_fen: book.set_appropriation(*k, a, self.now)))

    @rule(line=st.sampled_from(LINES), amount_fen=st.integers(1, 200_000))
    def grant(self, line: Line, amount_fen: int) -> None:
        d = decision(self.next_id("g"), "grant", line, amount_fen)
        self.record(self.run(lambda book: book.apply_decision(d, self.now)))
        self.sent.append(d)
        self.granted[line] += amount_fen

    @precondition(lambda self: any(self.granted[line] > self.clawed[line] for line in LINES))
    @rule(data=st.data())
    def clawback(self, data: st.DataObject) -> None:
        line = data.draw(st.sampled_from([ln for ln in LINES if self.granted[ln] > self.clawed[ln]]))
        net_fen = self.granted[line] - self.clawed[line]
        amount_fen = data.draw(st.one_of(st.just(net_fen), st.integers(1, net_fen)))
        d = decision(self.next_id("c"), "clawback", line, amount_fen)
        self.record(self.run(lambda book: book.apply_decision(d, self.now)))
        self.sent.append(d)
        self.clawed[line] += amount_fen

    @rule(line=st.sampled_from(LINES), extra_fen=st.integers(1, 100_000))
    def clawback_too_much(self, line: Line, extra_fen: int) -> None:
        before = self.book.snapshot()
        d = decision(self.next_id("x"), "clawback", line, self.granted[line] - self.clawed[line] + extra_fen)
        try:
            self.run(lambda book: book.apply_decision(d, self.now))
        except ClawbackExceedsLine:
            pass
        else:
            raise AssertionError("a clawback above the net entitlement was accepted")
        assert self.book.snapshot() == before

    @precondition(lambda self: bool(self.sent))
    @rule(data=st.data())
    def redeliver_decision(self, data: st.DataObject) -> None:
        d = data.draw(st.sampled_from(self.sent))
        assert self.run(lambda book: book.apply_decision(d, self.now + timedelta(days=400))) == []

    @rule(key=st.sampled_from(BUDGETS), amount_fen=st.integers(0, 1_000_000))
    def appropriate(self, key: tuple[str, int], amount_fen: int) -> None:
        used_fen = self.book.budget(*key).used_fen
        if amount_fen < used_fen:
            before = self.book.snapshot()
            try:
                self.run(lambda book: book.set_appropriation(*key, amount_fen, self.now))
            except AppropriationBelowUsed:
                assert self.book.snapshot() == before
                return
            raise AssertionError("appropriation set below what was used")
        self.record(self.run(lambda book: book.set_appropriation(*key, amount_fen, self.now)))

    @rule(minutes=st.integers(1, 120))
    def wait(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)

    @rule(max_entries=st.integers(1, 4), wait=st.sampled_from([None, timedelta(0), timedelta(minutes=30)]))
    def cut(self, max_entries: int, wait: timedelta | None) -> None:
        events = self.run(lambda book: book.cut_batches(BatchPolicy(max_entries, wait), self.now))
        for cut in events:
            assert isinstance(cut, e.BatchCut) and 0 < len(cut.entries) <= max_entries
        self.record(events)

    def unsettled(self) -> list[str]:
        return [entry_id for entry_id in self.book.entries if entry_id not in self.book.settlements]

    @precondition(lambda self: bool(self.unsettled()))
    @rule(data=st.data(), returned=st.booleans())
    def settle(self, data: st.DataObject, returned: bool) -> None:
        entry_id = data.draw(st.sampled_from(self.unsettled()))
        result = (
            SettlementResult(entry_id, SettlementOutcome.RETURNED, reason="account closed")
            if returned
            else SettlementResult(entry_id, SettlementOutcome.PAID, confirmation=f"FB-{entry_id}")
        )
        self.record(self.run(lambda book: book.settle(result, self.now)))
        self.settled_results.append(result)

    @precondition(lambda self: bool(self.settled_results))
    @rule(data=st.data())
    def redeliver_settlement(self, data: st.DataObject) -> None:
        result = data.draw(st.sampled_from(self.settled_results))
        assert self.run(lambda book: book.settle(result, self.now)) == []

    @precondition(lambda self: any(self.book.open_claims(b) for b in BENEFICIARIES))
    @rule(data=st.data())
    def repay(self, data: st.DataObject) -> None:
        beneficiary = data.draw(st.sampled_from([b for b in BENEFICIARIES if self.book.open_claims(b)]))
        owed_fen = sum(claim.open_fen for claim in self.book.open_claims(beneficiary))
        repayment = (beneficiary, data.draw(st.integers(1, owed_fen)), self.next_id("R"))
        self.record(self.run(lambda book: book.record_repayment(*repayment, self.now)))
        self.repayments.append(repayment)

    @precondition(lambda self: bool(self.repayments))
    @rule(data=st.data())
    def redeliver_repayment(self, data: st.DataObject) -> None:
        repayment = data.draw(st.sampled_from(self.repayments))
        assert self.run(lambda book: book.record_repayment(*repayment, self.now)) == []

    @rule()
    def replay(self) -> None:
        assert PaymentsBook.replay(self.log).snapshot() == self.book.snapshot()

    # ---- invariants -------------------------------------------------------------------------------

    @invariant()
    def ledger_is_sound(self) -> None:
        assert self.book.trial_balance_fen() == 0
        assert reconcile(self.book) == []
        assert reconcile(self.twin) == []
        assert self.twin.accounts.balances() == self.book.accounts.balances()
        assert self.twin.order_count() == self.book.order_count()

    @invariant()
    def no_decision_received_twice(self) -> None:
        assert all(count == 1 for count in self.received.values())
        assert set(self.received) == {d.decision_id for d in self.sent}

    @invariant()
    def running_totals_are_the_report(self) -> None:
        for year in (2021, 2022):
            for row in programme_totals(self.book, year):
                assert self.running.row(row.program, year) == row
                assert self.twin_running.row(row.program, year) == row
            assert programme_totals(self.twin, year) == programme_totals(self.book, year)
        assert {key for key in BUDGETS if self.running.row(*key) is not None} == {
            (row.program, year) for year in (2021, 2022) for row in programme_totals(self.book, year)}

    @invariant()
    def budgets_never_overspent(self) -> None:
        for key, committed_fen in self.committed.items():
            assert 0 <= committed_fen <= self.appropriated.get(key, 0), key

    @invariant()
    def no_line_paid_above_its_entitlement(self) -> None:
        for line in LINES:
            net_fen = self.granted[line] - self.clawed[line]
            assert self.settled[line] - self.claimed[line] <= net_fen, line
            assert self.settled[line] <= self.granted[line], line
            assert self.claimed[line] <= self.clawed[line], line

    def teardown(self) -> None:
        """Drain: raise every budget, pay everything, and every line ends at its net entitlement."""
        for key in BUDGETS:
            self.record(self.run(lambda book, key=key: book.set_appropriation(*key, 100_000_000, self.now)))
        for _ in range(3):  # a returned entry could come back ready once more; all are paid here
            for entry_id in self.unsettled():
                paid = SettlementResult(entry_id, SettlementOutcome.PAID, confirmation=f"FB-{entry_id}")
                self.record(self.run(lambda book, paid=paid: book.settle(paid, self.now)))
            self.record(self.run(lambda book: book.cut_batches(DRAIN, self.now)))
        assert self.book.ready_orders() == [] and self.unsettled() == []
        for line in LINES:
            assert self.settled[line] - self.claimed[line] == self.granted[line] - self.clawed[line], line
        assert reconcile(self.book) == [] and reconcile(self.twin) == []
        owing = [b for b in BENEFICIARIES if self.book.open_claims(b)]  # drained, the others are idle
        owing_lines = {claim.line for b in owing for claim in self.book.open_claims(b)}
        assert self.twin.in_memory() == len(owing_lines) and set(self.twin.beneficiaries()) == set(owing)
        assert PaymentsBook.replay(self.log).snapshot() == self.book.snapshot()


def touched(events: list[e.PaymentsEvent]) -> tuple[list[str], list[str]]:
    """The ids of the orders and claims the events changed."""
    cut = [entry.order_id for ev in events if isinstance(ev, e.BatchCut) for entry in ev.entries]
    repaid = [a.claim_id for ev in events if isinstance(ev, e.RepaymentReceived) for a in ev.allocations]
    return ([ev.order_id for ev in events if hasattr(ev, "order_id")] + cut,
            [ev.claim_id for ev in events if hasattr(ev, "claim_id")] + repaid)


PaymentsMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestPaymentsBookProperties = PaymentsMachine.TestCase


# ---- the pure helpers ----------------------------------------------------------------------------------


@given(
    waits=st.lists(st.integers(0, 500), max_size=30),
    max_entries=st.integers(1, 7),
    max_wait=st.one_of(st.none(), st.integers(0, 600)),
    now=st.integers(0, 1_000),
)
def test_batches_take_the_oldest_ready_orders_and_respect_the_limits(
    waits: list[int], max_entries: int, max_wait: int | None, now: int
) -> None:
    ready_at = sorted(waits)
    ready = [ReadyOrder(f"o{i}", T0 + timedelta(seconds=s)) for i, s in enumerate(ready_at)]
    policy = BatchPolicy(max_entries, None if max_wait is None else timedelta(seconds=max_wait))
    groups = batches_due(ready, policy, T0 + timedelta(seconds=now))
    flat = [order_id for group in groups for order_id in group]
    assert flat == [order.order_id for order in ready[: len(flat)]]  # a prefix, oldest first
    assert all(0 < len(group) <= max_entries for group in groups)
    assert len(flat) >= len(ready) - len(ready) % max_entries  # every full batch is cut
    if len(flat) < len(ready) and max_wait is not None:
        assert now - ready_at[len(flat)] < max_wait  # what stays has not waited long enough


@given(
    claims=st.lists(st.integers(1, 1_000), max_size=6),
    orders=st.lists(st.integers(1, 1_000), max_size=6),
)
def test_offsets_never_take_more_than_is_owed_or_payable(claims: list[int], orders: list[int]) -> None:
    from services.payments.domain.orders import PaymentOrder
    from services.payments.domain.recovery import Claim

    line = Line("p", "b", None, None, None)
    claim_objs = [Claim(f"c{i}", f"c{i}", line, 2022, amount, T0) for i, amount in enumerate(claims)]
    order_objs = [
        PaymentOrder(f"o{i}", f"o{i}", line, 2022, amount, amount, T0, committed=True)
        for i, amount in enumerate(orders)
    ]
    offsets = plan_offsets(claim_objs, order_objs)
    by_claim: defaultdict[str, int] = defaultdict(int)
    by_order: defaultdict[str, int] = defaultdict(int)
    for offset in offsets:
        assert offset.amount_fen > 0
        by_claim[offset.claim_id] += offset.amount_fen
        by_order[offset.order_id] += offset.amount_fen
    assert all(by_claim[c.claim_id] <= c.amount_fen for c in claim_objs)
    assert all(by_order[o.order_id] <= o.amount_fen for o in order_objs)
    assert sum(by_claim.values()) == min(sum(claims), sum(orders))
