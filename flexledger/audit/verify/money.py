"""What the stream pass found that the cross-checks hold intake's and payments' logs to: grants and
clawbacks per money line, each money decision by id, and each (book, seq) eligibility processed with
what it recorded of the fact."""

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


# What eligibility recorded of a fact it processed, held to intake's record of the same (book, seq):
# (fact id, outcome, subject, digest), then the event's notification id. A plain tuple: the workers send
# one per fact, and pickling a named tuple costs several times as much.
Processed = tuple[str | None, str | None, str | None, str | None, int]


@dataclass
class Money:
    granted: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    clawed: dict[Line, int] = field(default_factory=lambda: defaultdict(int))
    decisions: dict[str, tuple[str, Line, int]] = field(default_factory=dict)  # id -> (kind, line, amount)
    processed: dict[str, dict[int, Processed]] = field(
        default_factory=lambda: defaultdict(dict)
    )  # book -> seq -> its first event
    again: list[tuple[str, int, Processed]] = field(default_factory=list)  # (book, seq, a further event)

    def add_processed(self, book: str, seq: int, processed: Processed) -> None:
        """One processed fact: a (book, seq) is one fact, in one stream; a second event for it is kept
        apart (a fact processed twice, or a forged copy). The first stored (lowest notification id) is
        held, whatever order the streams are read in."""
        held = self.processed[book]
        first = held.get(seq)
        if first is None:
            held[seq] = processed
        elif processed[-1] < first[-1]:
            held[seq] = processed
            self.again.append((book, seq, first))
        else:
            self.again.append((book, seq, processed))

    def merge(self, other: Money) -> None:
        """Another part's money (a worker's, over its share of the streams) added to this."""
        for line, amount in other.granted.items():
            self.granted[line] += amount
        for line, amount in other.clawed.items():
            self.clawed[line] += amount
        self.decisions.update(other.decisions)
        for book, theirs in other.processed.items():
            held = self.processed[book]
            clash = held.keys() & theirs.keys()
            held.update(theirs if not clash else {s: p for s, p in theirs.items() if s not in clash})
            for seq in sorted(clash):  # the first stored event stays held
                first, later = sorted((held[seq], theirs[seq]), key=lambda p: p[-1])
                held[seq] = first
                self.again.append((book, seq, later))
        self.again += other.again
