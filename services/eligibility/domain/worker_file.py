"""Everything the rules know about one worker: the current (not retracted) facts that concern them.

Facts change this file through `apply`; a retraction, refund or revocation removes what it withdraws,
so the file is always the current fact set of RULES.md section 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contracts import facts as f
from services.eligibility.domain.months import month_index


@dataclass(frozen=True, slots=True)
class Declaration:
    since: str
    until: str | None
    graduated: str | None
    fact_id: str

    def valid_on(self, day: str) -> bool:
        return self.since <= day and (self.until is None or day <= self.until)


@dataclass(frozen=True, slots=True)
class Training:
    enterprise: str
    course: str
    hours: int
    completed_on: str
    fact_id: str


@dataclass(slots=True)
class WorkerFile:
    worker: str
    # (since, acceptance order, division code, fact id)
    residences: list[tuple[str, int, str, str]] = field(default_factory=list)
    categories: dict[str, Declaration] = field(default_factory=dict)
    # enterprise -> month index -> (income_fen, fact id)
    reports: dict[str, dict[int, tuple[int, str]]] = field(default_factory=dict)
    contributions: dict[int, tuple[int, str]] = field(default_factory=dict)
    # acceptance order is dict order: a retracted record leaves it, a new one joins at the end
    trainings: dict[tuple[str, str], Training] = field(default_factory=dict)
    awards: dict[str, str] = field(default_factory=dict)  # competition -> fact id
    # month index -> total income of the current reports of all enterprises (kept with `reports`)
    totals: dict[int, int] = field(default_factory=dict)
    # the latest month any report or contribution was ever applied for (never lowered: an upper bound
    # of the latest current one)
    last_month: int = -1
    # What changed since each reader (a programme that keeps results between facts) last asked: reader ->
    # ((enterprise or None, month), ...), or None when anything may have changed (residence, category).
    # Tuples rather than sets: they stay short, and the garbage collector stops tracking them.
    pending: dict[str, tuple[tuple[str | None, int], ...] | None] = field(default_factory=dict)
    # Readers' results kept between facts (see `take_changes`); a fresh file has none.
    cache: dict[str, Any] = field(default_factory=dict)

    def take_changes(self, reader: str) -> tuple[tuple[str | None, int], ...] | None:
        """What changed since `reader` last asked: the (enterprise or None, month) touched by reports and
        contributions, or None for "anything" (also on a reader's first call). Starts a new record."""
        changes = self.pending.get(reader)
        self.pending[reader] = ()
        return changes

    def _touch(self, enterprise: str | None, month: int) -> None:
        self.last_month = max(self.last_month, month)
        pending = self.pending
        for reader, changes in pending.items():
            if changes is not None:
                pending[reader] = (*changes, (enterprise, month))

    def _touch_all(self) -> None:
        for reader in self.pending:
            self.pending[reader] = None

    def apply(self, fact: f.AnyFact, order: int) -> None:
        """Fold one accepted fact about this worker into the file."""
        match fact:
            case f.WorkerRegistered():
                self.residences.append((fact.residence_since, order, fact.residence, fact.id))
                self._touch_all()
            case f.ResidenceChanged():
                self.residences.append((fact.since, order, fact.residence, fact.id))
                self._touch_all()
            case f.CategoryDeclared():
                self.categories[fact.category] = Declaration(fact.since, fact.until, fact.graduated, fact.id)
                self._touch_all()
            case f.CategoryRevoked():
                self.categories.pop(fact.category, None)
                self._touch_all()
            case f.MonthlyReport() | f.ReportCorrected():
                month = month_index(fact.month)
                months = self.reports.setdefault(fact.enterprise, {})
                previous = months.get(month)
                months[month] = (fact.income_fen, fact.id)
                change = fact.income_fen - (previous[0] if previous else 0)
                self.totals[month] = self.totals.get(month, 0) + change
                self._touch(fact.enterprise, month)
            case f.ReportRetracted():
                month = month_index(fact.month)
                months = self.reports.get(fact.enterprise, {})
                previous = months.pop(month, None)
                if previous is not None:
                    self.totals[month] -= previous[0]
                if not months:
                    self.reports.pop(fact.enterprise, None)
                self._touch(fact.enterprise, month)
            case f.ContributionPaid():
                month = month_index(fact.month)
                self.contributions[month] = (fact.amount_fen, fact.id)
                self._touch(None, month)
            case f.ContributionRefunded():
                month = month_index(fact.month)
                self.contributions.pop(month, None)
                self._touch(None, month)
            case f.TrainingCompleted():
                self.trainings[(fact.enterprise, fact.course)] = Training(
                    fact.enterprise, fact.course, fact.hours, fact.completed_on, fact.id
                )
            case f.TrainingRetracted():
                self.trainings.pop((fact.enterprise, fact.course), None)
            case f.CompetitionAward():
                self.awards[fact.competition] = fact.id

    def residence_on(self, day: str) -> tuple[str, str] | None:
        """(division, fact id) of the residence fact with the latest `since` <= day; later wins ties."""
        if len(self.residences) == 1:
            only = self.residences[0]
            return (only[2], only[3]) if only[0] <= day else None
        best: tuple[str, int, str, str] | None = None
        for entry in self.residences:
            if entry[0] <= day and (best is None or entry[:2] > best[:2]):
                best = entry
        return None if best is None else (best[2], best[3])

    def category_on(self, category: str, day: str) -> Declaration | None:
        declaration = self.categories.get(category)
        return declaration if declaration is not None and declaration.valid_on(day) else None

    def total_income(self, month: int) -> int:
        return self.totals.get(month, 0)

    def report_ids(self, month: int) -> list[str]:
        return [months[month][1] for months in self.reports.values() if month in months]

    def latest_activity_month(self) -> int | None:
        """The latest month with a current report or contribution (for the extension's condition)."""
        months = [m for months in self.reports.values() for m in months]
        months.extend(self.contributions)
        return max(months, default=None)
