"""Reconciliation: the accounts against the sub-ledgers, and the book's invariants.

`reconcile(book)` returns every disagreement (empty when the book is sound). It is what tests assert
after every step and what `audit verify` can run over a replayed book. Of a book that spilled idle
beneficiaries (services/payments/domain/spill.py) it checks the parts in memory one by one and the
spilled ones by what they add up to: their lines were checked while they were in memory.
"""

from __future__ import annotations

from services.payments.domain import accounts as a
from services.payments.domain.book import BudgetKey, PaymentsBook
from services.payments.domain.orders import OrderState


def reconcile(book: PaymentsBook) -> list[str]:
    """Every disagreement between the accounts and the sub-ledgers (orders, budgets, claims),
    or a broken invariant; empty when the book is sound."""
    problems = _Problems()
    if book.accounts.trial_balance_fen():
        problems.append(f"trial balance is {book.accounts.trial_balance_fen()} fen, not 0")
    _budgets(book, problems)
    _money_out(book, problems)
    _beneficiaries(book, problems)
    _lines(book, problems)
    return list(problems)


class _Problems(list[str]):
    def expect(self, what: str, actual: int, expected: int) -> None:
        if actual != expected:
            self.append(f"{what}: accounts {actual} fen, sub-ledger {expected} fen")


def _budgets(book: PaymentsBook, problems: _Problems) -> None:
    """Appropriations against the Finance Bureau's account; each budget's use, availability and queue."""
    accounts = book.accounts
    problems.expect(
        "finance_bureau",
        accounts.balance_fen(a.FINANCE_BUREAU),
        sum(budget.appropriated_fen for budget in book.budgets.values()),
    )
    used: dict[BudgetKey, int] = {key: share.used_fen for key, share in book.spilled.by_budget.items()}
    awaiting: dict[BudgetKey, list[str]] = {}
    for order in book.orders.values():
        key = (order.program, order.fiscal_year)
        if order.committed:
            used[key] = used.get(key, 0) + order.amount_fen
        elif order.amount_fen:
            awaiting.setdefault(key, []).append(order.order_id)
    for key, budget in sorted(book.budgets.items()):
        problems.expect(f"budget {key} used", budget.used_fen, used.get(key, 0))
        problems.expect(
            f"budget:{key[0]}:{key[1]}", accounts.credit_balance_fen(a.budget(*key)), budget.available_fen
        )
        if not 0 <= budget.used_fen <= budget.appropriated_fen:
            problems.append(
                f"budget {key} overspent: used {budget.used_fen} of {budget.appropriated_fen} fen"
            )
        if sorted(budget.awaiting) != sorted(awaiting.get(key, [])):
            problems.append(f"budget {key}: awaiting queue disagrees with orders")


def _money_out(book: PaymentsBook, problems: _Problems) -> None:
    """Money in transit and at the bank, clawbacks per budget, and the queue of orders ready to pay."""
    accounts = book.accounts
    problems.expect(
        "in_transit",
        accounts.credit_balance_fen(a.IN_TRANSIT),
        sum(o.in_transit_fen for o in book.orders.values()),
    )
    problems.expect(
        "bank",
        accounts.credit_balance_fen(a.BANK),
        sum(o.paid_fen for o in book.orders.values()) - sum(c.repaid_fen for c in book.claims.values())
        + sum(share.paid_fen - share.repaid_fen for share in book.spilled.by_budget.values()),
    )
    claimed: dict[BudgetKey, int] = {key: share.claimed_fen for key, share in book.spilled.by_budget.items()}
    for claim in book.claims.values():
        key = (claim.line.program, claim.fiscal_year)
        claimed[key] = claimed.get(key, 0) + claim.amount_fen
    for key, claimed_fen in sorted(claimed.items()):
        problems.expect(
            f"clawbacks:{key[0]}:{key[1]}", accounts.credit_balance_fen(a.clawbacks(*key)), claimed_fen
        )
    ready = [o.order_id for o in book.orders.values() if o.state is OrderState.READY]
    if sorted(ready) != sorted(book.ready_order_ids()):
        problems.append("ready queue disagrees with order states")


def _beneficiaries(book: PaymentsBook, problems: _Problems) -> None:
    """Each beneficiary's payable and receivable, and no order ready to pay while a claim is open (a
    spilled beneficiary has neither)."""
    in_memory = set(book.beneficiaries())
    for account in book.accounts.balances():
        personal = account.kind in (a.AccountKind.PAYABLE, a.AccountKind.RECEIVABLE)
        if personal and account.beneficiary not in in_memory:
            problems.append(f"{account}: a balance, but no orders or claims of the beneficiary in memory")
    for beneficiary in book.beneficiaries():
        orders = book.orders_of(beneficiary)
        problems.expect(
            f"payable:{beneficiary}",
            book.accounts.credit_balance_fen(a.payable(beneficiary)),
            sum(o.unpaid_fen for o in orders if o.committed),
        )
        open_fen = sum(c.open_fen for c in book.claims_of(beneficiary))
        problems.expect(
            f"receivable:{beneficiary}", book.accounts.balance_fen(a.receivable(beneficiary)), open_fen
        )
        if open_fen and any(o.state is OrderState.READY for o in orders):
            problems.append(f"{beneficiary} has open claims and orders ready to pay (offset missed)")


def _lines(book: PaymentsBook, problems: _Problems) -> None:
    """Each money line: orders add up to grants less cancellations; clawbacks split; never overpaid."""
    for line, tally in book.lines.items():
        orders = book.orders_of_line(line)
        if tally.granted_fen - tally.cancelled_fen != sum(o.amount_fen for o in orders):
            problems.append(f"line {line}: orders do not add up to grants minus cancellations")
        if tally.clawed_fen != tally.cancelled_fen + tally.claimed_fen or tally.net_fen < 0:
            problems.append(f"line {line}: clawbacks do not split into cancellations and claims")
        if sum(o.settled_fen for o in orders) - tally.claimed_fen > tally.net_fen:
            problems.append(f"line {line}: paid above its net entitlement")
