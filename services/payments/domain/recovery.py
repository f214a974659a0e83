"""Clawbacks and recovery: cancel what is unpaid, claim the rest, offset claims against later payments.

- A clawback of Δ on a line first cancels the line's orders not yet disbursed: orders awaiting budget
  (newest first), then committed orders' unpaid remainders (newest first). What is left of Δ was
  already disbursed (paid, offset, or in a batch sent to the bank) and becomes a claim (receivable).
- Claims are offset against the beneficiary's ready orders of any programme: oldest claim against
  oldest ready order first. This happens when a claim is raised (against orders already ready) and
  whenever an order of the beneficiary becomes ready (committed, released, or re-queued after a bank
  return). So a beneficiary never has both an open claim and an order ready to pay.
- Claims not offset stay open until offset later or repaid (`PaymentsBook.record_repayment`), which
  is allocated to the oldest claims first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from services.payments.domain.lines import Line
from services.payments.domain.orders import OrderState, PaymentOrder


@dataclass(slots=True)
class Claim:
    claim_id: str
    decision_id: str
    line: Line
    fiscal_year: int
    amount_fen: int
    raised_at: datetime
    offset_fen: int = 0
    repaid_fen: int = 0

    @property
    def beneficiary(self) -> str:
        return self.line.beneficiary

    @property
    def recovered_fen(self) -> int:
        return self.offset_fen + self.repaid_fen

    @property
    def open_fen(self) -> int:
        return self.amount_fen - self.recovered_fen

    def check(self) -> None:
        assert self.amount_fen > 0 and 0 <= self.recovered_fen <= self.amount_fen, self


@dataclass(frozen=True, slots=True)
class Cancellation:
    order_id: str
    amount_fen: int
    committed: bool


def split_clawback(line_orders: Sequence[PaymentOrder], amount_fen: int) -> tuple[list[Cancellation], int]:
    """How a clawback of `amount_fen` splits over a line's orders (oldest first): the cancellations of
    undisbursed amounts, and the remainder to claim back."""
    assert amount_fen > 0
    waiting = [o for o in reversed(line_orders) if o.state is OrderState.AWAITING_BUDGET]
    ready = [o for o in reversed(line_orders) if o.committed and o.unpaid_fen > 0]
    cancellations: list[Cancellation] = []
    left_fen = amount_fen
    for order in [*waiting, *ready]:
        if left_fen == 0:
            break
        cancellable_fen = order.amount_fen if not order.committed else order.unpaid_fen
        take_fen = min(left_fen, cancellable_fen)
        cancellations.append(Cancellation(order.order_id, take_fen, order.committed))
        left_fen -= take_fen
    return cancellations, left_fen


@dataclass(frozen=True, slots=True)
class Offset:
    claim_id: str
    order_id: str
    amount_fen: int


def plan_offsets(claims: Iterable[Claim], orders: Iterable[PaymentOrder]) -> list[Offset]:
    """Match open claims against ready orders' unpaid amounts, both oldest first."""
    open_claims = [(claim.claim_id, claim.open_fen) for claim in claims if claim.open_fen > 0]
    unpaid_orders = [(order.order_id, order.unpaid_fen) for order in orders if order.unpaid_fen > 0]
    claim_left_fen = [amount for _, amount in open_claims]
    order_left_fen = [amount for _, amount in unpaid_orders]
    out: list[Offset] = []
    i = j = 0
    while i < len(open_claims) and j < len(unpaid_orders):
        take_fen = min(claim_left_fen[i], order_left_fen[j])
        out.append(Offset(open_claims[i][0], unpaid_orders[j][0], take_fen))
        claim_left_fen[i] -= take_fen
        order_left_fen[j] -= take_fen
        if claim_left_fen[i] == 0:
            i += 1
        if order_left_fen[j] == 0:
            j += 1
    return out


def allocate(claims: Iterable[Claim], amount_fen: int) -> list[tuple[str, int]]:
    """Spread a repayment over open claims, oldest first; the caller ensures it is not too large."""
    out: list[tuple[str, int]] = []
    left_fen = amount_fen
    for claim in claims:
        if left_fen == 0:
            break
        take_fen = min(left_fen, claim.open_fen)
        if take_fen:
            out.append((claim.claim_id, take_fen))
            left_fen -= take_fen
    assert left_fen == 0, f"repayment exceeds open claims by {left_fen} fen"
    return out
