"""The payments book: one state object, changed only by folding its own events.

Each command (`apply_decision`, `set_appropriation`, `cut_batches`, `settle`, `record_repayment`)
validates first (raising a `PaymentsError` and changing nothing), then emits events; every event is
folded by `apply` before the next is computed, and the list is returned so the caller can store and
publish it. `PaymentsBook.replay(events)` rebuilds the same state. Redelivered decisions, settlements
and repayments return no events.

Given a `Spill`, the book keeps in memory its lines with something open and, of the idle ones, the
most recently used up to `keep_in_memory` orders (and as many lines), and spills the others
(services/payments/domain/spill.py).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from contracts.decisions import MONEY_KINDS, DecisionV1
from services.payments.domain import events as e
from services.payments.domain.accounts import Accounts
from services.payments.domain.batching import (
    BatchPolicy,
    DisbursementEntry,
    ReadyOrder,
    SettlementOutcome,
    SettlementResult,
    batches_due,
)
from services.payments.domain.budgets import Budget
from services.payments.domain.errors import (
    AppropriationBelowUsed,
    ClawbackExceedsLine,
    InvalidDecision,
    RepaymentExceedsReceivable,
    SettlementConflict,
    UnknownEntry,
    WrongBook,
)
from services.payments.domain.lines import Line, LineTally, fiscal_year, line_of, require_aware
from services.payments.domain.orders import OrderState, PaymentOrder
from services.payments.domain.postings import postings_for
from services.payments.domain.recovery import Claim, allocate, plan_offsets, split_clawback
from services.payments.domain.spill import ENTRY, LINE, IdlePart, Spill, SpilledTotals, line_key

BudgetKey = tuple[str, int]  # (program, fiscal year)
SPILL_LOOK_AHEAD = 1024  # lines `spill_idle` looks at in one call, from the least recent


def _positive_fen(amount_fen: int, what: str) -> None:
    if type(amount_fen) is not int or amount_fen <= 0:
        raise ValueError(f"{what} must be a positive integer number of fen, got {amount_fen!r}")


class PaymentsBook:
    """Orders, budgets, claims and the accounts of one book ('main' or a sandbox)."""

    def __init__(self, book: str = "main", spill: Spill | None = None, keep_in_memory: int = 0) -> None:
        self.book = book
        self.accounts = Accounts()
        self.event_count = 0
        self.batch_count = 0
        self.applied_decisions: set[str] = set()
        self.repayment_references: set[str] = set()
        self.lines: dict[Line, LineTally] = {}
        self.orders: dict[str, PaymentOrder] = {}
        self.budgets: dict[BudgetKey, Budget] = {}
        self.claims: dict[str, Claim] = {}
        self.entries: dict[str, DisbursementEntry] = {}
        self.settlements: dict[str, SettlementOutcome] = {}
        # Each line's decisions, orders, claims and entries, oldest first; each beneficiary's lines.
        self._line_decisions: dict[Line, list[str]] = {}
        self._line_orders: dict[Line, list[str]] = {}
        self._line_claims: dict[Line, list[str]] = {}
        self._line_entries: dict[Line, list[str]] = {}
        self._beneficiary_lines: dict[str, dict[Line, None]] = {}
        self._open_claims: dict[str, dict[str, None]] = {}  # beneficiary -> claim ids, oldest first
        self._ready: dict[str, None] = {}  # order ids ready to pay, oldest first
        self._ready_by_beneficiary: dict[str, dict[str, None]] = {}
        # Spilling: the lines whose part is in memory, least recently reached first.
        self._spill = spill
        self._keep_in_memory = keep_in_memory
        self._present: dict[Line, None] = {}
        self._spilled_any = False
        self.spilled = SpilledTotals()

    @classmethod
    def replay(cls, events: Iterable[e.PaymentsEvent], book: str = "main") -> PaymentsBook:
        state = cls(book)
        for event in events:
            state.apply(event)
        return state

    # ---- commands -------------------------------------------------------------------------------

    def apply_decision(self, decision: DecisionV1, recorded_at: datetime) -> list[e.PaymentsEvent]:
        """Take in one eligibility decision. `recorded_at` is when eligibility recorded it (it fixes
        the fiscal year of a line without a month). Non-money kinds and redeliveries return []."""
        require_aware(recorded_at)
        if decision.book != self.book:
            raise WrongBook(
                f"decision {decision.decision_id} is for book {decision.book!r}, not {self.book!r}"
            )
        if decision.kind not in MONEY_KINDS:
            return []
        line = line_of(decision)
        if self.has_applied(decision.decision_id, line):
            return []
        if decision.amount_fen <= 0:
            raise InvalidDecision(
                f"{decision.kind} {decision.decision_id} has amount {decision.amount_fen} fen"
            )
        year = fiscal_year(decision.month, recorded_at)
        if decision.kind == "grant":
            return self._grant(decision.decision_id, line, year, decision.amount_fen, recorded_at)
        return self._clawback(decision.decision_id, line, year, decision.amount_fen, recorded_at)

    def set_appropriation(
        self, program: str, fiscal_year: int, amount_fen: int, at: datetime
    ) -> list[e.PaymentsEvent]:
        """Operator command: the programme's appropriation for the year is now `amount_fen` (a total,
        so repeating the command changes nothing). Orders awaiting that budget are released in order."""
        require_aware(at)
        if type(amount_fen) is not int or amount_fen < 0:
            raise ValueError(
                f"appropriation must be a non-negative integer number of fen, got {amount_fen!r}"
            )
        budget = self.budget(program, fiscal_year)
        if amount_fen < budget.used_fen:
            raise AppropriationBelowUsed(
                f"{program} {fiscal_year}: {budget.used_fen} fen committed or paid, cannot set {amount_fen}"
            )
        if amount_fen == budget.appropriated_fen:
            return []
        out: list[e.PaymentsEvent] = []
        self._emit(
            e.AppropriationSet(
                program=program,
                fiscal_year=fiscal_year,
                amount_fen=amount_fen,
                previous_fen=budget.appropriated_fen,
                at=at,
            ),
            out,
        )
        self._release((program, fiscal_year), at, out)
        return out

    def cut_batches(self, policy: BatchPolicy, now: datetime) -> list[e.PaymentsEvent]:
        """Cut the disbursement batches that `policy` makes due at `now` (possibly none)."""
        ready = [ReadyOrder(order_id, self._ready_at(order_id)) for order_id in self._ready]
        out: list[e.PaymentsEvent] = []
        for group in batches_due(ready, policy, now):
            batch_id = f"{self.book}-B{self.batch_count + 1:06d}"
            entries = tuple(
                self._entry(batch_id, index, self.orders[order_id]) for index, order_id in enumerate(group, 1)
            )
            self._emit(e.BatchCut(batch_id=batch_id, entries=entries, at=now), out)
        return out

    def settle(self, result: SettlementResult, at: datetime) -> list[e.PaymentsEvent]:
        """Record the bank's result for one entry. The same result again returns []; a different
        result for an entry already settled is a `SettlementConflict`."""
        require_aware(at)
        entry = self.entries.get(result.entry_id)
        if entry is None and self._spilled_any:  # an entry of an idle line, settled again?
            assert self._spill is not None
            for line in self._spill.load(ENTRY, [result.entry_id]).values():
                self._reach(line)
            entry = self.entries.get(result.entry_id)
        if entry is None:
            raise UnknownEntry(f"no disbursement entry {result.entry_id} in book {self.book!r}")
        previous = self.settlements.get(entry.entry_id)
        if previous is not None:
            if previous is result.outcome:
                return []
            raise SettlementConflict(
                f"entry {entry.entry_id} was already {previous}, now reported {result.outcome}"
            )
        out: list[e.PaymentsEvent] = []
        if result.outcome is SettlementOutcome.PAID:
            assert result.confirmation is not None
            self._emit(
                e.PaymentConfirmed(
                    entry_id=entry.entry_id,
                    order_id=entry.order_id,
                    beneficiary=entry.beneficiary,
                    amount_fen=entry.amount_fen,
                    confirmation=result.confirmation,
                    at=at,
                ),
                out,
            )
        else:
            assert result.reason is not None
            self._emit(
                e.PaymentReturned(
                    entry_id=entry.entry_id,
                    order_id=entry.order_id,
                    beneficiary=entry.beneficiary,
                    amount_fen=entry.amount_fen,
                    reason=result.reason,
                    at=at,
                ),
                out,
            )
            self._offset(entry.beneficiary, at, out)
        return out

    def settle_all(self, results: Iterable[SettlementResult], at: datetime) -> list[e.PaymentsEvent]:
        out: list[e.PaymentsEvent] = []
        for result in results:
            out.extend(self.settle(result, at))
        return out

    def record_repayment(
        self, beneficiary: str, amount_fen: int, reference: str, at: datetime
    ) -> list[e.PaymentsEvent]:
        """Operator command: the beneficiary paid back `amount_fen` (bank reference `reference`, the
        idempotency key), allocated to its oldest open claims first."""
        require_aware(at)
        _positive_fen(amount_fen, "repayment")
        if reference in self.repayment_references:
            return []
        open_claims = self.open_claims(beneficiary)
        owed_fen = sum(claim.open_fen for claim in open_claims)
        if amount_fen > owed_fen:
            raise RepaymentExceedsReceivable(
                f"{beneficiary} owes {owed_fen} fen; repayment {reference} is {amount_fen}"
            )
        allocations = tuple(
            e.Allocation(claim_id, take_fen) for claim_id, take_fen in allocate(open_claims, amount_fen)
        )
        out: list[e.PaymentsEvent] = []
        self._emit(
            e.RepaymentReceived(
                reference=reference,
                beneficiary=beneficiary,
                amount_fen=amount_fen,
                allocations=allocations,
                at=at,
            ),
            out,
        )
        return out

    # ---- command steps --------------------------------------------------------------------------

    def _emit(self, event: e.PaymentsEvent, out: list[e.PaymentsEvent]) -> None:
        self.apply(event)
        out.append(event)

    def _grant(
        self, decision_id: str, line: Line, year: int, amount_fen: int, at: datetime
    ) -> list[e.PaymentsEvent]:
        out: list[e.PaymentsEvent] = []
        self._emit(
            e.DecisionReceived(
                decision_id=decision_id,
                kind="grant",
                line=line,
                fiscal_year=year,
                amount_fen=amount_fen,
                at=at,
            ),
            out,
        )
        self._emit(
            e.OrderCreated(
                order_id=decision_id,
                decision_id=decision_id,
                line=line,
                fiscal_year=year,
                amount_fen=amount_fen,
                at=at,
            ),
            out,
        )
        budget = self.budget(line.program, year)
        if budget.admits(amount_fen):
            self._commit(self.orders[decision_id], False, at, out)
        else:
            self._emit(
                e.OrderAwaitingBudget(
                    order_id=decision_id,
                    program=line.program,
                    fiscal_year=year,
                    amount_fen=amount_fen,
                    reason=budget.refusal(amount_fen),
                    at=at,
                ),
                out,
            )
        return out

    def _clawback(
        self, decision_id: str, line: Line, year: int, amount_fen: int, at: datetime
    ) -> list[e.PaymentsEvent]:
        tally = self.lines.get(line, LineTally())
        if amount_fen > tally.net_fen:
            raise ClawbackExceedsLine(
                f"clawback {decision_id} of {amount_fen} fen on {line}: net entitlement {tally.net_fen} fen"
            )
        out: list[e.PaymentsEvent] = []
        self._emit(
            e.DecisionReceived(
                decision_id=decision_id,
                kind="clawback",
                line=line,
                fiscal_year=year,
                amount_fen=amount_fen,
                at=at,
            ),
            out,
        )
        cancellations, claim_fen = split_clawback(self.orders_of_line(line), amount_fen)
        touched: set[BudgetKey] = set()
        for cancellation in cancellations:
            order = self.orders[cancellation.order_id]
            self._emit(
                e.OrderCancelled(
                    order_id=order.order_id,
                    decision_id=decision_id,
                    beneficiary=order.beneficiary,
                    program=order.program,
                    fiscal_year=order.fiscal_year,
                    amount_fen=cancellation.amount_fen,
                    committed=cancellation.committed,
                    at=at,
                ),
                out,
            )
            touched.add((order.program, order.fiscal_year))
        if claim_fen:
            self._emit(
                e.ReceivableRaised(
                    claim_id=decision_id,
                    decision_id=decision_id,
                    line=line,
                    fiscal_year=year,
                    amount_fen=claim_fen,
                    at=at,
                ),
                out,
            )
            self._offset(line.beneficiary, at, out)
        for key in sorted(touched):
            self._release(key, at, out)
        return out

    def _commit(self, order: PaymentOrder, released: bool, at: datetime, out: list[e.PaymentsEvent]) -> None:
        self._emit(
            e.OrderCommitted(
                order_id=order.order_id,
                beneficiary=order.beneficiary,
                program=order.program,
                fiscal_year=order.fiscal_year,
                amount_fen=order.amount_fen,
                released=released,
                at=at,
            ),
            out,
        )
        self._offset(order.beneficiary, at, out)

    def _release(self, key: BudgetKey, at: datetime, out: list[e.PaymentsEvent]) -> None:
        budget = self.budgets.get(key)
        if budget is None:
            return
        for order_id in budget.releasable():
            self._commit(self.orders[order_id], True, at, out)

    def _offset(self, beneficiary: str, at: datetime, out: list[e.PaymentsEvent]) -> None:
        ready = [self.orders[order_id] for order_id in self._ready_by_beneficiary.get(beneficiary, {})]
        for offset in plan_offsets(self.open_claims(beneficiary), ready):
            self._emit(
                e.ReceivableOffset(
                    claim_id=offset.claim_id,
                    order_id=offset.order_id,
                    beneficiary=beneficiary,
                    amount_fen=offset.amount_fen,
                    at=at,
                ),
                out,
            )

    def _entry(self, batch_id: str, index: int, order: PaymentOrder) -> DisbursementEntry:
        return DisbursementEntry(
            entry_id=f"{batch_id}-{index:05d}",
            batch_id=batch_id,
            order_id=order.order_id,
            beneficiary=order.beneficiary,
            program=order.program,
            fiscal_year=order.fiscal_year,
            amount_fen=order.unpaid_fen,
            attempt=order.attempts + 1,
        )

    def _ready_at(self, order_id: str) -> datetime:
        ready_at = self.orders[order_id].ready_at
        assert ready_at is not None
        return ready_at

    # ---- fold -----------------------------------------------------------------------------------

    def apply(self, event: e.PaymentsEvent) -> None:
        """Fold one event into the state and post its journal entries. The only mutator: each kind of
        event has its fold below, which asserts what the event must find."""
        match event:
            case e.DecisionReceived():
                self._fold_decision_received(event)
            case e.OrderCreated():
                self._fold_order_created(event)
            case e.OrderAwaitingBudget():
                self._fold_order_awaiting_budget(event)
            case e.OrderCommitted():
                self._fold_order_committed(event)
            case e.OrderCancelled():
                self._fold_order_cancelled(event)
            case e.ReceivableRaised():
                self._fold_receivable_raised(event)
            case e.ReceivableOffset():
                self._fold_receivable_offset(event)
            case e.AppropriationSet():
                self._fold_appropriation_set(event)
            case e.BatchCut():
                self._fold_batch_cut(event)
            case e.PaymentConfirmed():
                self._fold_payment_confirmed(event)
            case e.PaymentReturned():
                self._fold_payment_returned(event)
            case e.RepaymentReceived():
                self._fold_repayment_received(event)
        order_id = getattr(event, "order_id", None)
        if order_id is not None:
            self.orders[order_id].check()
        self.accounts.post_all(postings_for(event))
        self.event_count += 1

    def _fold_decision_received(self, event: e.DecisionReceived) -> None:
        self._reach(event.line)
        assert event.decision_id not in self.applied_decisions, event
        self.applied_decisions.add(event.decision_id)
        self._line_decisions.setdefault(event.line, []).append(event.decision_id)
        self._beneficiary_lines.setdefault(event.line.beneficiary, {})[event.line] = None
        tally = self.lines.setdefault(event.line, LineTally())
        if event.kind == "grant":
            tally.granted_fen += event.amount_fen
        else:
            tally.clawed_fen += event.amount_fen

    def _fold_order_created(self, event: e.OrderCreated) -> None:
        assert event.order_id not in self.orders, event
        self.orders[event.order_id] = PaymentOrder(
            order_id=event.order_id,
            decision_id=event.decision_id,
            line=event.line,
            fiscal_year=event.fiscal_year,
            granted_fen=event.amount_fen,
            amount_fen=event.amount_fen,
            created_at=event.at,
        )
        self._line_orders.setdefault(event.line, []).append(event.order_id)

    def _fold_order_awaiting_budget(self, event: e.OrderAwaitingBudget) -> None:
        order = self.orders[event.order_id]
        assert order.state is OrderState.AWAITING_BUDGET and event.amount_fen == order.amount_fen, event
        order.awaiting_reason = event.reason
        self._stored_budget(event.program, event.fiscal_year).awaiting[event.order_id] = event.amount_fen

    def _fold_order_committed(self, event: e.OrderCommitted) -> None:
        order = self.orders[event.order_id]
        assert not order.committed and event.amount_fen == order.amount_fen > 0, event
        budget = self._stored_budget(event.program, event.fiscal_year)
        budget.awaiting.pop(event.order_id, None)
        budget.used_fen += event.amount_fen
        order.committed, order.awaiting_reason, order.ready_at = True, None, event.at
        self._enqueue(order)
        budget.check()

    def _fold_order_cancelled(self, event: e.OrderCancelled) -> None:
        order = self.orders[event.order_id]
        assert event.committed == order.committed and 0 < event.amount_fen <= order.unpaid_fen, event
        order.amount_fen -= event.amount_fen
        order.cancelled_fen += event.amount_fen
        self.lines[order.line].cancelled_fen += event.amount_fen
        budget = self._stored_budget(event.program, event.fiscal_year)
        if event.committed:
            budget.used_fen -= event.amount_fen
            if order.unpaid_fen == 0:
                self._dequeue(order)
        elif order.amount_fen:
            budget.awaiting[order.order_id] = order.amount_fen
        else:
            del budget.awaiting[order.order_id]
        budget.check()

    def _fold_receivable_raised(self, event: e.ReceivableRaised) -> None:
        assert event.claim_id not in self.claims and event.amount_fen > 0, event
        claim = Claim(
            claim_id=event.claim_id,
            decision_id=event.decision_id,
            line=event.line,
            fiscal_year=event.fiscal_year,
            amount_fen=event.amount_fen,
            raised_at=event.at,
        )
        self.claims[claim.claim_id] = claim
        self._open_claims.setdefault(claim.beneficiary, {})[claim.claim_id] = None
        self._line_claims.setdefault(claim.line, []).append(claim.claim_id)
        self.lines[event.line].claimed_fen += event.amount_fen

    def _fold_receivable_offset(self, event: e.ReceivableOffset) -> None:
        claim, order = self.claims[event.claim_id], self.orders[event.order_id]
        assert claim.beneficiary == order.beneficiary == event.beneficiary, event
        assert order.state is OrderState.READY, event
        assert 0 < event.amount_fen <= min(claim.open_fen, order.unpaid_fen), event
        claim.offset_fen += event.amount_fen
        order.offset_fen += event.amount_fen
        if claim.open_fen == 0:
            self._close_claim(claim)
        if order.unpaid_fen == 0:
            self._dequeue(order)

    def _fold_appropriation_set(self, event: e.AppropriationSet) -> None:
        budget = self._stored_budget(event.program, event.fiscal_year)
        assert budget.appropriated_fen == event.previous_fen and event.amount_fen >= budget.used_fen, event
        budget.appropriated_fen = event.amount_fen

    def _fold_batch_cut(self, event: e.BatchCut) -> None:
        assert event.entries, event
        self.batch_count += 1
        for entry in event.entries:
            order = self.orders[entry.order_id]
            assert order.state is OrderState.READY and entry.amount_fen == order.unpaid_fen, entry
            assert entry.entry_id not in self.entries and entry.attempt == order.attempts + 1, entry
            order.in_transit_fen += entry.amount_fen
            order.attempts = entry.attempt
            self.entries[entry.entry_id] = entry
            self._line_entries.setdefault(order.line, []).append(entry.entry_id)
            self._dequeue(order)

    def _fold_payment_confirmed(self, event: e.PaymentConfirmed) -> None:
        order = self.orders[event.order_id]
        assert event.entry_id not in self.settlements and order.in_transit_fen == event.amount_fen, event
        self.settlements[event.entry_id] = SettlementOutcome.PAID
        order.in_transit_fen -= event.amount_fen
        order.paid_fen += event.amount_fen

    def _fold_payment_returned(self, event: e.PaymentReturned) -> None:
        order = self.orders[event.order_id]
        assert event.entry_id not in self.settlements and order.in_transit_fen == event.amount_fen, event
        self.settlements[event.entry_id] = SettlementOutcome.RETURNED
        order.in_transit_fen -= event.amount_fen
        order.last_return_reason, order.ready_at = event.reason, event.at
        self._enqueue(order)

    def _fold_repayment_received(self, event: e.RepaymentReceived) -> None:
        assert event.reference not in self.repayment_references, event
        assert sum(allocation.amount_fen for allocation in event.allocations) == event.amount_fen, event
        self.repayment_references.add(event.reference)
        for allocation in event.allocations:
            claim = self.claims[allocation.claim_id]
            assert claim.beneficiary == event.beneficiary and 0 < allocation.amount_fen <= claim.open_fen
            claim.repaid_fen += allocation.amount_fen
            if claim.open_fen == 0:
                self._close_claim(claim)

    def _stored_budget(self, program: str, year: int) -> Budget:
        budget = self.budgets.get((program, year))
        if budget is None:
            budget = self.budgets[(program, year)] = Budget(program, year)
        return budget

    def _enqueue(self, order: PaymentOrder) -> None:
        if order.unpaid_fen > 0:
            self._ready[order.order_id] = None
            self._ready_by_beneficiary.setdefault(order.beneficiary, {})[order.order_id] = None

    def _dequeue(self, order: PaymentOrder) -> None:
        self._ready.pop(order.order_id, None)
        mine = self._ready_by_beneficiary.get(order.beneficiary)
        if mine is not None:
            mine.pop(order.order_id, None)
            if not mine:
                del self._ready_by_beneficiary[order.beneficiary]

    def _close_claim(self, claim: Claim) -> None:
        mine = self._open_claims[claim.beneficiary]
        del mine[claim.claim_id]
        if not mine:
            del self._open_claims[claim.beneficiary]

    # ---- spilling (services/payments/domain/spill.py) -------------------------------------------

    def prefetch(self, lines: Iterable[Line]) -> None:
        """Read back the spilled parts of these lines in one load (before a batch reaches them)."""
        missing = {line for line in lines if line not in self._present}
        if missing and self._spilled_any:
            assert self._spill is not None
            for part in self._spill.load(LINE, [line_key(line) for line in missing]).values():
                self._restore(part)
        for line in missing:
            self._present[line] = None

    def spill_idle(self) -> list[IdlePart]:
        """Spill the least recently reached idle lines while the book holds more than `keep_in_memory`
        orders or lines, of the `SPILL_LOOK_AHEAD` least recent (none without a spill); the parts
        spilled. Call it between commands, never inside one."""
        orders_over = len(self.orders) - self._keep_in_memory
        present_over = len(self._present) - self._keep_in_memory
        if self._spill is None or (orders_over <= 0 and present_over <= 0):
            return []
        idle: list[Line] = []
        busy: list[Line] = []
        # A bounded look per call (calls come with every batch, so spilling keeps up); the busy ones
        # go to the back, so a month's grants waiting for the bank are not looked at on every call.
        for line in itertools.islice(self._present, SPILL_LOOK_AHEAD):
            if orders_over <= 0 and present_over <= 0:
                break
            if self._idle(line):
                idle.append(line)
                orders_over -= len(self._line_orders.get(line, ()))
                present_over -= 1
            else:
                busy.append(line)
        for line in busy:  # to the back, so the next pass starts with ones that may be idle
            self._present[line] = self._present.pop(line)
        parts = [self._take_part(line) for line in idle]
        kept = [part for part in parts if part.decisions]  # one never decided for holds nothing
        items: list[tuple[str, str, object]] = [(LINE, line_key(part.line), part) for part in kept]
        items += [(ENTRY, entry.entry_id, part.line) for part in kept for entry, _ in part.entries]
        if items:
            self._spill.save(items)
            self._spilled_any = True
        for part in kept:
            self.spilled.add(part, 1)
        return kept

    def discard(self) -> None:
        """The book is thrown away (it holds what was not saved): what it spilled goes with it."""
        if self._spill is not None and self._spilled_any:
            self._spill.discard()

    def in_memory(self) -> int:
        """How many lines' parts are in memory."""
        return len(self._present)

    def _reach(self, line: Line) -> None:
        """A line is reached: its part in memory (read back if spilled), most recent."""
        if line in self._present:
            self._present[line] = self._present.pop(line)
        else:
            self.prefetch([line])

    def _idle(self, line: Line) -> bool:
        return all(
            self.orders[order_id].state in (OrderState.PAID, OrderState.CANCELLED)
            for order_id in self._line_orders.get(line, ())
        ) and all(self.claims[claim_id].open_fen == 0 for claim_id in self._line_claims.get(line, ()))

    def _take_part(self, line: Line) -> IdlePart:
        del self._present[line]
        decisions = self._line_decisions.pop(line, [])
        if not decisions:  # reached, never decided for: nothing of it is held
            return IdlePart(line, LineTally(), [], [], [], [])
        self.applied_decisions.difference_update(decisions)
        lines = self._beneficiary_lines[line.beneficiary]
        del lines[line]
        if not lines:
            del self._beneficiary_lines[line.beneficiary]
        entry_ids = self._line_entries.pop(line, [])
        return IdlePart(
            line=line,
            tally=self.lines.pop(line),
            decisions=decisions,
            orders=[self.orders.pop(order_id) for order_id in self._line_orders.pop(line, [])],
            claims=[self.claims.pop(claim_id) for claim_id in self._line_claims.pop(line, [])],
            entries=[(self.entries.pop(entry_id), self.settlements.pop(entry_id)) for entry_id in entry_ids],
        )

    def _restore(self, part: IdlePart) -> None:
        line = part.line
        self.spilled.add(part, -1)
        self.lines[line] = part.tally
        self._line_decisions[line] = part.decisions
        self.applied_decisions.update(part.decisions)
        self._beneficiary_lines.setdefault(line.beneficiary, {})[line] = None
        self.orders.update((order.order_id, order) for order in part.orders)
        if part.orders:
            self._line_orders[line] = [order.order_id for order in part.orders]
        self.claims.update((claim.claim_id, claim) for claim in part.claims)
        if part.claims:
            self._line_claims[line] = [claim.claim_id for claim in part.claims]
        for entry, outcome in part.entries:
            self.entries[entry.entry_id] = entry
            self.settlements[entry.entry_id] = outcome
        if part.entries:
            self._line_entries[line] = [entry.entry_id for entry, _ in part.entries]

    # ---- queries --------------------------------------------------------------------------------

    def has_applied(self, decision_id: str, line: Line | None) -> bool:
        """Whether the decision was applied (its line's part read back first, if spilled)."""
        if line is not None:
            self._reach(line)
        return decision_id in self.applied_decisions

    def budget(self, program: str, fiscal_year: int) -> Budget:
        """The budget of a programme and year (an empty one, not stored, when never touched)."""
        return self.budgets.get((program, fiscal_year)) or Budget(program, fiscal_year)

    def order(self, order_id: str) -> PaymentOrder:
        return self.orders[order_id]

    def order_count(self) -> int:
        return len(self.orders) + self.spilled.orders

    def orders_of_line(self, line: Line) -> list[PaymentOrder]:
        return [self.orders[order_id] for order_id in self._line_orders.get(line, [])]

    def orders_of(self, beneficiary: str) -> list[PaymentOrder]:
        """The beneficiary's orders in memory, line by line."""
        lines = self._beneficiary_lines.get(beneficiary, {})
        return [self.orders[order_id] for line in lines for order_id in self._line_orders.get(line, [])]

    def claims_of(self, beneficiary: str) -> list[Claim]:
        """The beneficiary's claims in memory, line by line."""
        lines = self._beneficiary_lines.get(beneficiary, {})
        return [self.claims[claim_id] for line in lines for claim_id in self._line_claims.get(line, [])]

    def open_claims(self, beneficiary: str) -> list[Claim]:
        return [self.claims[claim_id] for claim_id in self._open_claims.get(beneficiary, {})]

    def ready_order_ids(self) -> list[str]:
        return list(self._ready)

    def ready_count(self) -> int:
        return len(self._ready)

    def oldest_ready_at(self) -> datetime | None:
        """When the first order of the ready queue (the next to be batched) became ready."""
        return self._ready_at(next(iter(self._ready))) if self._ready else None

    def ready_orders(self) -> list[PaymentOrder]:
        """Orders ready to pay, in the order they will be batched."""
        return [self.orders[order_id] for order_id in self._ready]

    def awaiting_orders(self, program: str, fiscal_year: int) -> list[PaymentOrder]:
        return [self.orders[order_id] for order_id in self.budget(program, fiscal_year).awaiting]

    def beneficiaries(self) -> list[str]:
        """The beneficiaries with a line in memory."""
        return sorted(self._beneficiary_lines)

    def trial_balance_fen(self) -> int:
        return self.accounts.trial_balance_fen()

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain data, for comparing a live book with its replay."""
        return {
            "book": self.book,
            "event_count": self.event_count,
            "batch_count": self.batch_count,
            "applied_decisions": sorted(self.applied_decisions),
            "repayment_references": sorted(self.repayment_references),
            "lines": {str(line): asdict(tally) for line, tally in self.lines.items()},
            "orders": {order_id: asdict(order) for order_id, order in self.orders.items()},
            "budgets": {f"{p}:{y}": asdict(budget) for (p, y), budget in self.budgets.items()},
            "claims": {claim_id: asdict(claim) for claim_id, claim in self.claims.items()},
            "entries": {entry_id: asdict(entry) for entry_id, entry in self.entries.items()},
            "settlements": dict(self.settlements),
            "ready": list(self._ready),
            "open_claims": {b: list(ids) for b, ids in self._open_claims.items()},
            "balances": {str(account): balance for account, balance in self.accounts.balances().items()},
        }
