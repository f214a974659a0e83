"""The journal: which balanced postings each event makes (docs/design/payments.md has the table).

One function per kind of event that moves money; `postings_for` picks it. Each posting is a `transfer`
(debit, credit, amount): the legs balance by construction.
"""

from __future__ import annotations

from services.payments.domain import accounts as a
from services.payments.domain import events as e
from services.payments.domain.accounts import Posting, transfer


def postings_for(event: e.PaymentsEvent) -> tuple[Posting, ...]:
    """The postings `event` makes; a pure function of the event alone."""
    match event:
        case e.AppropriationSet():
            return _appropriation_set(event)
        case e.OrderCommitted():
            return _order_committed(event)
        case e.OrderCancelled(committed=True):
            return _committed_order_cancelled(event)
        case e.ReceivableRaised():
            return _receivable_raised(event)
        case e.ReceivableOffset():
            return _receivable_offset(event)
        case e.BatchCut():
            return _batch_cut(event)
        case e.PaymentConfirmed():
            return (transfer(a.IN_TRANSIT, a.BANK, event.amount_fen, f"entry {event.entry_id} paid"),)
        case e.PaymentReturned():
            return _payment_returned(event)
        case e.RepaymentReceived():
            return _repayment_received(event)
        case _:
            # DecisionReceived, OrderCreated, OrderAwaitingBudget and uncommitted cancellations move
            # no money.
            return ()


def _appropriation_set(event: e.AppropriationSet) -> tuple[Posting, ...]:
    """A raised appropriation moves the difference from the Finance Bureau into the budget; a lowered
    one moves it back; an unchanged one moves nothing."""
    budget = a.budget(event.program, event.fiscal_year)
    what = f"appropriation {event.program} {event.fiscal_year}"
    if event.delta_fen > 0:
        return (transfer(a.FINANCE_BUREAU, budget, event.delta_fen, f"{what} raised"),)
    if event.delta_fen < 0:
        return (transfer(budget, a.FINANCE_BUREAU, -event.delta_fen, f"{what} lowered"),)
    return ()


def _order_committed(event: e.OrderCommitted) -> tuple[Posting, ...]:
    budget = a.budget(event.program, event.fiscal_year)
    return (transfer(budget, a.payable(event.beneficiary), event.amount_fen,
                     f"order {event.order_id} committed"),)


def _committed_order_cancelled(event: e.OrderCancelled) -> tuple[Posting, ...]:
    budget = a.budget(event.program, event.fiscal_year)
    return (transfer(a.payable(event.beneficiary), budget, event.amount_fen,
                     f"order {event.order_id} cancelled by {event.decision_id}"),)


def _receivable_raised(event: e.ReceivableRaised) -> tuple[Posting, ...]:
    line = event.line
    return (transfer(a.receivable(line.beneficiary), a.clawbacks(line.program, event.fiscal_year),
                     event.amount_fen, f"claim {event.claim_id} raised"),)


def _receivable_offset(event: e.ReceivableOffset) -> tuple[Posting, ...]:
    return (transfer(a.payable(event.beneficiary), a.receivable(event.beneficiary), event.amount_fen,
                     f"claim {event.claim_id} offset against order {event.order_id}"),)


def _batch_cut(event: e.BatchCut) -> tuple[Posting, ...]:
    return tuple(
        transfer(a.payable(entry.beneficiary), a.IN_TRANSIT, entry.amount_fen,
                 f"entry {entry.entry_id} instructed")
        for entry in event.entries
    )


def _payment_returned(event: e.PaymentReturned) -> tuple[Posting, ...]:
    return (transfer(a.IN_TRANSIT, a.payable(event.beneficiary), event.amount_fen,
                     f"entry {event.entry_id} returned"),)


def _repayment_received(event: e.RepaymentReceived) -> tuple[Posting, ...]:
    return (transfer(a.BANK, a.receivable(event.beneficiary), event.amount_fen,
                     f"repayment {event.reference}"),)
