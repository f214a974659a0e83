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

from dataclasses import dataclass

from services.payments.domain.book import PaymentsBook
from services.payments.domain.orders import OrderState


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
        if (r := row(order.program, order.fiscal_year)) is None:
            continue
        if order.state is OrderState.AWAITING_BUDGET:
            r.awaiting_budget_fen += order.amount_fen
            r.awaiting_budget_orders += 1
        elif order.committed:
            r.committed_fen += order.unpaid_fen + order.in_transit_fen
            r.paid_by_bank_fen += order.paid_fen
            r.paid_by_offset_fen += order.offset_fen
    for claim in book.claims.values():
        if (r := row(claim.line.program, claim.fiscal_year)) is not None:
            r.recovered_fen += claim.recovered_fen
            r.receivables_outstanding_fen += claim.open_fen
    out: list[ProgrammeTotals] = []
    for program, r in sorted(rows.items()):
        paid_fen = r.paid_by_bank_fen + r.paid_by_offset_fen
        out.append(
            ProgrammeTotals(
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
        )
    return out


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
    orders = book.orders_of(beneficiary)
    claims = book.claims_of(beneficiary)
    returned = [o.last_return_reason for o in orders if o.state is OrderState.READY and o.last_return_reason]
    return BeneficiaryBalance(
        beneficiary=beneficiary,
        awaiting_budget_fen=sum(o.amount_fen for o in orders if o.state is OrderState.AWAITING_BUDGET),
        payable_fen=sum(o.unpaid_fen for o in orders if o.committed),
        in_transit_fen=sum(o.in_transit_fen for o in orders),
        paid_by_bank_fen=sum(o.paid_fen for o in orders),
        paid_by_offset_fen=sum(o.offset_fen for o in orders),
        receivable_fen=sum(c.open_fen for c in claims),
        recovered_fen=sum(c.recovered_fen for c in claims),
        last_return_reason=returned[-1] if returned else None,
    )


def beneficiary_balances(book: PaymentsBook) -> list[BeneficiaryBalance]:
    return [beneficiary_balance(book, beneficiary) for beneficiary in book.beneficiaries()]
