"""Disbursement batching, settlement results and a deterministic bank simulator.

Orders ready to pay wait in one first-in-first-out queue. A batching policy cuts that queue into
batches for the Finance Bureau: a full batch whenever `max_entries` orders are ready, and whatever is
ready once the oldest ready order has waited `max_wait` (when a wait is configured). Time is always
passed in; the core never reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.payments.domain.lines import require_aware

MAX_BATCH_ENTRIES = 10_000  # what one Finance Bureau instruction file may carry


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """Cut a batch when `max_entries` orders are ready, or when the oldest has waited `max_wait`.

    `max_wait=None` batches by count only; `max_wait=timedelta(0)` batches whatever is ready at once.
    """

    max_entries: int = 500
    max_wait: timedelta | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.max_entries <= MAX_BATCH_ENTRIES:
            raise ValueError(f"max_entries must be 1..{MAX_BATCH_ENTRIES}, got {self.max_entries}")
        if self.max_wait is not None and self.max_wait < timedelta(0):
            raise ValueError(f"max_wait must not be negative, got {self.max_wait}")


@dataclass(frozen=True, slots=True)
class ReadyOrder:
    order_id: str
    ready_at: datetime


def batches_due(ready: Sequence[ReadyOrder], policy: BatchPolicy, now: datetime) -> list[list[str]]:
    """The batches `policy` cuts at `now` from the ready queue (oldest first), as lists of order ids."""
    require_aware(now)
    groups: list[list[str]] = []
    start = 0
    while len(ready) - start >= policy.max_entries:
        groups.append([order.order_id for order in ready[start : start + policy.max_entries]])
        start += policy.max_entries
    rest = ready[start:]
    if rest and policy.max_wait is not None and now - rest[0].ready_at >= policy.max_wait:
        groups.append([order.order_id for order in rest])
    return groups


@dataclass(frozen=True, slots=True)
class DisbursementEntry:
    """One line of a disbursement instruction: pay `amount_fen` to `beneficiary` for `order_id`.

    `attempt` counts the order's disbursements: 1 the first time, 2 after one bank return, ...
    """

    entry_id: str
    batch_id: str
    order_id: str
    beneficiary: str
    program: str
    fiscal_year: int
    amount_fen: int
    attempt: int


class SettlementOutcome(StrEnum):
    PAID = "paid"
    RETURNED = "returned"


@dataclass(frozen=True, slots=True)
class SettlementResult:
    """What the bank says about one entry: paid (with a confirmation) or returned (with a reason)."""

    entry_id: str
    outcome: SettlementOutcome
    confirmation: str | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        if self.outcome is SettlementOutcome.PAID and not self.confirmation:
            raise ValueError(f"paid entry {self.entry_id} needs a confirmation")
        if self.outcome is SettlementOutcome.RETURNED and not self.reason:
            raise ValueError(f"returned entry {self.entry_id} needs a reason")


@dataclass(frozen=True, slots=True)
class BankRule:
    """Which entries the simulated bank returns: those whose beneficiary is listed or ends with one of
    the suffixes, on attempts up to `returned_attempts` (so a re-queued payment goes through later)."""

    beneficiaries: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()
    returned_attempts: int = 1
    reason: str = "account closed (simulated)"

    def returns(self, entry: DisbursementEntry) -> bool:
        named = entry.beneficiary in self.beneficiaries or entry.beneficiary.endswith(self.suffixes)
        return named and entry.attempt <= self.returned_attempts


def simulate_bank(
    entries: Iterable[DisbursementEntry], rule: BankRule = BankRule()
) -> list[SettlementResult]:
    """A deterministic stand-in for the bank: one result per entry, in order."""
    results: list[SettlementResult] = []
    for entry in entries:
        if rule.returns(entry):
            results.append(SettlementResult(entry.entry_id, SettlementOutcome.RETURNED, reason=rule.reason))
        else:
            results.append(
                SettlementResult(entry.entry_id, SettlementOutcome.PAID, confirmation=f"SIM-{entry.entry_id}")
            )
    return results
