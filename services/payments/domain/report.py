"""Reports: per-programme totals and per-beneficiary balances, read from a `PaymentsBook`.

Definitions (all integer fen):
- appropriated: the appropriations in force;
- committed: charged to the budget and not yet paid (ready to pay, or in a batch at the bank);
- paid: settled to the beneficiary, by the bank (`paid_by_bank_fen`) or by keeping it against money
  the beneficiary owed (`paid_by_offset_fen`);
- available: appropriated - committed - paid;
- recovered: of this programme's clawback claims, what was offset or repaid;
- receivables outstanding: of this programme's claims, what is still owed;
- awaiting budget: orders not yet charged to the budget.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from services.payments.domain.book import PaymentsBook
from services.payments.domain.orders import OrderState, PaymentOrder
from services.payments.domain.recovery import Claim
from services.payments.domain.spill import BudgetShare


@dataclass(frozen=True, slots=True)
class ProgrammeTotals:
    program: str
    fiscal_year: int | None  # None: all years together
    appropriated_fen: int = 0
    committed_fen: int = 0
    paid_fen: int = 0
    paid_by_bank_fen: int = 0
    paid_by_offset_fen: int = 0
    available_fen: int = 0
    recovered_fen: int = 0
    receivables_outstanding_fen: int = 0
    awaiting_budget_fen: int = 0
    awaiting_budget_orders: int = 0


@dataclass(slots=True)
class _Totals:
    appropriated_fen: int = 0
    committed_fen: int = 0
    paid_by_bank_fen: int = 0
    paid_by_offset_fen: int = 0
    recovered_fen: int = 0
    receivables_outstanding_fen: int = 0
    awaiting_budget_fen: int = 0
    awaiting_budget_orders: int = 0

    def add(self, part: _Totals, sign: int) -> None:
        """Add (sign 1) or take away (sign -1) what one order or claim counts (never appropriations)."""
        self.committed_fen += sign * part.committed_fen
        self.paid_by_bank_fen += sign * part.paid_by_bank_fen
        self.paid_by_offset_fen += sign * part.paid_by_offset_fen
        self.recovered_fen += sign * part.recovered_fen
        self.receivables_outstanding_fen += sign * part.receivables_outstanding_fen
        self.awaiting_budget_fen += sign * part.awaiting_budget_fen
        self.awaiting_budget_orders += sign * part.awaiting_budget_orders


def _count_order(r: _Totals, order: PaymentOrder) -> None:
    if order.state is OrderState.AWAITING_BUDGET:
        r.awaiting_budget_fen += order.amount_fen
        r.awaiting_budget_orders += 1
    elif order.committed:
        r.committed_fen += order.unpaid_fen + order.in_transit_fen
        r.paid_by_bank_fen += order.paid_fen
        r.paid_by_offset_fen += order.offset_fen


def _count_claim(r: _Totals, claim: Claim) -> None:
    r.recovered_fen += claim.recovered_fen
    r.receivables_outstanding_fen += claim.open_fen


def _count_spilled(r: _Totals, share: BudgetShare) -> None:
    """Spilled orders are paid or cancelled, their claims closed: only money paid and recovered."""
    r.paid_by_bank_fen += share.paid_fen
    r.paid_by_offset_fen += share.offset_fen
    r.recovered_fen += share.recovered_fen


def _report(program: str, fiscal_year: int | None, r: _Totals) -> ProgrammeTotals:
    paid_fen = r.paid_by_bank_fen + r.paid_by_offset_fen
    return ProgrammeTotals(
        program=program,
        fiscal_year=fiscal_year,
        appropriated_fen=r.appropriated_fen,
        committed_fen=r.committed_fen,
        paid_fen=paid_fen,
        paid_by_bank_fen=r.paid_by_bank_fen,
        paid_by_offset_fen=r.paid_by_offset_fen,
        available_fen=r.appropriated_fen - r.committed_fen - paid_fen,
        recovered_fen=r.recovered_fen,
        receivables_outstanding_fen=r.receivables_outstanding_fen,
        awaiting_budget_fen=r.awaiting_budget_fen,
        awaiting_budget_orders=r.awaiting_budget_orders,
    )


def programme_totals(book: PaymentsBook, fiscal_year: int | None = None) -> list[ProgrammeTotals]:
    """One row per programme (sorted), for one fiscal year or, with None, all years summed."""
    rows: dict[str, _Totals] = {}

    def row(program: str, year: int) -> _Totals | None:
        if fiscal_year is not None and year != fiscal_year:
            return None
        return rows.setdefault(program, _Totals())

    for (program, year), budget in book.budgets.items():
        if (r := row(program, year)) is not None:
            r.appropriated_fen += budget.appropriated_fen
    for order in book.orders.values():
        if (r := row(order.program, order.fiscal_year)) is not None:
            _count_order(r, order)
    for claim in book.claims.values():
        if (r := row(claim.line.program, claim.fiscal_year)) is not None:
            _count_claim(r, claim)
    for (program, year), share in book.spilled.by_budget.items():
        if (r := row(program, year)) is not None:
            _count_spilled(r, share)
    return [_report(program, fiscal_year, r) for program, r in sorted(rows.items())]


class RunningTotals:
    """`programme_totals` of one book per (programme, fiscal year), kept up to date without scanning the
    book: after events are folded, `refresh` re-counts only the orders and claims they touched (what
    each counted is kept, so it is taken away before its new count is added; refreshing an untouched
    one changes nothing; `forget` drops what spilled ones counted, which can no longer change).
    `row(program, year)` is that programme's row of `programme_totals(book, year)`, or None where
    that report has no row."""

    def __init__(self, book: PaymentsBook) -> None:
        self._book = book
        self._rows: dict[tuple[str, int], _Totals] = {}
        self._parts: dict[tuple[str, str], tuple[tuple[str, int], _Totals]] = {}  # ("order"/"claim", id)
        for key, share in book.spilled.by_budget.items():
            _count_spilled(self._rows.setdefault(key, _Totals()), share)
        self.refresh(book.orders, book.claims)

    def forget(self, order_ids: Iterable[str], claim_ids: Iterable[str]) -> None:
        """Spilled orders and claims (paid, cancelled or closed: never counted again) stay counted in
        their rows; what each counted need not be kept."""
        for order_id in order_ids:
            self._parts.pop(("order", order_id), None)
        for claim_id in claim_ids:
            self._parts.pop(("claim", claim_id), None)

    def refresh(self, order_ids: Iterable[str], claim_ids: Iterable[str]) -> None:
        for order_id in order_ids:
            order = self._book.orders[order_id]
            part = _Totals()
            _count_order(part, order)
            self._replace(("order", order_id), (order.program, order.fiscal_year), part)
        for claim_id in claim_ids:
            claim = self._book.claims[claim_id]
            part = _Totals()
            _count_claim(part, claim)
            self._replace(("claim", claim_id), (claim.line.program, claim.fiscal_year), part)

    def _replace(self, ref: tuple[str, str], key: tuple[str, int], part: _Totals) -> None:
        old = self._parts.get(ref)
        if old is not None:
            self._rows[old[0]].add(old[1], -1)
        self._rows.setdefault(key, _Totals()).add(part, 1)
        self._parts[ref] = (key, part)

    def row(self, program: str, fiscal_year: int) -> ProgrammeTotals | None:
        budget = self._book.budgets.get((program, fiscal_year))
        counted = self._rows.get((program, fiscal_year))
        if budget is None and counted is None:
            return None
        r = _Totals(appropriated_fen=budget.appropriated_fen if budget is not None else 0)
        if counted is not None:
            r.add(counted, 1)
        return _report(program, fiscal_year, r)


@dataclass(frozen=True, slots=True)
class BeneficiaryBalance:
    """Where one beneficiary stands. `net_due_fen` = awaiting + payable + in transit - receivable:
    positive when the city still owes it money, negative when it owes the city."""

    beneficiary: str
    awaiting_budget_fen: int = 0
    payable_fen: int = 0
    in_transit_fen: int = 0
    paid_by_bank_fen: int = 0
    paid_by_offset_fen: int = 0
    receivable_fen: int = 0
    recovered_fen: int = 0
    last_return_reason: str | None = None

    @property
    def net_due_fen(self) -> int:
        return self.awaiting_budget_fen + self.payable_fen + self.in_transit_fen - self.receivable_fen


def beneficiary_balance(book: PaymentsBook, beneficiary: str) -> BeneficiaryBalance:
    """Where the beneficiary stands: their lines in memory, plus what their spilled lines settled."""
    orders = book.orders_of(beneficiary)
    claims = book.claims_of(beneficiary)
    spilled = book.spilled.by_beneficiary.get(beneficiary, BudgetShare())  # idle lines: settled only
    returned = [o.last_return_reason for o in orders if o.state is OrderState.READY and o.last_return_reason]
    return BeneficiaryBalance(
        beneficiary=beneficiary,
        awaiting_budget_fen=sum(o.amount_fen for o in orders if o.state is OrderState.AWAITING_BUDGET),
        payable_fen=sum(o.unpaid_fen for o in orders if o.committed),
        in_transit_fen=sum(o.in_transit_fen for o in orders),
        paid_by_bank_fen=sum(o.paid_fen for o in orders) + spilled.paid_fen,
        paid_by_offset_fen=sum(o.offset_fen for o in orders) + spilled.offset_fen,
        receivable_fen=sum(c.open_fen for c in claims),
        recovered_fen=sum(c.recovered_fen for c in claims) + spilled.recovered_fen,
        last_return_reason=returned[-1] if returned else None,
    )


def beneficiary_balances(book: PaymentsBook) -> list[BeneficiaryBalance]:
    return [beneficiary_balance(book, beneficiary) for beneficiary in book.beneficiaries()]
