"""Spilling idle lines: what keeps a book's memory bounded however many orders it has made.

A money line (a programme, a beneficiary, and the subject, reference and month the decisions name) is
*idle* when nothing of it is open: every order paid or cancelled, no claim open. Nothing outside its
own part of the book points at it then (no budget queue, no ready queue, no payable or receivable
balance), and only a new decision for that line, or a settlement for one of its entries again, can
reach its part. So the book keeps its open lines and the most recently used idle ones in memory, and
hands the others' parts (`IdlePart`) to a `Spill`, reading one back when something reaches it. Which
parts are in memory never changes what the book decides.

The unit is the line, not the beneficiary: an enterprise is the beneficiary of a line per worker and
month, thousands a year, and always has some open, so a beneficiary's part would grow with the facts
and never be idle.

A spill is the book's swap space, not a store of record: it belongs to one book object (one process,
one life of the book), and the book's events stay the only source. What the spilled parts contributed
to the book's totals is kept (`SpilledTotals`), so reconciliation and the programme totals still see
the whole book.
"""

from __future__ import annotations

import json
import pickle
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.payments.domain.batching import DisbursementEntry, SettlementOutcome
from services.payments.domain.lines import Line, LineTally
from services.payments.domain.orders import PaymentOrder
from services.payments.domain.recovery import Claim

LINE = "line"  # a spilled `IdlePart`, by `line_key` of its line
ENTRY = "entry"  # the line of a spilled disbursement entry, by entry id


class Spill(Protocol):
    """Where a book puts idle parts. Keys are (kind, name); values are whatever the book gives."""

    def load(self, kind: str, names: Collection[str]) -> dict[str, Any]:
        """The values kept under these names (names never saved are absent)."""
        ...

    def save(self, items: list[tuple[str, str, Any]]) -> None:
        """Keep (kind, name, value) for each item, replacing what was kept under that key."""
        ...

    def discard(self) -> None:
        """Forget everything kept: the book is thrown away."""
        ...


class MemorySpill:
    """A `Spill` in this process (pickled, so a loaded part shares nothing with the saved one): for
    tests, and for a book whose memory need not be bounded."""

    def __init__(self) -> None:
        self.kept: dict[tuple[str, str], bytes] = {}

    def load(self, kind: str, names: Collection[str]) -> dict[str, Any]:
        return {name: pickle.loads(self.kept[(kind, name)]) for name in names if (kind, name) in self.kept}

    def save(self, items: list[tuple[str, str, Any]]) -> None:
        for kind, name, value in items:
            self.kept[(kind, name)] = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def discard(self) -> None:
        self.kept.clear()


def line_key(line: Line) -> str:
    """A line's name in a spill (its parts in order, None apart from "")."""
    return json.dumps(list(line), ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class IdlePart:
    """Everything of one idle line's the book holds."""

    line: Line
    tally: LineTally
    decisions: list[str]  # ids of the decisions applied (grants and clawbacks)
    orders: list[PaymentOrder]  # oldest first
    claims: list[Claim]
    entries: list[tuple[DisbursementEntry, SettlementOutcome]]  # every entry of an idle part is settled


@dataclass(slots=True)
class BudgetShare:
    """What spilled orders and claims of one (programme, fiscal year) add up to."""

    used_fen: int = 0  # committed orders' amounts (all paid: idle orders are paid or cancelled)
    paid_fen: int = 0  # by the bank
    offset_fen: int = 0  # by offset against claims
    claimed_fen: int = 0  # claims raised
    recovered_fen: int = 0  # of those claims, offset or repaid (all: idle claims are closed)
    repaid_fen: int = 0  # of those claims, repaid

    def add(self, other: BudgetShare, sign: int) -> None:
        self.used_fen += sign * other.used_fen
        self.paid_fen += sign * other.paid_fen
        self.offset_fen += sign * other.offset_fen
        self.claimed_fen += sign * other.claimed_fen
        self.recovered_fen += sign * other.recovered_fen
        self.repaid_fen += sign * other.repaid_fen


@dataclass(slots=True)
class SpilledTotals:
    """What the spilled parts of a book contribute to its totals, by (programme, fiscal year), and to
    each beneficiary's balance."""

    by_budget: dict[tuple[str, int], BudgetShare] = field(default_factory=dict)
    by_beneficiary: dict[str, BudgetShare] = field(default_factory=dict)  # all budgets together
    orders: int = 0
    parts: int = 0

    def add(self, part: IdlePart, sign: int) -> None:
        """Count a part in (sign 1, when spilled) or out (sign -1, when read back)."""
        for key, share in shares_of(part.orders, part.claims).items():
            _add(self.by_budget, key, share, sign)
            _add(self.by_beneficiary, part.line.beneficiary, share, sign)
        self.orders += sign * len(part.orders)
        self.parts += sign


def _add(totals: dict[Any, BudgetShare], key: Any, share: BudgetShare, sign: int) -> None:
    total = totals.setdefault(key, BudgetShare())
    total.add(share, sign)
    if total == BudgetShare():
        del totals[key]


def shares_of(orders: Iterable[PaymentOrder], claims: Iterable[Claim]) -> dict[tuple[str, int], BudgetShare]:
    shares: dict[tuple[str, int], BudgetShare] = {}
    for order in orders:
        share = shares.setdefault((order.program, order.fiscal_year), BudgetShare())
        if order.committed:
            share.used_fen += order.amount_fen
        share.paid_fen += order.paid_fen
        share.offset_fen += order.offset_fen
    for claim in claims:
        share = shares.setdefault((claim.line.program, claim.fiscal_year), BudgetShare())
        share.claimed_fen += claim.amount_fen
        share.recovered_fen += claim.recovered_fen
        share.repaid_fen += claim.repaid_fen
    return shares
