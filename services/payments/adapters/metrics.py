"""Payments' own Prometheus metrics (the runtime's are in services/runtime/metrics.py): orders by
outcome and programme, money committed and paid per programme (fen), disbursement entries by outcome,
refusals by cause.

Counted by the read-side projection as it folds each recorded event, once per event in this process
(the start-up scan that rebuilds its copy counts nothing: those events were counted when they were
recorded). `books` is `production` or `sandbox` (FLEXLEDGER_PRODUCTION_BOOKS): a scenario run's
sandbox book, which never has an appropriation, must not look like the city's budget running out."""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Collection, Sequence

from prometheus_client import Counter

from services.payments.domain import PaymentsBook
from services.payments.domain import events as e

ORDERS = Counter("flexledger_payments_orders_total", "Payment orders by what happened to them: created, "
                 "committed (charged to the budget), awaiting_budget, cancelled.",
                 ["books", "programme", "outcome"])
COMMITTED_FEN = Counter("flexledger_payments_committed_fen_total", "Money of the orders committed "
                        "(charged to their programme's budget), in fen.", ["books", "programme"])
PAID_FEN = Counter("flexledger_payments_paid_fen_total", "Money the bank confirmed paid, in fen.",
                   ["books", "programme"])
DISBURSEMENTS = Counter("flexledger_payments_disbursement_entries_total", "Disbursement entries by "
                        "outcome: instructed (in a batch cut for Finance), paid, returned (by the bank).",
                        ["books", "outcome"])
REFUSALS = Counter("flexledger_payments_refusals_total", "Decisions, settlements and commands a book refused "
                   "(a settlement that does not match its batch, ...), by cause.", ["books", "cause"])


class PaymentsMetrics:
    def __init__(self, production_books: Collection[str]) -> None:
        self.production_books = frozenset(production_books)

    def books(self, book: str) -> str:
        return "production" if book in self.production_books else "sandbox"

    def count(self, name: str, book: PaymentsBook, events: Sequence[e.PaymentsEvent]) -> None:
        """The events of one recorded change of book `name` (already applied to `book`)."""
        books = self.books(name)
        orders: Tally[tuple[str, str]] = Tally()
        for event in events:
            match event:
                case e.OrderCreated():
                    orders[event.line.program, "created"] += 1
                case e.OrderAwaitingBudget():
                    orders[event.program, "awaiting_budget"] += 1
                case e.OrderCommitted():
                    orders[event.program, "committed"] += 1
                    COMMITTED_FEN.labels(books, event.program).inc(event.amount_fen)
                case e.OrderCancelled():
                    orders[event.program, "cancelled"] += 1
                case e.BatchCut():
                    DISBURSEMENTS.labels(books, "instructed").inc(len(event.entries))
                case e.PaymentConfirmed():
                    DISBURSEMENTS.labels(books, "paid").inc()
                    PAID_FEN.labels(books, book.orders[event.order_id].program).inc(event.amount_fen)
                case e.PaymentReturned():
                    DISBURSEMENTS.labels(books, "returned").inc()
        for (programme, outcome), n in orders.items():
            ORDERS.labels(books, programme, outcome).inc(n)

    def refused(self, name: str, cause: str) -> None:
        REFUSALS.labels(self.books(name), cause).inc()
