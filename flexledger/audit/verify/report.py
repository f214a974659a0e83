"""What `audit verify` found: counts, problems (each naming where, ordered by check and notification
id) and notes (checks that could not run)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from contracts.identifiers import mask_identifiers

Books = frozenset[str] | None  # only these books (None: every book)

# The first part of a problem's order: the report lists the problems of the ledger's stored events
# (steps 1-2, and the events intake says were deleted) first, then checkpoints, re-derivation, intake's
# and payments' logs, roles.
STREAMS, CHECKPOINTS, REDERIVATION, INTAKE, PAYMENTS, ROLES = 0, 1, 2, 3, 4, 5
AFTER_EVERY_EVENT = 2**62  # the second part of a problem that names no stored event: after those that do


@dataclass(frozen=True)
class Problem:
    where: str
    what: str
    order: tuple[int, int] = (9, 0)  # (check, notification id): the report lists problems in this order

    def __str__(self) -> str:
        # Texts from other cores (payments' reconcile) may name a beneficiary: operators see it masked.
        return mask_identifiers(f"{self.where}: {self.what}")


@dataclass
class Report:
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def add(self, problem: Problem) -> None:
        self.problems.append(problem)

    def merge(self, other: Report) -> None:
        """Another part's findings (a worker's, over its share of the streams) added to these."""
        for name, count in other.counts.items():
            self.counts[name] += count
        self.problems += other.problems
        self.notes += other.notes

    def sorted_problems(self) -> list[Problem]:
        return sorted(self.problems, key=lambda p: p.order)


# How a check reports a problem of the event at hand: what is wrong, and the check (the event is named,
# and its subject masked, only then: masking costs).
EventProblem = Callable[[str, int], None]
