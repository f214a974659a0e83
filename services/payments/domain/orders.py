"""Payment orders: one per grant, tracked from budget commitment to settlement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.payments.domain.lines import Line


class OrderState(StrEnum):
    AWAITING_BUDGET = "awaiting_budget"
    READY = "ready"
    IN_TRANSIT = "in_transit"
    PAID = "paid"
    CANCELLED = "cancelled"


@dataclass(slots=True)
class PaymentOrder:
    """Amounts in fen: `amount_fen` is what the order is worth now (granted minus cancelled), of which
    `offset_fen` settled claims, `paid_fen` was confirmed by the bank and `in_transit_fen` is with it."""

    order_id: str
    decision_id: str
    line: Line
    fiscal_year: int
    granted_fen: int
    amount_fen: int
    created_at: datetime
    committed: bool = False
    awaiting_reason: str | None = None
    ready_at: datetime | None = None
    cancelled_fen: int = 0
    offset_fen: int = 0
    paid_fen: int = 0
    in_transit_fen: int = 0
    attempts: int = 0
    last_return_reason: str | None = None

    @property
    def beneficiary(self) -> str:
        return self.line.beneficiary

    @property
    def program(self) -> str:
        return self.line.program

    @property
    def settled_fen(self) -> int:
        """Paid to the beneficiary: by the bank or by settling its debts."""
        return self.offset_fen + self.paid_fen

    @property
    def unpaid_fen(self) -> int:
        """Not yet disbursed: what a clawback may still cancel."""
        return self.amount_fen - self.settled_fen - self.in_transit_fen

    @property
    def state(self) -> OrderState:
        if self.amount_fen == 0:
            return OrderState.CANCELLED
        if not self.committed:
            return OrderState.AWAITING_BUDGET
        if self.in_transit_fen:
            return OrderState.IN_TRANSIT
        if self.unpaid_fen:
            return OrderState.READY
        return OrderState.PAID

    def check(self) -> None:
        assert 0 <= self.amount_fen <= self.granted_fen, self
        assert self.amount_fen + self.cancelled_fen == self.granted_fen, self
        assert min(self.offset_fen, self.paid_fen, self.in_transit_fen, self.unpaid_fen) >= 0, self
        assert self.committed or self.settled_fen + self.in_transit_fen == 0, self
        assert not (self.in_transit_fen and self.unpaid_fen), self
