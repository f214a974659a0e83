"""The journal: which balanced postings each event makes (docs/design/payments.md has the table)."""

from __future__ import annotations

from services.payments.domain import accounts as a
from services.payments.domain import events as e
from services.payments.domain.accounts import Posting, transfer


def postings_for(event: e.PaymentsEvent) -> tuple[Posting, ...]:
    """The postings `event` makes; a pure function of the event alone."""
    match event:
        case e.AppropriationSet(program=program, fiscal_year=year) if event.delta_fen > 0:
            return (
                transfer(
                    a.FINANCE_BUREAU,
                    a.budget(program, year),
                    event.delta_fen,
                    f"appropriation {program} {year} raised",
                ),
            )
        case e.AppropriationSet(program=program, fiscal_year=year) if event.delta_fen < 0:
            return (
                transfer(
                    a.budget(program, year),
                    a.FINANCE_BUREAU,
                    -event.delta_fen,
                    f"appropriation {program} {year} lowered",
                ),
            )
        case e.OrderCommitted():
            return (
                transfer(
                    a.budget(event.program, event.fiscal_year),
                    a.payable(event.beneficiary),
                    event.amount_fen,
                    f"order {event.order_id} committed",
                ),
            )
        case e.OrderCancelled(committed=True):
            return (
                transfer(
                    a.payable(event.beneficiary),
                    a.budget(event.program, event.fiscal_year),
                    event.amount_fen,
                    f"order {event.order_id} cancelled by {event.decision_id}",
                ),
            )
        case e.ReceivableRaised():
            line = event.line
            return (
                transfer(
                    a.receivable(line.beneficiary),
                    a.clawbacks(line.program, event.fiscal_year),
                    event.amount_fen,
                    f"claim {event.claim_id} raised",
                ),
            )
        case e.ReceivableOffset():
            return (
                transfer(
                    a.payable(event.beneficiary),
                    a.receivable(event.beneficiary),
                    event.amount_fen,
                    f"claim {event.claim_id} offset against order {event.order_id}",
                ),
            )
        case e.BatchCut():
            return tuple(
                transfer(
                    a.payable(entry.beneficiary),
                    a.IN_TRANSIT,
                    entry.amount_fen,
                    f"entry {entry.entry_id} instructed",
                )
                for entry in event.entries
            )
        case e.PaymentConfirmed():
            return (transfer(a.IN_TRANSIT, a.BANK, event.amount_fen, f"entry {event.entry_id} paid"),)
        case e.PaymentReturned():
            return (
                transfer(
                    a.IN_TRANSIT,
                    a.payable(event.beneficiary),
                    event.amount_fen,
                    f"entry {event.entry_id} returned",
                ),
            )
        case e.RepaymentReceived():
            return (
                transfer(
                    a.BANK, a.receivable(event.beneficiary), event.amount_fen, f"repayment {event.reference}"
                ),
            )
        case _:
            # DecisionReceived, OrderCreated, OrderAwaitingBudget, uncommitted cancellations and
            # unchanged appropriations move no money.
            return ()
