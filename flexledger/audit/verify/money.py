"""The ledger's money as the stream pass found it, which the cross-checks hold intake's and payments'
logs to: grants and clawbacks per money line, each money decision by id, and the seqs processed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Line = tuple[
    str, str | None, str | None, str | None, str | None, str | None
]  # book, program, beneficiary, subject, ref, month


def money_line(book: str, named: dict[str, Any]) -> Line:
    """The money line a decision, a payments line or an order names (`{}`: the book's unknown line)."""
    return (
        book, named.get("program"), named.get("beneficiary"), named.get("subject"), named.get("ref"),
        named.get("month"),
    )


@dataclass
class Money:
    granted: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    clawed: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    decisions: dict[str, tuple[str, Line, int]] = field(default_factory=dict)  # id -> (kind, line, amount)
    seqs: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # book -> seqs processed

    def merge(self, other: Money) -> None:
        """Another part's money (a worker's, over its share of the streams) added to this."""
        for line, amount in other.granted.items():
            self.granted[line] += amount
        for line, amount in other.clawed.items():
            self.clawed[line] += amount
        self.decisions.update(other.decisions)
        for book, seqs in other.seqs.items():
            self.seqs[book] |= seqs
