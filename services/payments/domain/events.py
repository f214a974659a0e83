"""Domain events of the payments book. Each records a fact; `PaymentsBook.apply` folds it.

Events carry everything their postings need (see `postings.postings_for`), so the journal can be
re-derived from the events alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from services.payments.domain.batching import DisbursementEntry
from services.payments.domain.lines import Line


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionReceived:
    """A grant or clawback was accepted; its id is never applied again."""

    decision_id: str
    kind: Literal["grant", "clawback"]
    line: Line
    fiscal_year: int
    amount_fen: int
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCreated:
    """A grant became a payment order (its id is the grant's decision id); not yet committed."""

    order_id: str
    decision_id: str
    line: Line
    fiscal_year: int
    amount_fen: int
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderAwaitingBudget:
    order_id: str
    program: str
    fiscal_year: int
    amount_fen: int
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCommitted:
    """The order's amount is charged to its budget and owed to the beneficiary; it is ready to pay.

    `released` is true when it had been awaiting budget."""

    order_id: str
    beneficiary: str
    program: str
    fiscal_year: int
    amount_fen: int
    released: bool
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderCancelled:
    """A clawback cancelled `amount_fen` of an order not yet disbursed (`committed`: it had been
    charged to its budget, which gets the amount back)."""

    order_id: str
    decision_id: str
    beneficiary: str
    program: str
    fiscal_year: int
    amount_fen: int
    committed: bool
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivableRaised:
    """The part of a clawback already disbursed: the beneficiary owes it (claim id = decision id)."""

    claim_id: str
    decision_id: str
    line: Line
    fiscal_year: int
    amount_fen: int
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ReceivableOffset:
    """`amount_fen` of a ready order is kept to settle a claim on the same beneficiary."""

    claim_id: str
    order_id: str
    beneficiary: str
    amount_fen: int
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class AppropriationSet:
    program: str
    fiscal_year: int
    amount_fen: int
    previous_fen: int
    at: datetime

    @property
    def delta_fen(self) -> int:
        return self.amount_fen - self.previous_fen


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchCut:
    """A disbursement instruction for the Finance Bureau."""

    batch_id: str
    entries: tuple[DisbursementEntry, ...]
    at: datetime

    @property
    def total_fen(self) -> int:
        return sum(entry.amount_fen for entry in self.entries)


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentConfirmed:
    entry_id: str
    order_id: str
    beneficiary: str
    amount_fen: int
    confirmation: str
    at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class PaymentReturned:
    """The bank returned an entry; its order is owed again and back at the end of the ready queue."""

    entry_id: str
    order_id: str
    beneficiary: str
    amount_fen: int
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Allocation:
    claim_id: str
    amount_fen: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RepaymentReceived:
    """The beneficiary paid back money it owed, allocated to its oldest claims first."""

    reference: str
    beneficiary: str
    amount_fen: int
    allocations: tuple[Allocation, ...]
    at: datetime


PaymentsEvent = (
    DecisionReceived
    | OrderCreated
    | OrderAwaitingBudget
    | OrderCommitted
    | OrderCancelled
    | ReceivableRaised
    | ReceivableOffset
    | AppropriationSet
    | BatchCut
    | PaymentConfirmed
    | PaymentReturned
    | RepaymentReceived
)
